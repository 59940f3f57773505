"""Speculation (issue 18): the pure policy, the scheduler's copies, and real farms with a stopped worker."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import trio

from philipjose import farm
from philipjose.farm.scheduler import Completion, Loss, Revocation, Scheduler
from philipjose.farm.speculation import Attempt, Speculation, speculation_of, stragglers, threshold
from tests.farm._tasks import fifty_ms_square, logged_square
from tests.farm.test_farm import Watch

# -- the policy ---------------------------------------------------------------------------------------


def test_defaults_are_sparks() -> None:
    s = Speculation()
    assert (s.quantile, s.multiplier, s.min_runtime, s.interval, s.max_duplicates) == (0.75, 1.5, 0.1, 0.1, 1)
    assert speculation_of(True) == s and speculation_of(False) is None and speculation_of(None) is None
    custom = Speculation(quantile=0.5)
    assert speculation_of(custom) is custom
    with pytest.raises(TypeError):
        speculation_of("yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "knobs",
    [
        {"quantile": 1.5},
        {"quantile": -0.1},
        {"multiplier": 0.5},
        {"min_runtime": -1},
        {"interval": 0},
        {"max_duplicates": 0},
    ],
)
def test_bad_knobs_are_value_errors(knobs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Speculation(**knobs)  # type: ignore[arg-type]


@pytest.mark.parametrize("knobs", [{"quantile": "0.5"}, {"multiplier": True}, {"max_duplicates": 1.0}])
def test_mistyped_knobs_are_type_errors(knobs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        Speculation(**knobs)  # type: ignore[arg-type]


def test_threshold_is_multiplier_times_median_and_at_least_min_runtime() -> None:
    s = Speculation()
    assert threshold(s, []) is None
    assert threshold(s, [1.0, 2.0, 30.0]) == 3.0
    assert threshold(s, [0.01, 0.02, 0.03]) == 0.1  # min_runtime


def test_nothing_is_speculated_before_quantile_of_the_tasks_finished() -> None:
    s = Speculation()
    running = [Attempt(7, started=0.0)]
    runtimes = [0.05] * 74
    assert stragglers(s, running, runtimes=runtimes, finished=74, total=100, now=100.0) == []
    assert stragglers(s, running, runtimes=[*runtimes, 0.05], finished=75, total=100, now=100.0) == [7]
    # at least one must have finished, even with quantile 0
    zero = Speculation(quantile=0)
    assert stragglers(zero, running, runtimes=[], finished=0, total=10, now=100.0) == []


def test_stragglers_are_past_the_threshold_longest_first() -> None:
    s = Speculation()
    runtimes = [1.0] * 10  # threshold 1.5 s
    running = [
        Attempt(1, started=9.0),  # 1 s: no
        Attempt(2, started=8.4),  # 1.6 s: yes
        Attempt(3, started=5.0),  # 5 s: yes, first
        Attempt(4, started=8.5),  # exactly 1.5 s: no (past it, not at it)
    ]
    assert stragglers(s, running, runtimes=runtimes, finished=10, total=14, now=10.0) == [3, 2]


def test_non_idempotent_tasks_and_those_with_enough_duplicates_are_never_chosen() -> None:
    runtimes = [1.0] * 10
    running = [
        Attempt(1, started=0.0, idempotent=False),
        Attempt(2, started=0.0, duplicates=1),
        Attempt(3, started=0.0, duplicates=1),
    ]
    assert stragglers(Speculation(), running, runtimes=runtimes, finished=10, total=13, now=10.0) == []
    two = Speculation(max_duplicates=2)
    assert stragglers(two, running, runtimes=runtimes, finished=10, total=13, now=10.0) == [2, 3]


# -- the scheduler's copies ---------------------------------------------------------------------------


def _two_workers() -> Scheduler[str]:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    s.worker_up("a")
    s.worker_up("b")
    return s


def test_a_copy_goes_to_another_worker_and_the_first_success_wins() -> None:
    s = _two_workers()
    t = s.submit("t")
    (first,) = s.dispatch(now=1.0)
    assert first.worker == "a" and s.assigned_at(t) == 1.0
    assert s.duplicate(t, avoid={"a"})
    (copy,) = s.dispatch(now=2.0)
    assert (copy.worker, copy.task_id, copy.payload) == ("b", t, "t")
    assert s.holders(t) == ("a", "b") and s.counters.duplicates_started == 1
    decisions = s.result("b", t, "from b")
    assert decisions == [Revocation("a", t, "speculation"), Completion(t, "from b", "b")]
    assert s.counters.duplicates_won == 1 and s.counters.completed == 1
    assert s.result("a", t, "from a") == []  # never reported twice
    assert s.counters.duplicates == 1 and s.counters.submitted == 1


def test_the_original_winning_revokes_the_copy() -> None:
    s = _two_workers()
    t = s.submit("t")
    s.dispatch()
    s.duplicate(t, avoid={"a"})
    s.dispatch()
    assert s.result("a", t, 1) == [Revocation("b", t, "speculation"), Completion(t, 1, "a")]
    assert s.counters.duplicates_won == 0


def test_a_copy_waits_for_room_on_a_worker_it_may_use() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=1)
    for w in "abc":
        s.worker_up(w)
    ids = [s.submit(str(i)) for i in range(3)]
    s.dispatch()
    assert s.duplicate(ids[0], avoid={"a"})
    assert s.dispatch() == []  # b and c are full
    s.result("c", ids[2], "done")
    (copy,) = s.dispatch()
    assert copy.worker == "c" and copy.task_id == ids[0]


def test_duplicate_refuses_non_idempotent_pinned_and_queued_tasks() -> None:
    s = _two_workers()
    fragile = s.submit("x", idempotent=False)
    pinned = s.submit("p", pin="a")
    queued_later = s.submit("q")
    s.dispatch()
    assert not s.duplicate(fragile)
    assert not s.duplicate(pinned)
    extra = s.submit("z")
    assert not s.duplicate(extra)  # queued: nothing to copy
    assert [a.task_id for a in s.dispatch()] == [extra] and s.counters.duplicates_started == 0
    assert queued_later in s.live_tasks()


def test_an_error_from_one_copy_waits_for_the_other() -> None:
    s = _two_workers()
    t = s.submit("t")
    s.dispatch()
    s.duplicate(t, avoid={"a"})
    s.dispatch()
    assert s.result("a", t, "boom", ok=False) == []
    assert s.holders(t) == ("b",)
    assert s.result("b", t, "boom again", ok=False) == [Completion(t, "boom again", "b", False)]
    assert s.counters.failed == 1


def test_the_death_of_a_holder_leaves_the_other_copy_running() -> None:
    s = _two_workers()
    t = s.submit("t")
    s.dispatch()
    s.duplicate(t, avoid={"a"})
    s.dispatch()
    assert s.worker_down("a") == []
    assert s.holders(t) == ("b",) and s.counters.pending == 0 and s.counters.retries == 0
    assert s.deaths(t) == ("a",)
    assert s.result("b", t, 5) == [Completion(t, 5, "b")]


def test_deaths_of_copies_count_toward_max_deaths() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2, max_deaths=2)
    for w in "abc":
        s.worker_up(w)
    t = s.submit("t")
    s.dispatch()
    s.duplicate(t, avoid={"a"})
    s.dispatch()
    (holder, copy) = s.holders(t)
    assert s.worker_down(copy) == []
    decisions = s.worker_down(holder)
    assert decisions == [Loss(t, (copy, holder))]


def test_retiring_a_holder_hands_the_task_to_its_copy() -> None:
    s = _two_workers()
    t = s.submit("t")
    s.dispatch()
    s.duplicate(t, avoid={"a"})
    s.dispatch()
    assert s.retire("a") == []
    assert s.holders(t) == ("b",) and s.dispatch() == []


def test_cancelling_revokes_every_copy() -> None:
    s = _two_workers()
    t = s.submit("t")
    s.dispatch()
    s.duplicate(t, avoid={"a"})
    s.dispatch()
    decisions = s.cancel(t)
    assert decisions[:2] == [Revocation("a", t), Revocation("b", t)]


def test_running_lists_first_holders_with_their_start() -> None:
    s = _two_workers()
    ids = [s.submit(str(i)) for i in range(4)]
    s.dispatch(now=3.0)
    s.duplicate(ids[0], avoid={"a"})
    assert [(r.task_id, r.assigned_at, r.duplicates) for r in s.running("a")] == [(0, 3.0, 1), (2, 3.0, 0)]
    assert s.has_running()


# -- real farms -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _resumed_at_the_end(pid: int) -> Iterator[None]:
    """Whatever happens, the stopped worker is not left stopped (SIGCONT; a dead one is gone anyway)."""
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def _map_with_a_stopped_worker(speculation: bool) -> tuple[float, list[int], farm.Farm]:
    """3 workers, 60 tasks of 50 ms, one worker SIGSTOPped for 10 s from the start of the map."""
    async with farm.Farm(workers=3, speculation=speculation) as f:
        assert await f.map(fifty_ms_square, range(3)) == [0, 1, 4]  # every worker warm
        victim = f.workers[0].os_pid
        assert victim is not None
        with _resumed_at_the_end(victim):
            os.kill(victim, signal.SIGSTOP)
            start = trio.current_time()
            async with trio.open_nursery() as nursery:

                async def resume_after_10_s() -> None:
                    await trio.sleep(10)  # the scenario: the worker is stopped for 10 s
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(victim, signal.SIGCONT)

                nursery.start_soon(resume_after_10_s)
                results = await f.map(fifty_ms_square, range(60))
                took = trio.current_time() - start
                nursery.cancel_scope.cancel()
        return took, results, f


async def test_a_stopped_worker_holds_the_map_without_speculation_and_not_with_it() -> None:
    took, results, f = await _map_with_a_stopped_worker(speculation=True)
    assert results == [x * x for x in range(60)]
    assert f.counters.duplicates_started >= 1 and f.counters.duplicates_won >= 1
    plain_took, plain_results, plain = await _map_with_a_stopped_worker(speculation=False)
    assert plain_results == [x * x for x in range(60)]
    assert plain.counters.duplicates_started == 0
    assert took < 4, f"with speculation the map took {took:.1f} s"
    assert plain_took > 8, f"without speculation the map took only {plain_took:.1f} s"


async def test_non_idempotent_tasks_never_get_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    watch = Watch()
    async with farm.Farm(workers=3, speculation=True, max_in_flight=1, progress=watch) as f:
        assert await f.map(fifty_ms_square, range(20)) == [x * x for x in range(20)]  # runtimes known
        before = f.counters.duplicates_started  # a loaded machine may have made that map straggle
        victim = f.workers[0].os_pid
        assert victim is not None
        with _resumed_at_the_end(victim):
            os.kill(victim, signal.SIGSTOP)
            fragile = f.options(idempotent=False)
            futures = [fragile.submit(logged_square, str(log), x) for x in range(20)]
            # the others finish: one task at most waits on the stopped worker
            await watch.until(lambda c: c.completed >= 20 + 19)
            stuck = [fut for fut in futures if not fut.done()]
            assert len(stuck) <= 1
            deadline = time.monotonic() + 1.0  # 10 speculation intervals past the threshold
            while time.monotonic() < deadline:
                assert f.counters.duplicates_started == before
                await trio.sleep(0.05)  # watching that nothing happens: there is no event to wait for
            os.kill(victim, signal.SIGCONT)
            assert [await fut for fut in futures] == [x * x for x in range(20)]
        assert f.counters.duplicates_started == before
        assert sorted(int(line) for line in log.read_text().split()) == list(range(20))  # each ran once
        # the same scenario with idempotent tasks does start duplicates (the test can fail)
        victim = f.workers[1].os_pid
        assert victim is not None
        with _resumed_at_the_end(victim):
            os.kill(victim, signal.SIGSTOP)
            results = await f.map(fifty_ms_square, range(20))
        assert results == [x * x for x in range(20)]
        assert f.counters.duplicates_started > before
        assert not psutil.pid_exists(victim) or psutil.Process(victim).status() != psutil.STATUS_STOPPED
