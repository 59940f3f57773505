"""The worker: a philipjose node that connects back to its farmer and runs the tasks it is sent.

Started by the farmer as ``python -m philipjose worker --farmer NODE --farmer-port PORT --name NODE
--farm NAME`` (locally, or over ssh), with the farm's cookie as the first line of its stdin (or in a
0600 file given with ``--cookie-file``); never on the command line. It is a distributed node that
does not register with EPMD: it is told the farmer's port and connects to it.

Protocol (Erlang terms over the distribution connection; ``FARM`` is the farmer's registered name):

- worker -> ``{FARM, farmer}``: ``(pj_worker_up, WorkerPid, Host :: binary, OsPid :: int)``;
- farmer -> worker: ``(pj_init, Payload :: binary)``: the farm's ``initializer`` (when it has one),
  sent before any task; run before them, reported as task ``-1`` (``INIT_TASK``), first in its
  ``pj_done``;
- farmer -> worker: ``(pj_run, [(TaskId, Payload :: binary), ...])``: tasks to queue, in order;
- farmer -> worker: ``(pj_revoke, TaskId)``: drop that task if it has not started, and stop it
  if it is running (:class:`~philipjose.farm.interrupt.Interrupter`: ``TaskCancelled`` raised in
  its thread);
- farmer -> worker: ``pj_stop``: exit;
- worker -> ``{FARM, farmer}``: ``(pj_done, WorkerPid, [(TaskId, Outcome :: binary), ...])``, one
  report per task, an empty ``Outcome`` for a task dropped after a revocation.

A worker its farmer started on the farmer's own host also has a *lane* (``--lane R,W``, two pipes
the farmer made: :mod:`philipjose.farm.lane`): its tasks (``pj_run``'s and ``pj_init``'s items)
come through it, and their outcomes go back through it as ``pj_done``'s items would; a thread of
the worker's own reads the lane, runs what comes and writes the outcomes, so the event loop is not
on the tasks' way at all. Revocations and everything else still come over the distribution
connection.

Tasks run one at a time, in order, in a thread of their own
(:class:`~philipjose.farm.taskthread.TaskThread`, so the node keeps answering ticks while a task
computes), with :func:`philipjose.farm.shipping.run_task`. Quick tasks are batched: one thread hop
runs queued tasks until 5 ms have passed and their outcomes go back in one ``pj_done`` message; a
longer task is reported as soon as it ends. The loop waits up to 1 ms for each batch before it goes
on serving (``TaskThread.run(wait=...)``): a batch done by then is reported without a pass through
the scheduler (a trivial call in the thread and back: 91-107 -> 55-68 us on a 2-core VM). The worker
exits when the farmer's node goes down, when its stdin (the lifeline) ends, or on ``pj_stop``. If
its first connection to the farmer fails (a wrong secret: the farmer refuses the handshake; or
nothing listening there), :func:`serve` raises
:class:`FarmerUnreachable` and ``philipjose worker`` exits with status 1 and one line on stderr
(status 2 when it has no usable secret). A revoked running task is interrupted (Python code stops
at once; a thread blocked in C code, a ``time.sleep`` for one, does not): if the worker has not
reported it within a short grace period, the farmer kills the worker process.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import trio

import philipjose as pj
from philipjose.actors import current_runtime
from philipjose.farm.errors import FarmError
from philipjose.farm.interrupt import Interrupter
from philipjose.farm.joining import LEAVE, LEFT, join
from philipjose.farm.lane import LaneError, WorkerLane
from philipjose.farm.launch import wait_for_lifeline
from philipjose.farm.shipping import run_task
from philipjose.farm.sizes import DEFAULT_MAX_MESSAGE_SIZE, frame_limit, split_by_size
from philipjose.farm.taskthread import TaskThread
from philipjose.term import Atom, Pid

__all__ = ["DONE", "INIT", "INIT_TASK", "REVOKE", "RUN", "STOP", "WORKER_UP", "FarmerUnreachable", "serve"]

WORKER_UP: Final = Atom("pj_worker_up")
RUN: Final = Atom("pj_run")
INIT: Final = Atom("pj_init")
INIT_TASK: Final = -1  # the task id the initializer's outcome is reported under
REVOKE: Final = Atom("pj_revoke")
STOP: Final = Atom("pj_stop")
DONE: Final = Atom("pj_done")
_NODEDOWN: Final = Atom("nodedown")
_LIFELINE: Final = Atom("pj_lifeline_closed")
_LANE_FAILED: Final = Atom("pj_lane_failed")  # the lane's thread ended on an error (it says which)
_TERM: Final = Atom("pj_asked_to_leave")  # a joined worker's own note: it got SIGTERM
_BATCH_BUDGET: Final = 0.005  # seconds of quick tasks run per thread hop and reported together
_WAKE_RUNNER: Final = -2  # a task id no farm issues: wakes an idle runner so it sees it is leaving
_QUICK_WAIT: Final = 0.001  # seconds the loop waits for a batch to end before it goes on (see TaskThread)


class FarmerUnreachable(FarmError, ConnectionError):
    """The worker's first connection to its farmer failed; the message says why (from the node)."""


