"""The farmer's bookkeeping: events in, decisions out. Unit tests of each rule, then a state machine."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from philipjose.farm.scheduler import (
    ASSIGNED,
    PENDING,
    RESOLVED,
    Assignment,
    Cancellation,
    Completion,
    Counters,
    Expiry,
    Loss,
    Revocation,
    Scheduler,
    SchedulerError,
    fair_share,
)


def _assigned(assignments: list[Assignment[str]]) -> list[tuple[object, int]]:
    return [(a.worker, a.task_id) for a in assignments]


def test_tasks_get_increasing_ids_and_wait_for_workers() -> None:
    s: Scheduler[str] = Scheduler()
    assert [s.submit(p) for p in "abc"] == [0, 1, 2]
    assert s.dispatch() == []
    assert s.counters == Counters(submitted=3, pending=3)
    assert s.state(0) is PENDING


def test_pipelining_fills_least_loaded_workers_first() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    for p in "abcdefg":
        s.submit(p)
    s.worker_up("w1")
    s.worker_up("w2")
    got = s.dispatch()
    assert _assigned(got) == [("w1", 0), ("w2", 1), ("w1", 2), ("w2", 3)]
    assert [a.payload for a in got] == list("abcd")
    assert s.in_flight("w1") == (0, 2)
    assert s.counters.running == 4 and s.counters.pending == 3
    assert s.dispatch() == []  # full
    assert s.result("w2", 1, "A") == [Completion(1, "A", "w2")]
    assert _assigned(s.dispatch()) == [("w2", 4)]
    assert s.state(1) is RESOLVED and s.state(4) is ASSIGNED


def test_no_worker_takes_more_than_its_fair_share_of_a_short_queue() -> None:
    # deep pipelines after tiny tasks, then 40 long ones: each worker holds at most 20 of them, so
    # none is left with a queue of its own to run after the other has finished
    s: Scheduler[str] = Scheduler(max_in_flight=32)
    for i in range(40):
        s.submit(f"long {i}")
    s.worker_up("a")
    s.worker_up("b")
    s.set_capacity("a", 11)
    got = _assigned(s.dispatch())
    assert [w for w, _ in got].count("a") == 11 and [w for w, _ in got].count("b") == 20
    assert s.counters.pending == 9
    for _ in range(11):  # a runs its eleven, then takes the nine that waited
        s.result("a", s.in_flight("a")[0], None)
        s.dispatch()
    assert len(s.in_flight("a")) == 9 and len(s.in_flight("b")) == 20 and s.counters.pending == 0
    assert fair_share(40, 2) == 20 and fair_share(41, 2) == 21 and fair_share(3, 0) == 0


def test_capacity_per_worker() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=4)
    for p in "abcdefgh":
        s.submit(p)
    s.worker_up("slow")
    s.worker_up("fast")
    s.set_capacity("slow", 1)
    assert _assigned(s.dispatch()) == [("slow", 0), ("fast", 1), ("fast", 2), ("fast", 3), ("fast", 4)]
    s.set_capacity("fast", 2)  # lowering keeps what it holds
    assert s.in_flight("fast") == (1, 2, 3, 4)
    s.result("fast", 1, None)
    assert s.dispatch() == []
    with pytest.raises(ValueError):
        s.set_capacity("fast", 5)
    with pytest.raises(ValueError):
        s.set_capacity("fast", 0)
    with pytest.raises(SchedulerError):
        s.set_capacity("nobody", 1)


def test_max_in_flight_one_means_no_pipelining() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=1)
    for p in "abc":
        s.submit(p)
    s.worker_up("w")
    assert _assigned(s.dispatch()) == [("w", 0)]


def test_each_task_resolves_once_and_late_duplicates_are_dropped() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a")
    s.worker_up("w")
    s.dispatch()
    assert s.result("w", t, 1) == [Completion(t, 1, "w")]
    assert s.result("w", t, 2) == []
    assert s.counters.duplicates == 1
    assert s.counters.completed == 1 and s.counters.resolved == 1


def test_error_outcomes_count_as_failed() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a")
    s.worker_up("w")
    s.dispatch()
    assert s.result("w", t, "boom", ok=False) == [Completion(t, "boom", "w", ok=False)]
    assert s.counters.failed == 1 and s.counters.completed == 0


def test_a_dead_workers_tasks_are_requeued_at_the_front() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    for p in "abcd":
        s.submit(p)
    s.worker_up("w1")
    s.dispatch()  # w1: 0, 1
    assert s.worker_down("w1") == []
    assert s.counters.retries == 2 and s.counters.workers_lost == 1 and s.counters.workers == 0
    assert s.state(0) is PENDING and s.deaths(0) == ("w1",)
    s.worker_up("w2")
    # suspects run alone, oldest first; the innocent tasks behind them wait
    assert _assigned(s.dispatch()) == [("w2", 0)]
    s.result("w2", 0, "A")
    assert _assigned(s.dispatch()) == [("w2", 1)]
    s.result("w2", 1, "B")
    assert _assigned(s.dispatch()) == [("w2", 2), ("w2", 3)]


def test_suspect_task_waits_for_an_idle_worker() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    a, b, c = s.submit("a"), s.submit("b"), s.submit("c")
    s.worker_up("w1")
    s.worker_up("w2")
    s.dispatch()  # w1: a, c  w2: b
    s.worker_down("w1")  # a and c are suspects now
    assert s.dispatch() == []  # w2 is busy with b
    s.result("w2", b, "B")
    assert _assigned(s.dispatch()) == [("w2", a)]
    s.worker_up("w3")
    assert _assigned(s.dispatch()) == [("w3", c)]
    s.worker_up("w4")
    d = s.submit("d")
    assert _assigned(s.dispatch()) == [("w4", d)]  # w2 and w3 each run a suspect alone


def test_a_task_submitted_alone_waits_for_an_idle_worker_and_has_it_to_itself() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    s.worker_up("w1")
    s.worker_up("w2")
    busy = s.submit("busy")
    assert _assigned(s.dispatch()) == [("w1", busy)]
    first, second = s.submit("first", alone=True), s.submit("second", alone=True)
    # not behind "busy" on w1 (least loaded would tie and take w1): only w2 is idle
    assert _assigned(s.dispatch()) == [("w2", first)]
    after = s.submit("after")
    assert s.dispatch() == []  # the queue waits behind "second"; w2 runs "first" alone
    s.result("w1", busy, "done")
    assert _assigned(s.dispatch()) == [("w1", second)]
    s.cancel(first)  # a race's loser: w2 is free again once it has stopped it (its report)
    assert s.dispatch() == []
    s.result("w2", first, "late")
    assert _assigned(s.dispatch()) == [("w2", after)]


def test_poison_task_fails_after_max_deaths_and_spares_its_neighbours() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2, max_deaths=3)
    poison, innocent = s.submit("poison"), s.submit("innocent")
    s.worker_up("w1")
    s.dispatch()  # both on w1
    s.worker_down("w1")
    assert s.deaths(innocent) == ("w1",)
    s.worker_up("w2")
    s.worker_up("w3")
    assert _assigned(s.dispatch()) == [("w2", poison), ("w3", innocent)]
    assert s.result("w3", innocent, "ok") == [Completion(innocent, "ok", "w3")]
    assert s.worker_down("w2") == []
    s.worker_up("w4")
    assert _assigned(s.dispatch()) == [("w3", poison)]
    assert s.worker_down("w3") == [Loss(poison, ("w1", "w2", "w3"))]
    assert s.state(poison) is RESOLVED
    assert s.counters == Counters(
        submitted=2, resolved=2, completed=1, failed=1, retries=3, workers=1, workers_lost=3
    )


def test_max_deaths_one_loses_at_first_death() -> None:
    s: Scheduler[str] = Scheduler(max_deaths=1)
    t = s.submit("a")
    s.worker_up("w")
    s.dispatch()
    assert s.worker_down("w") == [Loss(t, ("w",))]
    assert s.counters.retries == 0


def test_result_from_a_worker_presumed_dead_still_resolves() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a")
    s.worker_up("w1")
    s.dispatch()
    s.worker_down("w1")
    s.worker_up("w2")
    s.dispatch()  # now on w2
    assert s.result("w1", t, "late") == [Revocation("w2", t), Completion(t, "late", "w1")]
    # the revoked task keeps w2's slot until w2 reports
    assert s.in_flight("w2") == (t,)
    assert s.result("w2", t, "again") == []
    assert s.in_flight("w2") == ()
    assert s.counters.duplicates == 1


def test_result_for_a_pending_task_resolves_it_and_it_is_never_assigned() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a")
    s.worker_up("w1")
    s.dispatch()
    s.worker_down("w1")
    assert s.result("w1", t, "late") == [Completion(t, "late", "w1")]
    s.worker_up("w2")
    assert s.dispatch() == []
    assert s.counters.pending == 0 and s.counters.running == 0


def test_cancel_pending_and_running() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=1)
    a, b = s.submit("a"), s.submit("b")
    s.worker_up("w")
    s.dispatch()
    assert s.cancel(b) == [Cancellation(b)]
    assert s.cancel(a) == [Revocation("w", a), Cancellation(a)]
    assert s.cancel(a) == []
    assert s.dispatch() == []  # w still holds the revoked a
    assert s.result("w", a, "done anyway") == []
    assert s.counters == Counters(submitted=2, resolved=2, cancelled=2, duplicates=1, workers=1)


def test_worker_death_after_cancel_does_not_requeue() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a")
    s.worker_up("w")
    s.dispatch()
    s.cancel(t)
    assert s.worker_down("w") == []
    assert s.counters.retries == 0


def test_run_timeout_is_armed_at_each_assignment() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a", timeout=10)
    assert s.next_deadline() is None  # queued: no clock running
    s.worker_up("w1")
    s.dispatch(now=100)
    assert s.next_deadline() == 110
    assert s.expire(109.9) == []
    s.worker_down("w1")
    assert s.next_deadline() is None
    s.worker_up("w2")
    s.dispatch(now=200)
    assert s.expire(110) == []  # the first timer is stale
    assert s.next_deadline() == 210
    assert s.expire(210) == [Revocation("w2", t), Expiry(t, 10)]
    assert s.counters.failed == 1
    assert s.next_deadline() is None


def test_absolute_deadline_counts_queued_time() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a", deadline=50)
    u = s.submit("b", deadline=70)
    assert s.next_deadline() == 50
    assert s.expire(60) == [Expiry(t, None)]
    s.worker_up("w")
    assert _assigned(s.dispatch()) == [("w", u)]
    assert s.expire(70) == [Revocation("w", u), Expiry(u, None)]


def test_resolved_tasks_leave_no_timers() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a", timeout=5, deadline=50)
    s.worker_up("w")
    s.dispatch(now=0)
    s.result("w", t, "ok")
    assert s.next_deadline() is None
    assert s.expire(1000) == []


def test_pinned_tasks_run_on_their_worker_and_are_lost_with_it() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=1)
    s.worker_up("w1")
    s.worker_up("w2")
    a = s.submit("bcast", pin="w1")
    b = s.submit("bcast", pin="w2")
    c = s.submit("bcast2", pin="w2")
    assert _assigned(s.dispatch()) == [("w1", a), ("w2", b)]
    assert s.worker_down("w2") == [Loss(b, ("w2",)), Loss(c, ("w2",))]
    assert s.counters.retries == 0
    with pytest.raises(SchedulerError, match="no such worker"):
        s.submit("x", pin="w2")


def test_pinned_tasks_go_before_the_queue() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=1)
    q = s.submit("queued")
    s.worker_up("w")
    p = s.submit("pinned", pin="w")
    assert _assigned(s.dispatch()) == [("w", p)]
    s.result("w", p, None)
    assert _assigned(s.dispatch()) == [("w", q)]


def test_callers_mistakes() -> None:
    s: Scheduler[str] = Scheduler()
    with pytest.raises(ValueError):
        Scheduler(max_in_flight=0)
    with pytest.raises(ValueError):
        Scheduler(max_deaths=0)
    with pytest.raises(ValueError):
        s.submit("a", timeout=0)
    s.worker_up("w")
    with pytest.raises(SchedulerError, match="already up"):
        s.worker_up("w")
    with pytest.raises(SchedulerError, match="no worker"):
        s.worker_down("nobody")
    with pytest.raises(SchedulerError, match="was ever submitted"):
        s.result("w", 0, None)
    with pytest.raises(SchedulerError, match="was ever submitted"):
        s.cancel(-1)
    with pytest.raises(SchedulerError):
        s.state(5)
    assert isinstance(SchedulerError("x"), LookupError)


def test_a_retired_worker_leaves_at_once_and_charges_nothing() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=3)
    running, queued, other = s.submit("a"), s.submit("b"), s.submit("c")
    s.worker_up("w1")
    assert _assigned(s.dispatch()) == [("w1", running), ("w1", queued), ("w1", other)]
    assert s.cancel(running) == [Revocation("w1", running), Cancellation(running)]
    assert s.retire("w1") == []
    assert s.workers() == [] and s.counters.workers_lost == 1 and s.counters.retries == 0
    assert s.deaths(queued) == () and s.state(queued) is PENDING
    s.worker_up("w2")
    # the cancelled task is never run again; the others go first, in order, not as suspects
    assert _assigned(s.dispatch()) == [("w2", queued), ("w2", other)]
    with pytest.raises(SchedulerError):
        s.worker_down("w1")  # it is gone already: its death later is nothing to the scheduler
    assert s.result("w1", running, "late") == []  # a late report is a duplicate
    assert s.counters.duplicates == 1


def test_a_retired_workers_broadcasts_are_held_for_its_replacement() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    s.worker_up("w1")
    s.worker_up("w2")
    long = s.submit("long")
    assert _assigned(s.dispatch()) == [("w1", long)]
    b1, b2 = s.submit("b", pin="w1"), s.submit("b", pin="w2")
    queued_pin = s.submit("b2", pin="w1")
    assert _assigned(s.dispatch()) == [("w1", b1), ("w2", b2)]  # w1 has room for one more only
    s.expire(0.0)
    assert s.cancel(long)[0] == Revocation("w1", long)
    assert s.retire("w1") == [b1, queued_pin]
    assert s.dispatch() == []  # held: nobody gets them
    assert s.counters.pending == 2
    late = s.submit("b3", held=True)
    s.worker_up("w3")
    assert s.dispatch() == []
    for task_id in (b1, queued_pin, late):
        s.pin(task_id, "w3")
    assert _assigned(s.dispatch()) == [("w3", b1), ("w3", queued_pin)]
    assert s.result("w3", b1, "x") == [Completion(b1, "x", "w3")]
    assert _assigned(s.dispatch()) == [("w3", late)]
    with pytest.raises(SchedulerError, match="not held"):
        s.pin(b2, "w3")
    with pytest.raises(ValueError, match="pinned or held"):
        s.submit("x", pin="w3", held=True)


def test_a_held_task_may_be_abandoned() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("b", held=True)
    with pytest.raises(SchedulerError, match="not held"):
        s.abandon(s.submit("q"))
    assert s.abandon(t, ("w9",)) == [Loss(t, ("w9",))]
    assert s.abandon(t) == []  # resolved already
    s.pin(t, "nobody")  # resolved meanwhile: nothing to do
    assert s.counters.failed == 1


def test_a_worker_may_come_back_under_the_same_name() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("a")
    s.worker_up("w")
    s.dispatch()
    s.worker_down("w")
    s.worker_up("w")
    assert _assigned(s.dispatch()) == [("w", t)]
    assert s.deaths(t) == ("w",)


# -- kinds (Erlang workers beside Python ones) ---------------------------------------------------------


def test_tasks_run_only_on_workers_of_their_kind() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    py = [s.submit(p) for p in "ab"]
    erl = [s.submit(p, kind="erlang") for p in "xyz"]
    s.worker_up("py1")
    assert _assigned(s.dispatch()) == [("py1", py[0]), ("py1", py[1])]
    s.worker_up("e1", kind="erlang", capacity=3)  # more than max_in_flight: its schedulers
    assert _assigned(s.dispatch()) == [("e1", t) for t in erl]
    assert s.workers() == ["py1", "e1"] and s.workers("erlang") == ["e1"]
    assert s.worker_kind("e1") == "erlang" and s.task_kind(erl[0]) == "erlang"
    assert s.live_tasks("erlang") == erl and s.live_tasks("python") == py


def test_a_kind_without_room_does_not_hold_back_another() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=1)
    first = s.submit("x", kind="erlang")
    second = s.submit("y", kind="erlang")
    py = s.submit("a")
    s.worker_up("e1", kind="erlang", capacity=1)
    s.worker_up("py1")
    assert _assigned(s.dispatch()) == [("e1", first), ("py1", py)]
    assert s.state(second) is PENDING
    s.result("py1", py, "A")
    assert s.dispatch() == []  # the Python worker never takes the Erlang task
    s.result("e1", first, "X")
    assert _assigned(s.dispatch()) == [("e1", second)]


def test_a_lost_workers_tasks_wait_for_a_worker_of_their_kind() -> None:
    s: Scheduler[str] = Scheduler()
    t = s.submit("x", kind="erlang")
    s.worker_up("e1", kind="erlang")
    s.worker_up("py1")
    assert _assigned(s.dispatch()) == [("e1", t)]
    assert s.worker_down("e1") == []
    assert s.dispatch() == []  # requeued, suspect, and no idle Erlang worker
    s.worker_up("e2", kind="erlang")
    assert _assigned(s.dispatch()) == [("e2", t)]
    assert s.deaths(t) == ("e1",)


def test_copies_and_pins_stay_within_a_kind() -> None:
    s: Scheduler[str] = Scheduler()
    s.worker_up("e1", kind="erlang", capacity=4)
    s.worker_up("py1")
    s.worker_up("e2", kind="erlang", capacity=4)
    t = s.submit("x", kind="erlang")
    assert _assigned(s.dispatch()) == [("e1", t)]
    assert s.duplicate(t, avoid={"e1"})
    assert _assigned(s.dispatch()) == [("e2", t)]  # not py1, although it is idle
    pinned = s.submit("b", pin="e2", kind="erlang")
    assert _assigned(s.dispatch()) == [("e2", pinned)]
    with pytest.raises(SchedulerError, match="kind"):
        s.submit("c", pin="py1", kind="erlang")
    held = s.submit("d", held=True)
    with pytest.raises(SchedulerError, match="kind"):
        s.pin(held, "e1")


def test_capacity_limit_is_the_one_given_at_worker_up() -> None:
    s: Scheduler[str] = Scheduler(max_in_flight=2)
    s.worker_up("e1", kind="erlang", capacity=8)
    s.set_capacity("e1", 6)
    with pytest.raises(ValueError, match="from 1 to 8"):
        s.set_capacity("e1", 9)
    with pytest.raises(ValueError, match="at least 1"):
        s.worker_up("e2", kind="erlang", capacity=0)
    for p in "abcdefg":
        s.submit(p, kind="erlang")
    assert len(s.dispatch()) == 6


# -- the state machine ---------------------------------------------------------------------------------


class SchedulerMachine(RuleBasedStateMachine):
    """Random events against a model: every task ends up resolved exactly once, nothing is lost, and
    a task only ever goes to a worker of its kind (odd tasks are Erlang ones, workers either kind)."""

    MAX_IN_FLIGHT = 2
    MAX_DEATHS = 3
    TIMERS_AND_CANCELS = True

    def __init__(self) -> None:
        super().__init__()
        self.max_in_flight = self.MAX_IN_FLIGHT
        self.max_deaths = self.MAX_DEATHS
        self.s: Scheduler[int] = Scheduler(max_in_flight=self.max_in_flight, max_deaths=self.max_deaths)
        self.now = 0.0
        self.next_worker = 0
        self.submitted: list[int] = []
        self.resolutions: dict[int, Any] = {}
        self.held: dict[str, list[int]] = {}  # the model of what each live worker holds
        self.dead: list[str] = []
        self.death_log: dict[int, list[str]] = {}
        self.kinds: dict[str, str] = {}  # each worker's kind

    @staticmethod
    def _kind_of(task_id: int) -> str:
        return "erlang" if task_id % 2 else "python"

    # helpers
    def _apply(self, decisions: list[Any]) -> None:
        for d in decisions:
            event(type(d).__name__)
            if isinstance(d, Revocation):
                assert d.task_id in self.held.get(str(d.worker), [])
            else:
                assert d.task_id not in self.resolutions, f"task {d.task_id} resolved twice"
                self.resolutions[d.task_id] = d
                if isinstance(d, Completion):
                    assert d.outcome == ("out", d.task_id)

    def _dispatch(self) -> None:
        for a in self.s.dispatch(self.now):
            assert a.task_id not in self.resolutions
            assert a.payload == a.task_id * 10
            assert self.kinds[str(a.worker)] == self._kind_of(a.task_id)
            self.held[str(a.worker)].append(a.task_id)

    # events
    @rule(timeout=st.none() | st.floats(1, 20), deadline=st.none() | st.floats(0, 50))
    def submit(self, timeout: float | None, deadline: float | None) -> None:
        task_id = len(self.submitted)
        if not self.TIMERS_AND_CANCELS:
            timeout = deadline = None
        got = self.s.submit(
            task_id * 10,
            timeout=timeout,
            deadline=None if deadline is None else self.now + deadline,
            kind=self._kind_of(task_id),
        )
        assert got == task_id
        self.submitted.append(task_id)
        self._dispatch()

    @rule(erlang=st.booleans())
    def worker_up(self, erlang: bool) -> None:
        name = f"w{self.next_worker}"
        self.next_worker += 1
        self.kinds[name] = "erlang" if erlang else "python"
        self.s.worker_up(name, kind=self.kinds[name])
        self.held[name] = []
        self._dispatch()

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def worker_down(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.held)))
        for task_id in self.held[name]:
            if task_id not in self.resolutions:
                self.death_log.setdefault(task_id, []).append(name)
        del self.held[name]
        self.dead.append(name)
        self._apply(self.s.worker_down(name))
        self._dispatch()

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def retire(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.held)))
        del self.held[name]
        self.dead.append(name)
        assert self.s.retire(name) == []  # nothing is pinned in this model
        self._dispatch()

    @precondition(lambda self: self.held)
    @rule(data=st.data(), capacity=st.integers(1, 3))
    def set_capacity(self, data: st.DataObject, capacity: int) -> None:
        name = data.draw(st.sampled_from(sorted(self.held)))
        self.s.set_capacity(name, min(capacity, self.max_in_flight))
        self._dispatch()

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data(), ok=st.booleans())
    def report(self, data: st.DataObject, ok: bool) -> None:
        name = data.draw(st.sampled_from(sorted(n for n, tasks in self.held.items() if tasks)))
        task_id = data.draw(st.sampled_from(self.held[name]))
        self.held[name].remove(task_id)
        was_resolved = task_id in self.resolutions
        decisions = self.s.result(name, task_id, ("out", task_id), ok=ok)
        assert (decisions == []) == was_resolved
        self._apply(decisions)
        self._dispatch()

    @precondition(lambda self: self.submitted and self.dead)
    @rule(data=st.data())
    def late_report_from_the_dead(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.submitted))
        name = data.draw(st.sampled_from(self.dead))
        was_resolved = task_id in self.resolutions
        decisions = self.s.result(name, task_id, ("out", task_id))
        if was_resolved:
            assert decisions == []
        else:
            assert isinstance(decisions[-1], Completion)
        self._apply(decisions)
        self._dispatch()

    @precondition(lambda self: self.submitted and self.TIMERS_AND_CANCELS)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.submitted))
        was_resolved = task_id in self.resolutions
        decisions = self.s.cancel(task_id)
        assert (decisions == []) == was_resolved
        if not was_resolved:
            assert decisions[-1] == Cancellation(task_id)
        self._apply(decisions)
        self._dispatch()

    @precondition(lambda self: self.TIMERS_AND_CANCELS)
    @rule(step=st.floats(0, 30))
    def time_passes(self, step: float) -> None:
        self.now += step
        self._apply(self.s.expire(self.now))
        self._dispatch()

    # invariants
    @invariant()
    def every_live_task_is_in_exactly_one_place(self) -> None:
        live = set(self.s.live_tasks())
        assert live == set(self.submitted) - set(self.resolutions)
        for task_id in live:
            state = self.s.state(task_id)
            holders = [w for w, tasks in self.held.items() if task_id in tasks]
            if state is ASSIGNED:
                assert holders == [self.s.assigned_worker(task_id)]
            else:
                assert state is PENDING and self.s.assigned_worker(task_id) is None

    @invariant()
    def workers_hold_what_the_model_says_and_no_more_than_allowed(self) -> None:
        assert sorted(self.s.workers(), key=str) == sorted(self.held, key=str)
        for name, tasks in self.held.items():
            assert sorted(self.s.in_flight(name)) == sorted(tasks)
            assert len(tasks) <= self.max_in_flight

    @invariant()
    def suspects_run_alone(self) -> None:
        for tasks in self.held.values():
            live = [t for t in tasks if t not in self.resolutions]
            if any(self.s.deaths(t) for t in live):
                assert len(tasks) == 1

    @invariant()
    def losses_follow_the_death_count(self) -> None:
        for task_id, deaths in self.death_log.items():
            resolution = self.resolutions.get(task_id)
            if isinstance(resolution, Loss):
                assert list(resolution.workers) == deaths and len(deaths) == self.max_deaths
            elif resolution is None:
                assert list(self.s.deaths(task_id)) == deaths and len(deaths) < self.max_deaths

    @invariant()
    def work_is_never_left_idle(self) -> None:
        # after dispatch, no live task is queued while a worker could take it
        if self.s.counters.pending == 0:
            return
        waiting = {self._kind_of(t) for t in self.s.live_tasks() if self.s.state(t) is PENDING}
        idle = [w for w, tasks in self.held.items() if not tasks and self.kinds[w] in waiting]
        assert not idle

    @invariant()
    def counters_add_up(self) -> None:
        c = self.s.counters
        assert c.submitted == len(self.submitted)
        assert c.resolved == len(self.resolutions)
        assert c.completed + c.failed + c.cancelled == c.resolved
        assert c.pending + c.running == c.submitted - c.resolved
        assert c.workers == len(self.held) and c.workers_lost == len(self.dead)
        cancelled = sum(isinstance(r, Cancellation) for r in self.resolutions.values())
        assert c.cancelled == cancelled

    def teardown(self) -> None:
        # with a worker that never dies and reports everything, every task resolves
        finishers = {"python": "finisher", "erlang": "erlang finisher"}
        for kind, finisher in finishers.items():
            self.s.worker_up(finisher, kind=kind)
            self.kinds[finisher], self.held[finisher] = kind, []
        for name in [n for n in self.held if n not in finishers.values()]:
            for task_id in self.held[name]:
                if task_id not in self.resolutions:
                    self.death_log.setdefault(task_id, []).append(name)
            del self.held[name]
            self._apply(self.s.worker_down(name))
        self._dispatch()
        while self.held["finisher"] or self.held["erlang finisher"]:
            finisher = "finisher" if self.held["finisher"] else "erlang finisher"
            task_id = self.held[finisher].pop(0)
            self._apply(self.s.result(finisher, task_id, ("out", task_id)))
            self._dispatch()
        assert set(self.resolutions) == set(self.submitted)
        assert self.s.live_tasks() == []


SchedulerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_scheduler_state_machine = SchedulerMachine.TestCase


class DyingWorkersMachine(SchedulerMachine):
    """The same model with deaths the only failure (no timers, no cancels), so Losses happen often."""

    MAX_IN_FLIGHT = 3
    MAX_DEATHS = 2
    TIMERS_AND_CANCELS = False


DyingWorkersMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_dying_workers_state_machine = DyingWorkersMachine.TestCase
