"""The farmer's bookkeeping: which task runs where, what to rerun, what is resolved. Pure: no I/O, no trio.

Theory of operation
-------------------
The farm's event loop reports what happened (``submit``, ``worker_up``, ``worker_down``, ``result``,
``cancel``, ``expire``, ``set_capacity``) and carries out what :class:`Scheduler` decides: each event
returns the decisions it caused (resolutions of tasks, revocations to send to workers), and
:meth:`dispatch` returns the assignments to send. Time is whatever monotonic number the loop passes as
``now``; the scheduler never reads a clock, so every rule below can be tested by feeding events.

A task is created PENDING (queued). :meth:`dispatch` makes it ASSIGNED to one worker, filling each
worker up to its capacity (``max_in_flight`` unless :meth:`set_capacity` lowers it; pipelining: a
worker has its next tasks before it finishes the current one), least-loaded worker first.
A task leaves the books exactly once, RESOLVED by one of:

- :class:`Completion`: a worker reported its outcome. A later report for the same task (a worker that
  was presumed dead, a cancelled task that finished anyway) is a duplicate and is dropped; a report
  from another worker than the one it is assigned to still resolves it, and the assigned worker
  gets a :class:`Revocation`.
- :class:`Loss`: the task was in flight on ``max_deaths`` workers (default 3) that died, in a row.
  A worker's death requeues every live task it held, at the front of the queue (at-least-once
  execution: the task may have run, wholly or partly, on the dead worker). A requeued task is
  *suspect*: it is assigned only to an idle worker and nothing else is assigned to that worker until
  it reports, so a poison task that kills its workers takes no innocent neighbours with it after its
  first death. A task pinned to a worker (broadcast) cannot move: that worker's death is its Loss.
- :class:`Expiry`: its deadline passed (``deadline``, absolute, counted from submit) or it ran for
  longer than its ``timeout`` (re-armed at every assignment). If it is in flight, its worker gets a
  :class:`Revocation`.
- :class:`Cancellation`: :meth:`cancel` was called. If it is in flight, its worker gets a
  :class:`Revocation`.

A worker the loop kills on purpose (a race's loser, a cancelled or timed-out task that would not
stop) leaves with :meth:`retire` at the moment of that decision, not when it dies: nothing more is
assigned to it, and the tasks it held that had not started (a worker runs its tasks in order, so
all but the revoked one) are queued again at the front without counting a death against them. Its
pinned tasks (a broadcast) become *held*: they wait, assigned nowhere, until the loop pins them to
the worker that replaces it (:meth:`pin`) or gives them up (:meth:`abandon`, a :class:`Loss`).
A task can also be submitted held (``held=True``): a broadcast for a worker still being replaced.

Duplicates (speculation: :mod:`philipjose.farm.speculation` decides, :meth:`duplicate` asks): a
running task may get *copies*, the same task assigned to other workers as well (never to one that
``avoid`` names). The first copy served is assigned before the queue at the next :meth:`dispatch`
to the least-loaded worker with room. The task stays one task: the first successful report
resolves it, and every other worker holding it gets a :class:`Revocation` with ``stop``
``"speculation"`` (the loop stops a running loser for real); an error report from one copy while
another still runs only drops that copy (if they all fail, the last error resolves it). A copy's
worker dying or retiring drops that copy; the death is charged to the task as any other. When the
first worker holding it is lost, a surviving copy carries the task on (it is not queued again).
A task submitted with ``idempotent=False`` never gets a copy.

A revoked task stays in its worker's in-flight set, occupying its slot, until that worker reports
anything for it or dies: a worker cannot be handed more work than it can hold while it may still be
computing something nobody wants (the loop decides whether a revocation cancels the task in the
worker or kills the worker).

Kinds: every task and every worker has a *kind* (any hashable; the farm uses ``"python"``, the
default, and ``"erlang"``). A task is only ever assigned to a worker of its kind (pinned to one,
copied to one), and each kind has its own queue, so tasks of a kind with no worker with room never
hold back the others. A worker's kind and its capacity limit are given when it comes up
(:meth:`worker_up`); a worker of another kind may hold more than ``max_in_flight`` (an Erlang node
runs as many tasks at once as it has schedulers).

Memory: only live tasks and in-flight ids are kept; a resolved task is forgotten, and a report for
it is recognized as a duplicate because task ids are issued in increasing order.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from philipjose.farm.errors import FarmError

__all__ = [
    "ASSIGNED",
    "DEFAULT_KIND",
    "DEFAULT_MAX_DEATHS",
    "DEFAULT_MAX_IN_FLIGHT",
    "PENDING",
    "RESOLVED",
    "Assignment",
    "Cancellation",
    "Completion",
    "Counters",
    "Decision",
    "Expiry",
    "Loss",
    "Resolution",
    "Revocation",
    "Running",
    "Scheduler",
    "SchedulerError",
    "TaskState",
    "fair_share",
]

P = TypeVar("P")
WorkerId = Hashable

DEFAULT_MAX_IN_FLIGHT = 2
"""Tasks a worker holds at once by default: the one it runs and the next one."""

DEFAULT_KIND = "python"
"""The kind of a task or worker unless told otherwise."""

DEFAULT_MAX_DEATHS = 3
"""Worker deaths a task may be in flight for before it fails with a :class:`Loss`."""


class TaskState(enum.Enum):
    """Where a task is: queued, on a worker, or done with."""

    PENDING = "pending"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


PENDING = TaskState.PENDING
ASSIGNED = TaskState.ASSIGNED
RESOLVED = TaskState.RESOLVED


class SchedulerError(FarmError, LookupError):
    """The loop named a worker or task the scheduler does not know (the caller's fault)."""


# -- decisions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assignment(Generic[P]):
    """Send task ``task_id`` (with its ``payload``) to ``worker``."""

    worker: WorkerId
    task_id: int
    payload: P


@dataclass(frozen=True, slots=True)
class Revocation:
    """Tell ``worker`` to stop task ``task_id`` (or drop it if it has not started): it is resolved."""

    worker: WorkerId
    task_id: int
    stop: str | None = None  # why the loop must stop it for real if it runs ("speculation"), or None


@dataclass(frozen=True, slots=True)
class Completion:
    """Task ``task_id`` is resolved with the ``outcome`` ``worker`` reported (``ok``: not an error)."""

    task_id: int
    outcome: Any
    worker: WorkerId
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Loss:
    """Task ``task_id`` failed: the ``workers`` it was in flight on died, in this order."""

    task_id: int
    workers: tuple[WorkerId, ...]


@dataclass(frozen=True, slots=True)
class Expiry:
    """Task ``task_id`` failed: it ran past its ``timeout`` (s), or (``timeout`` None) its deadline."""

    task_id: int
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Cancellation:
    """Task ``task_id`` is resolved as cancelled."""

    task_id: int


Resolution = Completion | Loss | Expiry | Cancellation
Decision = Assignment[Any] | Revocation | Resolution


@dataclass(frozen=True, slots=True)
class Counters:
    """A snapshot of the farm's progress.

    ``submitted`` tasks, of which ``resolved`` are done with: ``completed`` (ok), ``failed`` (an error
    outcome, a Loss or an Expiry) and ``cancelled``. ``pending`` wait in queues, ``running`` are
    assigned. ``retries`` counts requeues after a worker died, ``duplicates`` the dropped late
    reports; ``workers`` are alive now, ``workers_lost`` have died so far; ``machines_down`` is how many
    machines the farm's failure policy has given up on (the scheduler itself always reports 0; the
    farm fills it in). ``duplicates_started``: copies of running tasks handed to a worker
    (speculation), ``duplicates_won``: tasks a copy resolved first. ``replayed``: tasks resolved
    from the farm's journal without running (included in ``submitted``, ``resolved``,
    ``completed`` and ``failed``; the farm fills it in).
    """

    submitted: int = 0
    resolved: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    pending: int = 0
    running: int = 0
    retries: int = 0
    duplicates: int = 0
    workers: int = 0
    workers_lost: int = 0
    machines_down: int = 0
    duplicates_started: int = 0
    duplicates_won: int = 0
    replayed: int = 0


# -- state ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Task(Generic[P]):
    task_id: int
    payload: P
    timeout: float | None
    pin: WorkerId | None
    state: TaskState = PENDING
    worker: WorkerId | None = None
    generation: int = 0
    deaths: list[WorkerId] = field(default_factory=list)
    held: bool = False  # waits for pin() or abandon(), in no queue
    idempotent: bool = True
    assigned_at: float = 0.0  # when it was last assigned (the ``now`` of that dispatch)
    copies: list[WorkerId] = field(default_factory=list)  # other workers running it (duplicates)
    duplicates: int = 0  # copies asked for so far
    kind: Hashable = DEFAULT_KIND
    alone: bool = False  # it waits for an idle worker and has it to itself (a race's competitors)


@dataclass(frozen=True, slots=True)
class Running:
    """A task assigned to a worker (as its first holder): its id, when it was assigned, how many
    copies were asked for it, whether it may be duplicated, and the workers holding copies."""

    task_id: int
    assigned_at: float
    duplicates: int
    idempotent: bool
    copies: tuple[WorkerId, ...] = ()


@dataclass(slots=True)
class _Worker:
    worker_id: WorkerId
    capacity: int
    in_flight: dict[int, None] = field(default_factory=dict)  # an ordered set of task ids
    exclusive: int | None = None  # the suspect task it runs alone
    pinned: deque[int] = field(default_factory=deque)
    reported: int = 0
    kind: Hashable = DEFAULT_KIND
    limit: int = DEFAULT_MAX_IN_FLIGHT  # the most set_capacity may give it


_ABSOLUTE = -1  # the generation of a heap entry for an absolute deadline


def fair_share(tasks: int, workers: int) -> int:
    """The most tasks one of ``workers`` should hold when ``tasks`` are to be shared among them:
    ``tasks / workers`` rounded up (0 without workers)."""
    return -(-tasks // workers) if workers > 0 else 0


class Scheduler(Generic[P]):
    """The farmer's bookkeeping (see the module docstring).

    ``max_in_flight`` (default 2, at least 1) bounds the tasks a worker holds at once;
    ``max_deaths`` (default 3, at least 1) is how many dead workers a task may take before its Loss.
    Worker ids are any hashable values (node names, numbers). ``P`` is the payload type.
    """

    def __init__(
        self, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, max_deaths: int = DEFAULT_MAX_DEATHS
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        if max_deaths < 1:
            raise ValueError(f"max_deaths must be at least 1, not {max_deaths}")
        self.max_in_flight = max_in_flight
        self.max_deaths = max_deaths
        self._next_id = 0
        self._tasks: dict[int, _Task[P]] = {}
        self._queues: dict[Hashable, deque[int]] = {}  # by kind
        self._workers: dict[WorkerId, _Worker] = {}
        self._deadlines: list[tuple[float, int, int]] = []
        self._copy_requests: deque[tuple[int, frozenset[WorkerId]]] = deque()
        self._pending = 0
        self._counts = {
            "submitted": 0,
            "completed": 0,
            "failed": 0,
            "cancelled": 0,
            "retries": 0,
            "duplicates": 0,
            "workers_lost": 0,
            "duplicates_started": 0,
            "duplicates_won": 0,
        }

    # -- queries -------------------------------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        """The progress counters now."""
        c = self._counts
        live = len(self._tasks)
        return Counters(
            submitted=c["submitted"],
            resolved=c["submitted"] - live,
            completed=c["completed"],
            failed=c["failed"],
            cancelled=c["cancelled"],
            pending=self._pending,
            running=live - self._pending,
            retries=c["retries"],
            duplicates=c["duplicates"],
            workers=len(self._workers),
            workers_lost=c["workers_lost"],
            duplicates_started=c["duplicates_started"],
            duplicates_won=c["duplicates_won"],
        )

    def state(self, task_id: int) -> TaskState:
        """Where task ``task_id`` is; :class:`SchedulerError` for an id never issued."""
        self._check_issued(task_id)
        task = self._tasks.get(task_id)
        return RESOLVED if task is None else task.state

    def assigned_worker(self, task_id: int) -> WorkerId | None:
        """The worker task ``task_id`` is assigned to, or None (pending or resolved)."""
        task = self._tasks.get(task_id)
        return None if task is None else task.worker

    def deaths(self, task_id: int) -> tuple[WorkerId, ...]:
        """The workers that died while task ``task_id`` (live) was in flight on them."""
        task = self._tasks.get(task_id)
        return () if task is None else tuple(task.deaths)

    def workers(self, kind: Hashable | None = None) -> list[WorkerId]:
        """The workers alive (of ``kind``, or all), in the order they came up."""
        if kind is None:
            return list(self._workers)
        return [w for w, state in self._workers.items() if state.kind == kind]

    def worker_kind(self, worker: WorkerId) -> Hashable:
        """The kind ``worker`` (up) was registered with."""
        return self._worker(worker).kind

    def task_kind(self, task_id: int) -> Hashable | None:
        """The kind of the live task ``task_id``, or None (resolved)."""
        task = self._tasks.get(task_id)
        return None if task is None else task.kind

    def in_flight(self, worker: WorkerId) -> tuple[int, ...]:
        """The task ids ``worker`` holds (revoked ones included), oldest first."""
        return tuple(self._worker(worker).in_flight)

    def reported(self, worker: WorkerId) -> int:
        """How many task reports ``worker`` has sent (duplicates included)."""
        return self._worker(worker).reported

    def running(self, worker: WorkerId) -> list[Running]:
        """The live tasks ``worker`` holds as their first holder (not copies, not revoked ones),
        oldest first: what speculation looks at."""
        found = []
        for task_id in self._worker(worker).in_flight:
            task = self._tasks.get(task_id)
            if task is not None and task.worker == worker:
                found.append(
                    Running(task_id, task.assigned_at, task.duplicates, task.idempotent, tuple(task.copies))
                )
        return found

    def has_running(self) -> bool:
        """Whether some live task is assigned to a worker."""
        return len(self._tasks) > self._pending

    def assigned_at(self, task_id: int) -> float | None:
        """When the live task ``task_id`` was last assigned, or None (queued or resolved)."""
        task = self._tasks.get(task_id)
        return None if task is None or task.state is not ASSIGNED else task.assigned_at

    def holders(self, task_id: int) -> tuple[WorkerId, ...]:
        """The workers the live task ``task_id`` is assigned to: the first, then its copies."""
        task = self._tasks.get(task_id)
        if task is None or task.worker is None:
            return ()
        return (task.worker, *task.copies)

    def live_tasks(self, kind: Hashable | None = None) -> list[int]:
        """The ids of the tasks not yet resolved (of ``kind``, or all), in submit order."""
        if kind is None:
            return sorted(self._tasks)
        return sorted(t for t, task in self._tasks.items() if task.kind == kind)

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`expire` has something to do, or None."""
        while self._deadlines:
            when, task_id, generation = self._deadlines[0]
            if self._deadline_is_current(task_id, generation):
                return when
            heapq.heappop(self._deadlines)
        return None

    # -- events --------------------------------------------------------------------------------------

    def submit(
        self,
        payload: P,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        pin: WorkerId | None = None,
        held: bool = False,
        idempotent: bool = True,
        kind: Hashable = DEFAULT_KIND,
        alone: bool = False,
    ) -> int:
        """Queue a task; returns its id (0, 1, 2, ...). Call :meth:`dispatch` to assign it.

        ``timeout``: the longest it may run on a worker (seconds, re-armed at each assignment);
        ``deadline``: the time (on the ``now`` scale) by which it must be resolved, queued or not;
        ``pin``: the one worker it must run on (a broadcast); that worker must be up; ``held``: the
        task waits, assigned nowhere, until :meth:`pin` or :meth:`abandon` (not with ``pin``);
        ``idempotent`` False: it never gets a copy (:meth:`duplicate`); ``kind``: only workers of that
        kind run it (a pinned task's worker must be of its kind); ``alone``: it waits for an idle
        worker and has it to itself, as a suspect task does (a race's competitors on workers that run
        one task at a time: none may wait behind another while a second worker is free).
        """
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if pin is not None and pin not in self._workers:
            raise SchedulerError(f"cannot pin a task to {pin!r}: no such worker is up")
        if pin is not None and held:
            raise ValueError("a task is either pinned or held, not both")
        if pin is not None and self._workers[pin].kind != kind:
            raise SchedulerError(
                f"cannot pin a task of kind {kind!r} to the {self._workers[pin].kind!r} worker {pin!r}"
            )
        task_id = self._next_id
        self._next_id += 1
        self._tasks[task_id] = _Task(
            task_id, payload, timeout, pin, held=held, idempotent=idempotent, kind=kind, alone=alone
        )
        self._counts["submitted"] += 1
        self._pending += 1
        if pin is not None:
            self._workers[pin].pinned.append(task_id)
        elif not held:
            self._queue(kind).append(task_id)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, task_id, _ABSOLUTE))
        return task_id

    def worker_up(
        self, worker: WorkerId, *, kind: Hashable = DEFAULT_KIND, capacity: int | None = None
    ) -> None:
        """``worker`` is connected and ready for tasks of ``kind``. Call :meth:`dispatch` to give it
        some. ``capacity``: the most tasks it holds at once, and the most :meth:`set_capacity` may
        give it (default ``max_in_flight``; any number from 1)."""
        if worker in self._workers:
            raise SchedulerError(f"worker {worker!r} is already up")
        limit = self.max_in_flight if capacity is None else capacity
        if limit < 1:
            raise ValueError(f"capacity must be at least 1, not {limit}")
        self._workers[worker] = _Worker(worker, limit, kind=kind, limit=limit)

    def set_capacity(self, worker: WorkerId, capacity: int) -> None:
        """Let ``worker`` hold at most ``capacity`` tasks (1 to its limit: ``max_in_flight``, the
        default, or the ``capacity`` it came up with).

        The loop may tune it to how fast the worker gets through its tasks: deep pipelines for tiny
        tasks, shallow ones for long tasks (better balance at the end of a batch). Tasks it already
        holds beyond a lowered capacity stay with it.
        """
        state = self._worker(worker)
        if not 1 <= capacity <= state.limit:
            raise ValueError(f"capacity must be from 1 to {state.limit}, not {capacity}")
        state.capacity = capacity

    def worker_down(self, worker: WorkerId) -> list[Decision]:
        """``worker`` died or was cut off: requeue its live tasks or resolve them as a :class:`Loss`."""
        state = self._workers.pop(self._worker(worker).worker_id)
        self._counts["workers_lost"] += 1
        decisions: list[Decision] = []
        requeue: list[int] = []
        for task_id in state.in_flight:
            task = self._tasks.get(task_id)
            if task is None or (task.worker != worker and worker not in task.copies):
                continue  # a revoked task, already resolved
            task.deaths.append(worker)
            if worker in task.copies or task.copies:
                # a copy carries on (the lost worker held a copy, or the first one and a copy survives)
                if worker in task.copies:
                    task.copies.remove(worker)
                else:
                    task.worker = task.copies.pop(0)
                if len(task.deaths) >= self.max_deaths:
                    decisions += [Revocation(w, task_id) for w in (task.worker, *task.copies)]
                    decisions.append(self._resolve(Loss(task_id, tuple(task.deaths))))
                continue
            task.state, task.worker = PENDING, None
            self._pending += 1
            if task.pin is not None or len(task.deaths) >= self.max_deaths:
                decisions.append(self._resolve(Loss(task_id, tuple(task.deaths))))
            else:
                requeue.append(task_id)
        for task_id in state.pinned:
            task = self._tasks.get(task_id)
            if task is not None and task.state is PENDING:
                decisions.append(self._resolve(Loss(task_id, (worker,))))
        self._counts["retries"] += len(requeue)
        self._queue(state.kind).extendleft(reversed(requeue))
        return decisions

    def retire(self, worker: WorkerId) -> list[int]:
        """``worker`` is being killed on purpose: it leaves now (see the module docstring).

        Its tasks that are live and not revoked are queued again at the front, with no death
        counted; its pinned tasks become held, and their ids are returned (for :meth:`pin` to the
        worker that replaces it, or :meth:`abandon`). Counted in ``workers_lost`` (it dies).
        """
        state = self._workers.pop(self._worker(worker).worker_id)
        self._counts["workers_lost"] += 1
        requeue: list[int] = []
        held: list[int] = []
        for task_id in [*state.in_flight, *state.pinned]:
            task = self._tasks.get(task_id)
            if task is not None and task.state is ASSIGNED and worker in task.copies:
                task.copies.remove(worker)  # a copy: the task runs on elsewhere
                continue
            if task is not None and task.state is ASSIGNED and task.worker == worker and task.copies:
                task.worker = task.copies.pop(0)  # its copy carries it on
                continue
            if task is None or (task.state is ASSIGNED and task.worker != worker):
                continue  # resolved, or revoked and reassigned meanwhile
            if task.state is ASSIGNED:
                task.state, task.worker = PENDING, None
                self._pending += 1
            if task.pin is not None:
                task.pin, task.held = None, True
                held.append(task_id)
            elif task_id not in requeue:
                requeue.append(task_id)
        self._queue(state.kind).extendleft(reversed(requeue))
        return held

    def pin(self, task_id: int, worker: WorkerId) -> None:
        """Pin the held task ``task_id`` to ``worker`` (up); :meth:`dispatch` then assigns it."""
        self._check_issued(task_id)
        task = self._tasks.get(task_id)
        if task is None:
            return  # resolved meanwhile (cancelled, or the farm broke)
        if not task.held:
            raise SchedulerError(f"task {task_id} is not held")
        state = self._worker(worker)
        if state.kind != task.kind:
            raise SchedulerError(
                f"cannot pin task {task_id} of kind {task.kind!r} to a {state.kind!r} worker"
            )
        state.pinned.append(task_id)
        task.pin, task.held = worker, False

    def abandon(self, task_id: int, workers: tuple[WorkerId, ...] = ()) -> list[Decision]:
        """Give up the held task ``task_id``: its :class:`Loss` (``[]`` if resolved meanwhile)."""
        self._check_issued(task_id)
        task = self._tasks.get(task_id)
        if task is None:
            return []
        if not task.held:
            raise SchedulerError(f"task {task_id} is not held")
        return [self._resolve(Loss(task_id, workers))]

    def result(self, worker: WorkerId, task_id: int, outcome: Any, *, ok: bool = True) -> list[Decision]:
        """``worker`` reports ``outcome`` for ``task_id`` (``ok`` False for an error outcome).

        Resolves the task with a :class:`Completion` if it is live (revoking it from another worker
        that holds it); a report for a resolved task is a dropped duplicate (returns ``[]``). The
        report may come from a worker already down. :class:`SchedulerError` for an id never issued.
        """
        self._check_issued(task_id)
        state = self._workers.get(worker)
        if state is not None:
            state.reported += 1
            self._release(state, task_id)
        task = self._tasks.get(task_id)
        if task is None:
            self._counts["duplicates"] += 1
            return []
        holders = [] if task.worker is None else [task.worker, *task.copies]
        if not ok and worker in holders and len(holders) > 1:
            # one copy failed while another still runs: drop this one, the others may yet succeed
            if worker == task.worker:
                task.worker = task.copies.pop(0)
            else:
                task.copies.remove(worker)
            return []
        stop = "speculation" if task.copies else None
        decisions: list[Decision] = [Revocation(w, task_id, stop) for w in holders if w != worker]
        if worker in task.copies:
            self._counts["duplicates_won"] += 1
        decisions.append(self._resolve(Completion(task_id, outcome, worker, ok)))
        return decisions

    def cancel(self, task_id: int) -> list[Decision]:
        """Cancel ``task_id``: a :class:`Cancellation`, plus a :class:`Revocation` if it is in flight.

        Returns ``[]`` if it is already resolved.
        """
        self._check_issued(task_id)
        task = self._tasks.get(task_id)
        if task is None:
            return []
        decisions: list[Decision] = [Revocation(w, task_id) for w in self.holders(task_id)]
        decisions.append(self._resolve(Cancellation(task_id)))
        return decisions

    def expire(self, now: float) -> list[Decision]:
        """Resolve every task whose deadline or run timeout is at or before ``now`` as an :class:`Expiry`."""
        decisions: list[Decision] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, task_id, generation = heapq.heappop(self._deadlines)
            if not self._deadline_is_current(task_id, generation):
                continue
            task = self._tasks[task_id]
            decisions += [Revocation(w, task_id) for w in self.holders(task_id)]
            timeout = None if generation == _ABSOLUTE else task.timeout
            decisions.append(self._resolve(Expiry(task_id, timeout)))
        return decisions

    def duplicate(self, task_id: int, avoid: Iterable[WorkerId] = ()) -> bool:
        """Ask for a copy of the running task ``task_id`` on a worker not in ``avoid`` (nor holding
        it): :meth:`dispatch` assigns it, before the queue, as soon as such a worker has room.

        Returns False (and does nothing) for a task that is not assigned, is pinned, or was
        submitted with ``idempotent=False``.
        """
        self._check_issued(task_id)
        task = self._tasks.get(task_id)
        if task is None or task.state is not ASSIGNED or task.pin is not None or not task.idempotent:
            return False
        task.duplicates += 1
        self._copy_requests.append((task_id, frozenset(avoid)))
        return True

    def dispatch(self, now: float = 0.0) -> list[Assignment[P]]:
        """Assign queued tasks to workers with room; ``now`` starts the run timeouts.

        Pinned tasks go to their worker; then each kind's queue is served in order, each task to the
        least-loaded worker of its kind (earliest joined on ties), none past its fair share: the
        kind's queued and running tasks divided among its workers, rounded up
        (:func:`fair_share`). A worker's capacity follows the speed of the tasks it ran last, so
        the first of a run of long tasks would otherwise fill the deeper pipelines, and a worker
        could be left with several to run one after another while the others have finished. A
        suspect task (one whose worker died) waits for an idle worker and gets it to itself; tasks
        of its kind behind it wait too, so it cannot starve.
        """
        assignments: list[Assignment[P]] = []
        if self._copy_requests:
            assignments += self._dispatch_copies()
        for state in self._workers.values():
            while state.pinned and state.exclusive is None and len(state.in_flight) < state.capacity:
                task = self._tasks.get(state.pinned.popleft())
                if task is not None and task.state is PENDING:
                    assignments.append(self._assign(task, state, now))
        for kind, queue in self._queues.items():
            if not queue:
                continue  # (most dispatches: a report frees a slot and nothing waits)
            fair = self._fair_share(kind, len(queue))
            while queue:
                task = self._tasks.get(queue[0])
                if task is None or task.state is not PENDING:
                    queue.popleft()  # resolved while queued
                    continue
                alone = task.alone or bool(task.deaths)
                chosen = self._idle_worker(kind) if alone else self._least_loaded_worker(kind, fair)
                if chosen is None:
                    break
                queue.popleft()
                assignments.append(self._assign(task, chosen, now))
                if alone:
                    chosen.exclusive = task.task_id  # it leaves the others their share
                    fair = self._fair_share(kind, len(queue))
        return assignments

    # -- helpers -------------------------------------------------------------------------------------

    def _queue(self, kind: Hashable) -> deque[int]:
        queue = self._queues.get(kind)
        if queue is None:
            queue = self._queues[kind] = deque()
        return queue

    def _worker(self, worker: WorkerId) -> _Worker:
        state = self._workers.get(worker)
        if state is None:
            raise SchedulerError(f"no worker {worker!r} is up")
        return state

    def _check_issued(self, task_id: int) -> None:
        if not isinstance(task_id, int) or not 0 <= task_id < self._next_id:
            raise SchedulerError(f"no task {task_id!r} was ever submitted")

    def _deadline_is_current(self, task_id: int, generation: int) -> bool:
        task = self._tasks.get(task_id)
        if task is None:
            return False
        if generation == _ABSOLUTE:
            return True
        return task.state is ASSIGNED and task.generation == generation

    def _release(self, state: _Worker, task_id: int) -> None:
        state.in_flight.pop(task_id, None)
        if state.exclusive == task_id:
            state.exclusive = None

    def _resolve(self, resolution: Resolution) -> Resolution:
        task = self._tasks.pop(resolution.task_id)
        if task.state is PENDING:
            self._pending -= 1
        if isinstance(resolution, Completion):
            self._counts["completed" if resolution.ok else "failed"] += 1
        elif isinstance(resolution, Cancellation):
            self._counts["cancelled"] += 1
        else:
            self._counts["failed"] += 1
        return resolution

    def _assign(self, task: _Task[P], state: _Worker, now: float) -> Assignment[P]:
        task.state, task.worker = ASSIGNED, state.worker_id
        task.assigned_at = now
        task.generation += 1
        self._pending -= 1
        state.in_flight[task.task_id] = None
        if task.timeout is not None:
            heapq.heappush(self._deadlines, (now + task.timeout, task.task_id, task.generation))
        return Assignment(state.worker_id, task.task_id, task.payload)

    def _dispatch_copies(self) -> list[Assignment[P]]:
        assignments: list[Assignment[P]] = []
        waiting: deque[tuple[int, frozenset[WorkerId]]] = deque()
        while self._copy_requests:
            task_id, avoid = self._copy_requests.popleft()
            task = self._tasks.get(task_id)
            if task is None or task.state is not ASSIGNED:
                continue  # resolved, or queued again meanwhile: no copy needed
            best: _Worker | None = None
            for state in self._workers.values():
                load = len(state.in_flight)
                if (
                    state.kind == task.kind
                    and state.worker_id not in avoid
                    and task_id not in state.in_flight
                    and state.exclusive is None
                    and load < state.capacity
                    and (best is None or load < len(best.in_flight))
                ):
                    best = state
            if best is None:
                waiting.append((task_id, avoid))
                continue
            best.in_flight[task_id] = None
            task.copies.append(best.worker_id)
            self._counts["duplicates_started"] += 1
            assignments.append(Assignment(best.worker_id, task_id, task.payload))
        self._copy_requests = waiting
        return assignments

    def _idle_worker(self, kind: Hashable) -> _Worker | None:
        for state in self._workers.values():
            if state.kind == kind and not state.in_flight and state.exclusive is None:
                return state
        return None

    def _fair_share(self, kind: Hashable, queued: int) -> int:
        loads = [len(s.in_flight) for s in self._workers.values() if s.kind == kind and s.exclusive is None]
        return fair_share(sum(loads) + queued, len(loads))

    def _least_loaded_worker(self, kind: Hashable, fair: int) -> _Worker | None:
        best: _Worker | None = None
        for state in self._workers.values():
            load = len(state.in_flight)
            if (
                state.kind == kind
                and state.exclusive is None
                and load < state.capacity
                and load < fair
                and (best is None or load < len(best.in_flight))
            ):
                best = state
        return best