async def _watch_lifeline(me: Pid) -> None:
    await wait_for_lifeline()
    current_runtime().send(me, _LIFELINE)


async def _watch_sigterm(me: Pid) -> None:
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            current_runtime().send(me, _TERM)


def _run_batch(
    batch: list[tuple[int, bytes]],
    budget: float = _BATCH_BUDGET,
    limit: int = DEFAULT_MAX_MESSAGE_SIZE,
    revoked: set[int] | frozenset[int] = frozenset(),
    interrupter: Interrupter | None = None,
    leaving: threading.Event | None = None,
) -> list[tuple[int, bytes]]:
    """Run tasks in order until ``budget`` seconds have passed (at least one); their outcomes, each
    at most ``limit`` bytes (a larger one becomes a ``ResultTooLarge``). A task revoked meanwhile is
    skipped, one interrupted while it runs stops (both report an empty outcome). Once ``leaving`` is
    set no further task starts (the farm has given them to others)."""
    done: list[tuple[int, bytes]] = []
    start = time.perf_counter()
    for task_id, payload in batch:
        if leaving is not None and leaving.is_set():
            break
        if task_id in revoked:  # revoked while this batch ran (the loop adds to the set)
            done.append((task_id, b""))
            continue
        done.append((task_id, run_task(payload, limit=limit, task=task_id, interrupter=interrupter)))
        if time.perf_counter() - start >= budget:
            break
    return done


