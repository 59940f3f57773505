"""``farm.Executor`` beyond the drop-in test: its own arguments and refusals, per-call options, the
async ``Farm``'s keyword arguments and errors, asyncio."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import weakref
from concurrent.futures.process import BrokenProcessPool

import pytest

from philipjose import farm
from philipjose.farm.errors import RemoteTraceback, TaskError, original_exception
from philipjose.farm.options import TaskOptions
from tests.farm._dropin_tasks import broken_initializer, fail, power


def test_mp_context_and_max_tasks_per_child_are_refused_clearly() -> None:
    import multiprocessing

    with pytest.raises(TypeError, match="takes no mp_context: its workers are philipjose worker"):
        farm.Executor(2, multiprocessing.get_context("spawn"))
    with pytest.raises(TypeError, match="does not support max_tasks_per_child"):
        farm.Executor(2, max_tasks_per_child=10)
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        farm.Executor(max_workers=0)
    with pytest.raises(ValueError, match="give max_workers or workers, not both"):
        farm.Executor(max_workers=2, workers=3)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        farm.Executor(1, initializer="setup")  # type: ignore[arg-type]


def test_task_options_are_validated() -> None:
    assert TaskOptions().replace(timeout=2).timeout == 2
    options = r"unknown task option.*timout.*the options are idempotent, key, timeout"
    with pytest.raises(TypeError, match=options):
        TaskOptions().replace(timout=2)
    assert TaskOptions().replace(idempotent=False, key="k").key == "k"
    with pytest.raises(TypeError, match="idempotent must be True or False"):
        TaskOptions(idempotent=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be a str, bytes or None"):
        TaskOptions(key=3)  # type: ignore[arg-type]
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive number of seconds"):
            TaskOptions(timeout=bad)
    with pytest.raises(TypeError, match="number of seconds or None"):
        TaskOptions(timeout="5")  # type: ignore[arg-type]


def test_original_exception_is_the_remote_one_with_the_traceback_as_cause() -> None:
    error = TaskError("builtins.ValueError", "bad", "Traceback ...\nValueError: bad\n")
    error.__cause__ = ValueError("bad")
    raised = original_exception(error)
    assert type(raised) is ValueError and str(raised) == "bad"
    assert isinstance(raised.__cause__, RemoteTraceback)
    assert str(raised.__cause__) == '\n"""\nTraceback ...\nValueError: bad\n"""'
    # not rebuilt here, or not an Exception (a task's SystemExit), or the farm's own: unchanged
    plain = TaskError("mod.Gone", "x", "tb")
    assert original_exception(plain) is plain
    exiting = TaskError("builtins.SystemExit", "2", "tb")
    exiting.__cause__ = SystemExit(2)
    assert original_exception(exiting) is exiting
    lost = farm.WorkerLost("t", ["w0"])
    assert original_exception(lost) is lost


async def test_farm_submit_passes_keyword_arguments_and_options() -> None:
    async with farm.Farm(workers=1) as f:
        assert await f.submit(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
        assert await f.submit(power, 2, exp=5) == 32
        assert await f.options(timeout=30).submit(power, 3, exp=3) == 27
        assert await f.options(timeout=30).options(timeout=60).submit(power, 2) == 4
        with pytest.raises(TypeError, match="unknown task option"):
            f.options(retries=3)
        # the async Farm raises TaskError (remote_type, traceback), the original as its cause
        with pytest.raises(farm.TaskError) as info:
            await f.submit(fail, 5)
        assert info.value.remote_type == "builtins.ValueError"
        assert isinstance(info.value.__cause__, ValueError)
        assert "in fail" in info.value.remote_traceback


async def test_a_failing_initializer_breaks_the_async_farm() -> None:
    async with farm.Farm(workers=1, initializer=broken_initializer) as f:
        with pytest.raises(farm.InitializerFailed) as info:
            await f.submit(power, 2)
        assert isinstance(info.value, BrokenProcessPool)
        assert info.value.remote_type == "builtins.RuntimeError"
        assert "no such resource" in str(info.value)
        with pytest.raises(farm.InitializerFailed):
            f.submit(power, 2)


def test_resolved_futures_are_freed_without_the_garbage_collector() -> None:
    """A resolved task's futures hold no cycle: dropping the caller's frees it by reference
    counting (a cycle between the caller's and the farm's futures left every one of them, with
    its lock and condition, to the cyclic GC, whose full passes then took 50-150 ms)."""
    with farm.Executor(1) as ex:
        gc.disable()
        try:
            futures = [ex.submit(abs, -i) for i in range(50)]
            assert [f.result() for f in futures] == list(range(50))
            refs = [weakref.ref(f) for f in futures]
            del futures
            assert [ref() for ref in refs] == [None] * 50
            mapped = weakref.ref(next(iter(concurrent.futures.as_completed([ex.submit(abs, -7)]))))
            assert mapped() is None
        finally:
            gc.enable()


def test_executor_options_timeout() -> None:
    with farm.Executor(1) as ex:
        assert ex.options(timeout=30).submit(power, 2, exp=3).result(timeout=60) == 8
        with pytest.raises(farm.TaskTimeout):
            ex.options(timeout=0.5).submit(__import__("time").sleep, 30).result(timeout=60)


def test_the_async_farm_refuses_asyncio_at_once() -> None:
    async def main() -> None:
        async with farm.Farm(workers=1):
            pass

    with pytest.raises(farm.FarmError, match=r"^Farm needs Trio; from asyncio or Jupyter use farm.Executor$"):
        asyncio.run(main())


def test_the_executor_serves_asyncio() -> None:
    async def main(ex: concurrent.futures.Executor) -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(ex, power, i) for i in range(10))))

    with farm.Executor(max_workers=2) as ex:
        assert asyncio.run(main(ex)) == [i * i for i in range(10)]
