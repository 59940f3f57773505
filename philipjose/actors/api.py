"""The public process API: ``spawn``, ``send``, ``receive``, ``self``, links, monitors, exits, registry.

Each function works on the current runtime (``pj.run``) and, where it needs one, the current process
(the one whose task is running). Outside a runtime or a process they raise
:class:`~.errors.NoProcessError` (a ``RuntimeError``).

Speed notes (what the hot paths do):

- ``send`` to a local pid is a dictionary lookup, a ``deque.append``, and a
  ``trio.lowlevel.reschedule`` of the receiver only when it is parked in ``receive``. It never blocks
  and never yields.
- ``receive`` returns a message that is already queued *without a Trio checkpoint*. To stay fair, each
  process has a reduction budget (:data:`~.process.REDUCTIONS` receives, like the BEAM's reductions):
  when it is spent, ``receive`` first awaits ``trio.lowlevel.checkpoint()`` (which lets other tasks run
  and delivers a pending cancellation) and then starts a new budget. A process that parks starts a
  fresh budget when it wakes. So a process draining a flood of messages yields every ``REDUCTIONS``
  receives, and a cancellation (``exit(pid, kill)``, a timeout scope around the loop) reaches it within
  that many receives; a kill sets the budget to zero, so the victim's next receive checkpoints.
- Back-pressure: a ``send`` to a remote node whose connection is busy (see ``docs/distribution.md``)
  still queues the message and returns at once, but sets ``proc.hold`` and zeroes the budget, so the
  process's next ``receive`` goes through the budget branch, where it waits (:func:`_suspend`) until
  the connection has drained: OTP suspends such a sender inside ``!``; a synchronous ``send`` can
  only hold it at its next checkpoint in the runtime. The hot paths pay nothing for this (the check
  sits in the branch taken once per budget). :func:`send_wait` waits at once; :func:`send_nowait`
  refuses (``Busy``) instead.
- Parking uses ``trio.lowlevel.wait_task_rescheduled`` with an abort function that just unparks, so
  ``receive`` is cancellation-safe: a cancelled receive takes no message. While parked, the task's
  ``custom_sleep_data`` is its process; a sender reschedules ``proc.waiter`` only if that still holds
  (Trio clears it whenever it reschedules the task, e.g. on cancellation).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

import trio

from philipjose.actors.errors import BadArg, Exit, NoProcessError, as_reason
from philipjose.actors.patterns import Matcher, compile_match
from philipjose.actors.process import REDUCTIONS, Process
from philipjose.actors.reasons import NONODE
from philipjose.actors.runtime import Runtime, _runtime_var, _task_procs, current_process
from philipjose.term import Atom, Pid, Reference

__all__ = [
    "demonitor",
    "exit",
    "group_leader",
    "is_alive",
    "link",
    "monitor",
    "process_flag",
    "process_info",
    "processes",
    "receive",
    "register",
    "registered",
    "self",
    "send",
    "send_nowait",
    "send_wait",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "unlink",
    "unregister",
    "whereis",
]

_TRAP_EXIT: Final = "trap_exit"
_checkpoint: Final = trio.lowlevel.checkpoint
_wait_task_rescheduled: Final = trio.lowlevel.wait_task_rescheduled
_current_task: Final = trio.lowlevel.current_task


def _abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
    # A parked receive is always abortable. Trio's reschedule clears task.custom_sleep_data, which
    # is how senders know the task is no longer parked here (see Process.waiter).
    return trio.lowlevel.Abort.SUCCEEDED


_reschedule: Final = trio.lowlevel.reschedule
_islice: Final = itertools.islice


def _runtime() -> Runtime:
    rt = _runtime_var.get(None)
    if rt is None:
        raise NoProcessError("not inside a philipjose runtime (use pj.run)")
    return rt


def _me() -> Process:
    proc = current_process()
    if proc is None:
        raise NoProcessError("this must be called from inside a philipjose process")
    return proc


def _check_alive(proc: Process) -> None:
    # After an operation that may have sent an exit signal to the caller itself.
    if not proc.alive:
        raise Exit(proc.reason)


def self() -> Pid:
    """The pid of the current process."""
    return _me().pid


def spawn(fn: Callable[..., Awaitable[Any]], *args: Any) -> Pid:
    """Start ``fn(*args)`` as a new process and return its pid at once (sync; the process runs later).

    ``fn`` must be an async function (or any callable returning an awaitable); it is called right away
    to make the coroutine, so a plain function raises ``TypeError`` naming it (after running, as with
    ``nursery.start_soon``), and wrong arguments raise here rather than in the new process.
    """
    return _runtime().spawn(fn, args)[0]


def spawn_link(fn: Callable[..., Awaitable[Any]], *args: Any) -> Pid:
    """Like :func:`spawn`, atomically linked to the current process."""
    return _runtime().spawn(fn, args, link=_me())[0]


def spawn_monitor(fn: Callable[..., Awaitable[Any]], *args: Any) -> tuple[Pid, Reference]:
    """Like :func:`spawn`, atomically monitored by the current process; returns ``(pid, ref)``."""
    pid, ref = _runtime().spawn(fn, args, monitor=_me())
    assert ref is not None
    return pid, ref


def send(dest: Any, msg: Any) -> None:
    """Send ``msg`` to ``dest``; never blocks, never yields.

    ``dest`` is a :class:`Pid` (alive or dead, local or remote: never fails), a registered name
    (``Atom`` or ``str``; :class:`BadArg` when nothing is registered under it), ``(name, node)``
    (never fails; dropped when not registered), or an alias :class:`Reference` (dropped when
    inactive). Messages from one sender to one receiver arrive in the order they were sent.

    Back-pressure: when ``dest`` is on a node whose connection is busy (more than
    ``dist_buf_busy_limit`` bytes queued), the message is queued all the same and the calling process
    is held back at its next ``receive`` until the connection has drained to half the limit. A
    process that was held back and, before it waits, sends more than 64 times the limit to that
    connection in further messages (each smaller than the limit) gets :class:`Busy` (that message is
    not sent). See :func:`send_wait` and :func:`send_nowait`.
    """
    rt = _runtime_var.get(None)
    if rt is None:
        raise NoProcessError("not inside a philipjose runtime (use pj.run)")
    # The local-pid fast path of Runtime.send, inlined: one Python call less on the hottest path
    # (measured in benchmarks/bench_actors.py). Keep the two in step.
    if type(dest) is Pid:
        node = dest.node
        if node is rt.node or node is NONODE:
            proc = rt._procs.get((dest.serial << 32) | dest.id)
            if proc is not None and proc.alive and (proc.pid is dest or rt._same(proc, dest)):
                queue = proc.queue
                if queue is None:
                    proc.queue = deque((msg,))
                else:
                    queue.append(msg)
                waiter = proc.waiter
                if waiter is not None:
                    proc.waiter = None
                    if waiter.custom_sleep_data is proc:  # still parked in receive
                        _reschedule(waiter)
            return
    rt._send_slow(dest, msg)


async def send_wait(dest: Any, msg: Any) -> None:
    """Send ``msg`` to ``dest`` as :func:`send` does, then wait while its connection is busy.

    This is OTP's ``!`` on a busy distribution connection: the message is queued, and when the
    connection holds more than ``dist_buf_busy_limit`` bytes the caller waits until it has drained
    below half of that (or closed). A hold left by an earlier :func:`send` is waited for too. Local
    destinations and idle connections never wait. Works in any task of the runtime, not only in
    processes. Cancellable (a cancelled wait has sent the message already).

    Like :func:`receive`, a process checkpoints only once per reduction budget when it does not
    wait, so a loop of ``send_wait`` costs little more than a loop of ``send``; a task that is not a
    process checkpoints every time.
    """
    rt = _runtime_var.get(None)
    if rt is None:
        raise NoProcessError("not inside a philipjose runtime (use pj.run)")
    until = rt._send_slow(dest, msg, hold=False)
    proc = current_process()
    if proc is not None:
        if until is None:
            until = proc.hold
        if until is None:
            budget = proc.budget - 1
            if budget > 0:
                proc.budget = budget
                return
            proc.budget = REDUCTIONS
            await _checkpoint()
            return
        proc.hold = until
        proc.budget = REDUCTIONS
        await _suspend(proc)
        return
    if until is None or until.is_set():
        await _checkpoint()
    else:
        await until.wait()


def send_nowait(dest: Any, msg: Any) -> None:
    """Send ``msg`` to ``dest`` unless its connection is busy: then raise :class:`Busy`, unsent.

    OTP's ``erlang:send_nosuspend``: the caller is never held back (not even when this message is
    the one that makes the connection busy). Local destinations behave as with :func:`send`.
    """
    _runtime().send_nowait(dest, msg)


async def _suspend(proc: Process) -> None:
    """Wait (cancellably) until the connection that held ``proc`` back has drained, then go on."""
    hold = proc.hold
    try:
        if hold is None or hold.is_set():
            await _checkpoint()
        else:
            task = _current_task()
            task.custom_sleep_data = hold  # process_info reports "suspended" (Trio clears it on wakeup)
            await hold.wait()
    finally:
        proc.hold = None


def _not_a_process_task() -> NoReturn:
    if current_process() is not None:
        raise NoProcessError("receive must be awaited by the process's own task, not a helper task")
    raise NoProcessError("receive must be awaited inside a philipjose process")


async def receive(match: Any = None, *, timeout: float | None = None) -> Any:
    """Take the oldest message that matches ``match`` from the current process's mailbox.

    ``match`` is ``None`` (any message), a predicate, or a pattern (see
    :mod:`philipjose.actors.patterns`: types, ``ANY``, literals, tuples/lists of patterns). Messages
    that do not match stay queued, in order. While waiting, each new message is tested once (the scan
    position is kept), not rescanned from the start at every wakeup.

    ``timeout`` (seconds, default ``None`` = forever): ``TimeoutError`` when nothing matched in time;
    ``0`` polls without waiting. A negative timeout raises ``ValueError``.

    A message that is already queued is returned without a Trio checkpoint; see the module docstring
    for the reduction budget that keeps this fair and cancellable.
    """
    task = _current_task()
    proc = _task_procs.get(task)
    if proc is None:
        _not_a_process_task()
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"receive timeout must be >= 0 or None, not {timeout!r}")
    budget = proc.budget - 1
    if budget > 0:
        proc.budget = budget
    else:
        proc.budget = REDUCTIONS
        await (_checkpoint() if proc.hold is None else _suspend(proc))
    if match is not None:
        return await _select(proc, compile_match(match), 0, timeout)
    queue = proc.queue
    if queue:
        return queue.popleft()
    if timeout is not None:
        return await _wait(proc, None, 0, timeout)
    # Park right here (no extra coroutine frames: an idle process is parked in this frame).
    while True:
        proc.waiter = task
        task.custom_sleep_data = proc
        await _wait_task_rescheduled(_abort)
        proc.budget = REDUCTIONS
        queue = proc.queue
        if queue:
            return queue.popleft()


async def receive_from(proc: Process, test: Matcher, start: int, timeout: float | None) -> Any:
    """Internal: like :func:`receive` for ``proc`` (the caller), skipping the first ``start`` messages.

    Used when the wanted message cannot be among the first ``start`` (it carries a reference made
    when the mailbox held ``start`` messages), so a call's reply is found without rescanning.
    """
    budget = proc.budget - 1
    if budget > 0:
        proc.budget = budget
    else:
        proc.budget = REDUCTIONS
        await (_checkpoint() if proc.hold is None else _suspend(proc))
    return await _select(proc, test, start, timeout)


async def _select(proc: Process, test: Matcher, start: int, timeout: float | None) -> Any:
    """Take the first message from index ``start`` on that passes ``test``, waiting if needed."""
    queue = proc.queue
    i = start
    if queue:
        for msg in _islice(queue, start, None):
            if test(msg):
                del queue[i]
                return msg
            i += 1
    return await _wait(proc, test, i, timeout)


async def _wait(proc: Process, test: Matcher | None, scanned: int, timeout: float | None) -> Any:
    if timeout is None:
        return await _park(proc, test, scanned)
    if timeout == 0:
        raise TimeoutError("no matching message (timeout=0)")
    with trio.move_on_after(timeout):
        return await _park(proc, test, scanned)
    raise TimeoutError(f"no matching message within {timeout} s")


async def _park(proc: Process, test: Matcher | None, scanned: int) -> Any:
    """Park until a matching message arrives; ``scanned`` messages were already tested."""
    task = _current_task()
    if task is not proc.task:
        raise NoProcessError("receive must be awaited by the process's own task, not a helper task")
    while True:
        proc.waiter = task
        task.custom_sleep_data = proc
        await _wait_task_rescheduled(_abort)
        proc.budget = REDUCTIONS
        queue = proc.queue
        if not queue:
            continue
        if test is None:
            return queue.popleft()
        i = scanned
        for msg in _islice(queue, scanned, None):
            if test(msg):
                del queue[i]
                return msg
            i += 1
        scanned = i


def link(pid: Pid) -> None:
    """Link the current process to ``pid`` (bidirectional, one link per pair; self is a no-op).

    A dead local ``pid``: a trapping caller gets ``(EXIT, pid, noproc)``, otherwise this raises
    ``Exit(Atom('noproc'))``. A remote pid with no distribution gives an exit signal ``noconnection``.
    """
    proc = _me()
    proc.rt.link(proc, pid)
    _check_alive(proc)


def unlink(pid: Pid) -> None:
    """Remove the link to ``pid``; after this returns, that link has no effect on the caller."""
    proc = _me()
    proc.rt.unlink(proc, pid)


def monitor(target: Any) -> Reference:
    """Monitor ``target`` (pid, registered name, or ``(name, node)``); returns the monitor reference.

    When the target dies (or does not exist) the caller gets
    ``(Atom('DOWN'), ref, Atom('process'), item, reason)`` where ``item`` is the pid, or
    ``(name, node)`` for a name. Monitors stack: each call makes a new one.
    """
    proc = _me()
    return proc.rt.monitor(proc, target)


def demonitor(ref: Reference, flush: bool = False) -> bool:
    """Remove monitor ``ref``; ``flush=True`` also removes its ``DOWN`` if already queued.

    Returns True when the monitor was still active.
    """
    proc = _me()
    return proc.rt.demonitor(proc, ref, flush)


def exit(pid: Pid, reason: Any) -> None:
    """Send an exit signal with ``reason`` to ``pid`` (Erlang's ``exit/2``; a ``str`` becomes an atom).

    ``kill`` cannot be trapped and ends the target with ``killed``; ``normal`` is ignored unless the
    target is the caller; a trapping target gets ``(Atom('EXIT'), self(), reason)``; any other reason
    ends the target with that reason by cancelling its task (so one blocked in any await ends at once;
    code that never awaits cannot be interrupted). If the signal ends the caller itself, this raises
    ``Exit(reason)``.
    """
    rt = _runtime()
    proc = current_process()
    sender = proc.pid if proc is not None else rt._system_pid
    rt.exit(sender, pid, as_reason(reason))
    if proc is not None:
        _check_alive(proc)


def process_flag(flag: str, value: Any) -> Any:
    """Set a process flag of the current process and return its old value.

    Only ``"trap_exit"`` (bool) is supported; anything else raises :class:`BadArg`.
    """
    proc = _me()
    if str(flag) != _TRAP_EXIT:
        raise BadArg(f"unsupported process flag {flag!r} (only 'trap_exit')")
    if not isinstance(value, bool):
        raise BadArg(f"trap_exit must be a bool, not {value!r}")
    old = proc.trap_exit
    proc.trap_exit = value
    return old


def register(name: Atom | str, pid: Pid) -> None:
    """Register ``pid`` (live, local) under ``name``; :class:`BadArg` if the name or the pid is taken,
    the pid is dead or remote, or the name is ``undefined``."""
    _runtime().register(name, pid)


def unregister(name: Atom | str) -> None:
    """Remove a registered name; :class:`BadArg` if it is not registered."""
    _runtime().unregister(name)


def whereis(name: Atom | str) -> Pid | None:
    """The pid registered under ``name``, or None."""
    return _runtime().whereis(name)


def registered() -> list[Atom]:
    """All registered names."""
    return _runtime().registered()


def is_alive(pid: Pid) -> bool:
    """True when the local process ``pid`` is alive (False as soon as an exit signal has killed it).

    A remote pid raises :class:`BadArg`, as in Erlang.
    """
    rt = _runtime()
    if not isinstance(pid, Pid) or not rt.is_local_node(pid.node):
        raise BadArg(f"is_alive expects a local Pid, not {pid!r}")
    return rt.lookup(pid)


def process_info(pid: Pid) -> dict[str, Any] | None:
    """A snapshot of the local process ``pid``, or None if it is dead.

    Keys: ``status`` (``"running"``, ``"runnable"``, ``"waiting"``), ``message_queue_len``,
    ``links`` (pids), ``monitors`` (targets: pids or ``(name, node)``), ``monitored_by`` (pids),
    ``registered_name`` (Atom or None), ``trap_exit``, ``current_function`` (``"module.qualname"`` of
    the innermost user frame) and ``initial_call`` (the spawned function's name).
    """
    return _runtime().process_info(pid)


def group_leader(leader: Pid | None = None, pid: Pid | None = None) -> Any:
    """Erlang's ``group_leader/0,2``.

    ``group_leader()``: the pid of the current process's group leader, the io server its output
    goes to (``pj.io``, ``print`` in rpc-served calls, and Erlang code it spawns on other nodes).
    Unless changed, that is the parent's (inherited at spawn, as in Erlang), for a process spawned
    by another node that node's caller's, and otherwise this runtime's default io server (started
    on first use; see ``docs/distribution.md``). Outside a process: the default one.

    ``group_leader(leader, pid)``: make ``leader`` (a local or remote pid) the group leader of
    ``pid``, local (at once) or remote (a GROUP_LEADER signal to its node); returns True. A dead
    local ``pid`` or arguments that are not pids raise :class:`BadArg`, as in Erlang.
    """
    rt = _runtime()
    if leader is None and pid is None:
        return rt.group_leader_of(current_process())
    if type(leader) is not Pid or type(pid) is not Pid:
        raise BadArg(f"group_leader expects two pids, not {leader!r} and {pid!r}")
    if rt.is_local_node(pid.node):
        if not rt.set_group_leader(pid, leader):
            raise BadArg(f"group_leader: {pid!r} is not alive")
        return True
    if rt.dist is None:
        raise BadArg(f"group_leader: {pid!r} is on another node and distribution is off")
    rt.dist.group_leader(leader, pid)
    return True


def processes() -> list[Pid]:
    """The pids of all live local processes."""
    return _runtime().processes()
