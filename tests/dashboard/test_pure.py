"""The dashboard's pure parts: addresses, worker states, and the farm's bounded history."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from philipjose.dashboard import parse_address
from philipjose.dashboard.farm_view import slot_state
from philipjose.dashboard.node_view import pid_text
from philipjose.farm.errors import TaskError, WorkerLost
from philipjose.farm.history import History, function_of
from philipjose.term import Atom, Pid


def test_addresses() -> None:
    assert parse_address(0) == ("127.0.0.1", 0)
    assert parse_address("8050") == ("127.0.0.1", 8050)
    assert parse_address("0.0.0.0:8050") == ("0.0.0.0", 8050)
    assert parse_address("localhost:1") == ("localhost", 1)
    assert parse_address("[::1]:65535") == ("::1", 65535)
    for bad in (-1, 65536, "x", ":80", "host:", "[nope]:1", "1.5", True, None, 3.0):
        with pytest.raises(ValueError):
            parse_address(bad)  # type: ignore[arg-type]


def test_worker_states() -> None:
    def state(**kw: bool) -> str:
        base = dict(up=False, busy=False, launched=False, connected=False, backing_off=False, kept=True)
        return slot_state(**(base | kw))

    assert state(up=True, launched=True, connected=True) == "up"
    assert state(up=True, busy=True, launched=True, connected=True) == "busy"
    assert state(launched=True) == "starting"  # launched, not connected back yet
    assert state() == "starting"  # its keeper is about to launch
    assert state(backing_off=True) == "backing off"
    assert state(launched=True, connected=True) == "down"  # doomed or lost: its process is going
    assert state(kept=False) == "down"  # retired
    assert state(kept=False, backing_off=True) == "down"


@dataclass
class _Slot:
    index: int
    node: Atom
    last_report: float


@dataclass
class _Future:
    description: str


def test_the_history_keeps_the_last_tasks_and_failures() -> None:
    history = History(per_worker=3, failures=2)
    slot = _Slot(0, Atom("w0g1-abc@127.0.0.1"), 10.0)
    futures = {i: _Future(f"{i} (map mod.f)") for i in range(10)}
    error = TaskError("builtins.ValueError", "bad", "Traceback ...\nValueError: bad\n")
    assigned = {1: 9.0, 2: 9.5}.get
    history.report(slot, [(1, b"x"), (2, b"y"), (3, b"")], [None, error], 12.0, futures, assigned)
    spans = list(history.tasks[0])
    # the two reported tasks share the time since the last report (later than their assignments)
    assert [(s.task_id, s.start, s.end, s.function, s.ok) for s in spans] == [
        (1, 10.0, 11.0, "map mod.f", True),
        (2, 11.0, 12.0, "map mod.f", False),
    ]
    [failure] = history.failures
    assert (failure.task, failure.worker, failure.kind, failure.message) == (
        "2 (map mod.f)",
        "w0g1",
        "builtins.ValueError",
        "bad",
    )
    assert failure.traceback.endswith("ValueError: bad\n")
    slot.last_report = 12.0
    history.report(slot, [(i, b"z") for i in range(4, 8)], [None] * 4, 16.0, futures, lambda _: None)
    assert [s.task_id for s in history.tasks[0]] == [5, 6, 7]  # bounded per worker
    history.lost(futures[8], WorkerLost("8", ["w1"], ["killed by SIGKILL"]), 17.0)
    history.lost(futures[9], WorkerLost("9", ["w1"]), 18.0)
    assert [f.task for f in history.failures] == ["8 (map mod.f)", "9 (map mod.f)"]  # the last ones
    assert history.failures_seen == 3
    assert history.failures[0].kind == "philipjose.farm.errors.WorkerLost"
    history.report(None, [(1, b"x")], [None], 20.0, futures, assigned)  # an unknown worker: ignored
    idle = History(keeping=False)  # a farm without a dashboard
    idle.report(slot, [(1, b"x")], [error], 20.0, futures, assigned)
    idle.lost(futures[8], WorkerLost("8", ["w1"]), 21.0)
    assert not idle.tasks and not idle.failures and idle.failures_seen == 0
    assert function_of(12, "12 (broadcast os.getpid)") == "broadcast os.getpid"
    assert function_of(12, "a description") == "a description"


def test_pids_print_as_erlang_does() -> None:
    local = Atom("a@h")
    assert pid_text(Pid(local, 85, 0, 1), local) == "<0.85.0>"
    assert pid_text(Pid(Atom("b@h"), 7, 2, 1), local) == "<b@h.7.2>"
    assert pid_text("restarting", local) == "restarting"