def _drop_revoked(
    queue: deque[tuple[int, bytes]], revoked: set[int]
) -> tuple[deque[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """``queue`` without the tasks revoked while they waited (forgotten from ``revoked``), and
    their reports: each an empty outcome."""
    if not revoked:
        return queue, []
    gone = {t for t, _ in queue if t in revoked}
    if not gone:
        return queue, []
    revoked.difference_update(gone)
    kept = deque(item for item in queue if item[0] not in gone)
    return kept, [(t, b"") for t, _ in queue if t in gone]


def _finished(queue: deque[tuple[int, bytes]], revoked: set[int], done: list[tuple[int, bytes]]) -> None:
    """Take the tasks of ``done`` (the first of ``queue``, in order) off the queue and off ``revoked``."""
    for _ in done:
        queue.popleft()
    if revoked:
        revoked.difference_update(t for t, _ in done)


def _report(farm: tuple[Atom, Atom], me: Pid, done: list[tuple[int, bytes]], limit: int) -> None:
    """Send outcomes to the farmer, in messages of at most ``limit`` bytes of outcomes each."""
    for batch in split_by_size(done, limit):
        pj.send(farm, (DONE, me, batch))


def _serve_lane(
    lane: WorkerLane, revoked: set[int], limit: int, interrupter: Interrupter, failed: Callable[[str], None]
) -> None:
    """(The lane's thread) run the tasks that come through ``lane`` in order, in batches as
    :func:`_runner` does, and write their outcomes back, until the farmer closes its end (the tasks
    that came before still run). A task revoked while queued is reported at once with an empty
    outcome. On an error (a malformed frame, a write that fails) ``failed`` is called with what
    happened."""
    queue: deque[tuple[int, bytes]] = deque()
    closed = False  # the farmer's end: what came before it closed still runs
    try:
        while True:
            if not closed:
                batches = lane.receive(block=not queue)
                if batches is None:
                    closed = True
                else:
                    for batch in batches:
                        queue.extend(batch)
            if not queue:
                if closed:
                    return
                continue
            queue, dropped = _drop_revoked(queue, revoked)
            if dropped:
                lane.send(dropped)
                continue
            done = _run_batch(list(queue), _BATCH_BUDGET, limit, revoked, interrupter)
            _finished(queue, revoked, done)
            for part in split_by_size(done, limit):
                lane.send(part)
    except (OSError, ValueError) as exc:
        failed(f"{type(exc).__name__}: {exc}")


async def _runner(
    tasks: trio.MemoryReceiveChannel[tuple[int, bytes]],
    revoked: set[int],
    farm: tuple[Atom, Atom],
    limit: int,
    interrupter: Interrupter,
    leaving: threading.Event,
) -> None:
    me = pj.self()
    queue: deque[tuple[int, bytes]] = deque()
    thread = TaskThread("philipjose-worker-task")
    try:
        while True:
            if leaving.is_set():  # the running task was reported: tell the farm this worker is done
                pj.send(farm, (LEFT, me))
                return
            if not queue:
                item = await tasks.receive()
                if item[0] == _WAKE_RUNNER:
                    continue
                queue.append(item)
            while True:
                try:
                    item = tasks.receive_nowait()
                except trio.WouldBlock:
                    break
                if item[0] != _WAKE_RUNNER:
                    queue.append(item)
            queue, dropped = _drop_revoked(queue, revoked)
            if dropped:
                pj.send(farm, (DONE, me, dropped))
                continue
            batch = list(queue)
            done = await thread.run(
                _run_batch, batch, _BATCH_BUDGET, limit, revoked, interrupter, leaving, wait=_QUICK_WAIT
            )
            _finished(queue, revoked, done)
            _report(farm, me, done, limit)
    finally:
        thread.close()


def _start_lane(
    lane: tuple[int, int], revoked: set[int], limit: int, interrupter: Interrupter, me: Pid
) -> None:
    """Start the thread serving the lane on descriptors ``lane`` (a daemon: it never holds the
    worker's exit back); an error in it is sent to ``me`` as ``(pj_lane_failed, Why)``."""
    token = trio.lowlevel.current_trio_token()
    rt = current_runtime()

    def failed(why: str) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(rt.send, me, (_LANE_FAILED, why))

    try:
        ends = WorkerLane(*lane, max_frame=frame_limit(limit))
    except OSError as exc:
        raise LaneError(f"--lane {lane[0]},{lane[1]}: {exc.strerror or exc}") from None
    thread = threading.Thread(
        target=_serve_lane,
        args=(ends, revoked, limit, interrupter, failed),
        name="philipjose-worker-lane",
        daemon=True,
    )
    thread.start()


async def serve(
    farmer: str,
    farm_name: str | None,
    *,
    lifeline: bool = True,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    came: str | None = None,
    origin: str = "",
    lane: tuple[int, int] | None = None,
) -> None:
    """The worker's main process: announce itself, run tasks until told or forced to stop.

    ``max_message_size`` bounds each task's pickled outcome (see :mod:`philipjose.farm.sizes`); the
    node must accept messages of ``frame_limit(max_message_size)`` bytes. Raises
    :class:`FarmerUnreachable` if it cannot connect to ``farmer`` at all. ``came`` (``"joined"``
    or ``"server"``, with ``farm_name`` None): join the farm on ``farmer`` on its own
    (:func:`philipjose.farm.joining.join`; ``JoinRefused`` when it is refused); SIGTERM then
    makes it leave: it finishes the task it runs, and exits. ``origin``: a server's address.
    ``lane``: the (task, outcome) pipe descriptors its farmer gave it (see the module docstring);
    a lane that fails (it should not: only the farmer writes to it) ends the worker with
    :class:`~philipjose.farm.lane.LaneError`."""
    farmer_node = Atom(farmer)
    me = pj.self()
    # A worker's name is the farm's label for it: whatever its kind, it may reach its farmer (a
    # philipjose node, the only node it connects to) even where OTP would refuse short/long mixing.
    node = pj.node.current()
    node.allow_mixed_names = True
    # No busy-polling of the farmer's connection (set before it is made): while the reader polls it
    # holds the GIL but for microseconds at a time, and the task thread, which needs the GIL to start
    # the task just received and to finish it, waits out the whole poll (up to busy_wait) instead.
    node.busy_wait = 0.0
    if not await pj.node.connect(farmer):
        reason = pj.node.current().connect_errors.get(farmer_node, "the connection failed")
        raise FarmerUnreachable(f"cannot connect to the farmer {farmer}: {reason}")
    if lifeline:
        current_runtime().start_system_task(_watch_lifeline, me)
    pj.node.monitor_node(farmer_node)
    if came is None:
        assert farm_name is not None
        farm = (Atom(farm_name), farmer_node)
        pj.send(farm, (WORKER_UP, me, socket.gethostname().encode(), os.getpid()))
    else:
        name, max_message_size = await join(
            farmer_node, me, came=came, origin=origin, max_message_size=max_message_size
        )
        farm = (name, farmer_node)
        current_runtime().start_system_task(_watch_sigterm, me)
    send_tasks, receive_tasks = trio.open_memory_channel[tuple[int, bytes]](math.inf)
    revoked: set[int] = set()
    interrupter = Interrupter()
    leaving = threading.Event()
    if lane is not None:
        _start_lane(lane, revoked, max_message_size, interrupter, me)
    lane_failure: Any = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_runner, receive_tasks, revoked, farm, max_message_size, interrupter, leaving)
        while True:
            msg: Any = await pj.receive()
            if type(msg) is tuple and len(msg) == 2 and msg[0] == _LANE_FAILED:
                lane_failure = msg[1]
                nursery.cancel_scope.cancel()
                break
            if msg == _TERM:
                if not leaving.is_set():
                    leaving.set()
                    pj.send(farm, (LEAVE, me))
                    send_tasks.send_nowait((_WAKE_RUNNER, b""))
                continue
            if type(msg) is tuple and len(msg) == 2 and msg[0] == RUN and isinstance(msg[1], list):
                for task_id, payload in msg[1]:
                    send_tasks.send_nowait((task_id, payload))
            elif type(msg) is tuple and len(msg) == 2 and msg[0] == INIT and type(msg[1]) is bytes:
                send_tasks.send_nowait((INIT_TASK, msg[1]))  # runs before the tasks sent after it
            elif type(msg) is tuple and len(msg) == 2 and msg[0] == REVOKE and isinstance(msg[1], int):
                revoked.add(msg[1])
                interrupter.interrupt(msg[1])  # if it is running: try to stop it (the farmer may kill)
            elif msg in (STOP, _LIFELINE) or (type(msg) is tuple and msg[:1] == (_NODEDOWN,)):
                nursery.cancel_scope.cancel()
                return
    raise LaneError(f"the worker's lane failed: {lane_failure}")
