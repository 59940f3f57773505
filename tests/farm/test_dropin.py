"""The drop-in test: code written against ``concurrent.futures.ProcessPoolExecutor`` passes unchanged
with ``philipjose.farm.Executor`` swapped in.

Every test takes ``Pool``, the executor class, and runs once with each: the same assertions hold for
the real ``ProcessPoolExecutor`` and for the farm. The tasks live in ``_dropin_tasks`` (importable by
both kinds of worker).
"""

from __future__ import annotations

import concurrent.futures
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from philipjose import farm
from tests.farm._dropin_tasks import (
    Refused,
    add,
    broken_initializer,
    fail,
    get_state,
    power,
    refuse,
    set_state,
    wait_for,
)


@pytest.fixture(params=[ProcessPoolExecutor, farm.Executor], ids=["ProcessPoolExecutor", "farm.Executor"])
def Pool(request: pytest.FixtureRequest) -> Any:
    return request.param


def test_submit_with_args_and_kwargs(Pool: Any) -> None:
    with Pool(max_workers=2) as ex:
        assert ex.submit(power, 2, exp=10).result(timeout=60) == 1024
        assert ex.submit(power, 3).result(timeout=60) == 9
        assert ex.submit(sorted, [3, 1, 2], reverse=True).result(timeout=60) == [3, 2, 1]


def test_map_with_chunksize(Pool: Any) -> None:
    with Pool(2) as ex:
        assert list(ex.map(power, range(50), chunksize=7)) == [x * x for x in range(50)]
        assert list(ex.map(add, range(10), range(100, 110), chunksize=3)) == [
            x + y for x, y in zip(range(10), range(100, 110), strict=True)
        ]
        assert list(ex.map(power, [])) == []
        with pytest.raises(ValueError, match="chunksize"):
            ex.map(power, range(3), chunksize=0)
        results = ex.map(fail, [1, 2], chunksize=2)
        with pytest.raises(ValueError, match="bad 1"):
            list(results)


def test_as_completed_and_wait(Pool: Any) -> None:
    with Pool(max_workers=2) as ex:
        futures = [ex.submit(power, i) for i in range(20)]
        assert sorted(f.result() for f in concurrent.futures.as_completed(futures, timeout=60)) == [
            i * i for i in range(20)
        ]
        more = [ex.submit(power, i, 3) for i in range(10)] + [ex.submit(fail, 7)]
        done, not_done = concurrent.futures.wait(more, timeout=60)
        assert (len(done), not_done) == (11, set())
        first, _ = concurrent.futures.wait(
            [ex.submit(fail, 8), ex.submit(power, 2)],
            timeout=60,
            return_when=concurrent.futures.FIRST_EXCEPTION,
        )
        assert any(isinstance(f.exception(), ValueError) for f in first)


def test_exceptions_are_caught_by_their_own_type(Pool: Any) -> None:
    with Pool(max_workers=1) as ex:
        try:
            ex.submit(fail, 3).result(timeout=60)
        except ValueError as exc:
            caught: BaseException = exc
        assert str(caught) == "bad 3"
        # the remote traceback is the cause: its text names the task's function and line
        assert isinstance(caught.__cause__, Exception)
        assert 'raise ValueError(f"bad {n}")' in str(caught.__cause__)
        assert "in fail" in str(caught.__cause__)
        with pytest.raises(Refused, match="not today"):
            ex.submit(refuse, "not today").result(timeout=60)
        with pytest.raises(ZeroDivisionError):
            ex.submit(divmod, 1, 0).result(timeout=60)
        assert isinstance(ex.submit(fail, 4).exception(timeout=60), ValueError)


def test_initializer(Pool: Any) -> None:
    with Pool(max_workers=2, initializer=set_state, initargs=("greeting", "hello")) as ex:
        answers = [f.result(timeout=60) for f in [ex.submit(get_state, "greeting") for _ in range(20)]]
    assert {value for value, _ in answers} == {"hello"}
    assert all(pid != os.getpid() for _, pid in answers)


def test_an_initializer_that_raises_breaks_the_pool(Pool: Any) -> None:
    with Pool(max_workers=1, initializer=broken_initializer) as ex, pytest.raises(BrokenProcessPool):
        ex.submit(power, 2).result(timeout=60)


def test_cancel_of_a_queued_future(Pool: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    with Pool(max_workers=1) as ex:
        blocker = ex.submit(wait_for, str(fifo))
        queued = [ex.submit(power, i) for i in range(6)]
        last = queued[-1]
        assert last.cancel()
        assert last.cancelled() and last.done()
        with fifo.open("w") as pipe:  # let the blocker finish
            pipe.write("go")
        assert blocker.result(timeout=60) == "go"
        assert [f.result(timeout=60) for f in queued[:-1]] == [i * i for i in range(5)]
        with pytest.raises(concurrent.futures.CancelledError):
            last.result()


def test_shutdown_with_cancel_futures(Pool: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    ex = Pool(max_workers=1)
    blocker = ex.submit(wait_for, str(fifo))
    queued = [ex.submit(power, i) for i in range(10)]
    ex.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(RuntimeError):
        ex.submit(power, 1)
    with fifo.open("w") as pipe:
        pipe.write("go")
    assert blocker.result(timeout=60) == "go"  # a started task is not cancelled
    # (not concurrent.futures.wait: the pool leaves the futures it cancels here un-notified, so
    # wait() would not count them as done)
    for i, f in enumerate(queued):
        try:
            assert f.result(timeout=60) == i * i
        except concurrent.futures.CancelledError:
            assert f.cancelled()
    assert queued[-1].cancelled()
    ex.shutdown(wait=True)
