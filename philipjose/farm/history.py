"""What a farm has done lately, for its dashboard: a task stream per worker and the last failures.

Bounded whatever the farm's size: each worker slot keeps its last :data:`TASKS_PER_WORKER` finished
tasks and the farm its last :data:`FAILURES_KEPT` failures, in ring buffers (``deque(maxlen=...)``);
every report costs O(tasks reported) and nothing grows with the number of tasks. Counts over all
tasks are the scheduler's counters, not kept here.

The farm feeds it from two small hooks: :meth:`History.report` for each ``pj_done`` a worker sends
(its tasks share the time since the worker's previous report or since they were assigned, whichever
is later: a worker runs its tasks in order), and :meth:`History.lost` for a task that failed without
an outcome from its worker (``WorkerLost``, ``TaskTimeout``). No I/O, no trio: times are the farm's
monotonic clock, given by the caller.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from philipjose.farm.errors import TaskError

__all__ = ["FAILURES_KEPT", "TASKS_PER_WORKER", "Failure", "History", "TaskSpan", "function_of"]

TASKS_PER_WORKER: Final = 100
"""Finished tasks kept per worker slot for the task stream."""

FAILURES_KEPT: Final = 50
"""Failed tasks kept, the most recent ones."""

_TRACEBACK_CHARS: Final = 20_000  # the end of a longer remote traceback is kept


@dataclass(frozen=True, slots=True)
class TaskSpan:
    """One finished task on one worker: when it started and ended, its function, whether it failed."""

    task_id: int
    start: float
    end: float
    function: str
    ok: bool


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed task: its description, the worker (node name; "" if none), when, the error's type,
    message and the remote traceback (empty when the task raised nothing: a lost worker, a timeout)."""

    task: str
    worker: str
    when: float
    kind: str
    message: str
    traceback: str


class _Described(Protocol):
    description: str


class _SlotLike(Protocol):
    index: int
    node: Any
    last_report: float


def function_of(task_id: int, description: str) -> str:
    """The function part of a farm future's description ``"<id> (<function>)"``."""
    prefix = f"{task_id} ("
    if description.startswith(prefix) and description.endswith(")"):
        return description[len(prefix) : -1]
    return description


class History:
    """The farm's recent activity (see the module docstring). ``keeping=False`` records nothing (a
    farm without a dashboard pays nothing per task)."""

    def __init__(
        self, per_worker: int = TASKS_PER_WORKER, failures: int = FAILURES_KEPT, *, keeping: bool = True
    ) -> None:
        self.keeping = keeping
        self.per_worker = per_worker
        self.tasks: dict[int, deque[TaskSpan]] = {}
        self.failures: deque[Failure] = deque(maxlen=failures)
        self.failures_seen = 0

    def report(
        self,
        slot: _SlotLike | None,
        items: Sequence[tuple[int, bytes]],
        outcomes: Iterable[object],
        now: float,
        futures: Mapping[int, _Described],
        assigned_at: Callable[[int], float | None],
    ) -> None:
        """A worker of ``slot`` reported ``items`` (task id, outcome bytes; empty bytes: a task it
        dropped) with the decoded ``outcomes`` of the non-empty ones, at ``now``. Call it before the
        farm resolves them (their futures give their descriptions) and before ``slot.last_report`` is
        moved to ``now``."""
        if slot is None or not self.keeping:
            return
        done = [(task_id, futures.get(task_id)) for task_id, payload in items if payload]
        if not done:
            return
        started = [t for t in (assigned_at(task_id) for task_id, _ in done) if t is not None]
        start = max(slot.last_report, min(started, default=now))
        step = max(0.0, now - start) / len(done)
        spans = self.tasks.get(slot.index)
        if spans is None:
            spans = self.tasks[slot.index] = deque(maxlen=self.per_worker)
        worker = str(slot.node).partition("-")[0]
        for (task_id, future), outcome in zip(done, outcomes, strict=False):
            description = future.description if future is not None else str(task_id)
            ok = not isinstance(outcome, TaskError)
            end = start + step
            spans.append(TaskSpan(task_id, start, end, function_of(task_id, description), ok))
            start = end
            if not ok and future is not None:
                assert isinstance(outcome, TaskError)
                self._failed(
                    description, worker, now, outcome.remote_type, outcome.message, outcome.remote_traceback
                )

    def lost(self, future: _Described, error: BaseException, now: float) -> None:
        """The task of ``future`` failed with ``error`` and no outcome from a worker."""
        if not self.keeping:
            return
        cls = type(error)
        self._failed(future.description, "", now, f"{cls.__module__}.{cls.__qualname__}", str(error), "")

    def _failed(self, task: str, worker: str, when: float, kind: str, message: str, tb: str) -> None:
        self.failures_seen += 1
        if len(tb) > _TRACEBACK_CHARS:
            tb = "...\n" + tb[-_TRACEBACK_CHARS:]
        self.failures.append(Failure(task, worker, when, kind, message, tb))
