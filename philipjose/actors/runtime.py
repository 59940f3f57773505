"""The actor runtime: the process table, the registry, signals, and the entry points for remote signals.

Theory of operation
-------------------
One :class:`Runtime` lives inside one ``trio.run`` (see :func:`run` / :func:`run_async`). Every process
is a Trio task started in the runtime's process nursery; its :class:`~.process.Process` record sits
in ``_procs`` keyed by ``(serial << 32) | id`` (so a pid decoded from the wire with the local node's
name finds a process spawned before distribution started). ``self()`` looks up the current Trio task in
``_task_procs`` (see :func:`current_process`).

All signals (messages, links, exit signals, monitors) are handled *synchronously by the sender*: a send
appends to the receiver's deque and reschedules it only if it is parked in ``receive``; an exit signal
that kills its receiver marks it doomed (``alive = False``, ``reason`` set) and cancels its task (see
:mod:`~.killscope`: the cancel scope is made at that moment, not at spawn), so a process blocked in any
await ends at once. Because everything runs on one Trio thread and the handling is synchronous, signals
between a pair of processes keep their order.

When a process's task ends (its function returned or raised, or its scope was cancelled) ``_finish``
runs, in this order: the process leaves the table, its registered name and aliases are released, the
monitors it holds are dropped, its links fire (exit signals with its reason to every linked process),
then the monitors on it fire (``DOWN`` messages). Pure CPU code that never awaits cannot be
interrupted: the doomed process ends at its next checkpoint.

Remote processes are reached through ``dist`` (:class:`~.hooks.DistributionHooks`), set by the node
layer; signals from remote processes come in through :meth:`Runtime.deliver`,
:meth:`Runtime.exit_signal`, :meth:`Runtime.link_remote` and the other public entry points, which never
block.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import random
import sys
import types
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar, copy_context
from typing import Any, Final

import trio

from philipjose.actors import killscope
from philipjose.actors.errors import BadArg, Busy, Exit, NoProcessError, as_reason
from philipjose.actors.hooks import DistributionHooks
from philipjose.actors.process import Process
from philipjose.actors.reasons import (
    DELIVER,
    DOWN,
    EXIT,
    IGNORE,
    KILLED,
    NOCONNECTION,
    NONODE,
    NOPROC,
    NORMAL,
    PROCESS,
    PYTHON_EXCEPTION,
    crash_reason,
    decide_exit,
    is_quiet,
)
from philipjose.term import Atom, Pid, Reference

__all__ = ["Runtime", "current_runtime", "run", "run_async"]

log: Final = logging.getLogger("philipjose.actors")

_runtime_var: ContextVar[Runtime] = ContextVar("philipjose_runtime")
#: Starts a runtime's default group leader (an io server) and returns its pid; set by
#: ``philipjose.io``, which sits above this layer (see :func:`set_default_group_leader_starter`).
_default_gl_starter: list[Callable[[Runtime], Pid]] = []


def set_default_group_leader_starter(start: Callable[[Runtime], Pid]) -> None:
    """Have runtimes start their default group leader with ``start(rt)`` when one is first needed."""
    _default_gl_starter[:] = [start]
#: Each live process's task -> its record (see :func:`current_process`).
_task_procs: Final[dict[trio.lowlevel.Task, Process]] = {}
_current_task: Final = trio.lowlevel.current_task

_UNDEFINED: Final = Atom("undefined")
_CRASH: Final = PYTHON_EXCEPTION
_reschedule: Final = trio.lowlevel.reschedule
_MASK32: Final = 0xFFFF_FFFF


def current_process() -> Process | None:
    """The process whose task is running; for a helper task (started in a nursery that a process opened,
    at any depth), that process; None in any other task and outside Trio."""
    try:
        task = _current_task()
    except RuntimeError:
        return None
    proc = _task_procs.get(task)
    if proc is not None:
        return proc
    nursery = task.parent_nursery
    while nursery is not None:
        task = nursery.parent_task
        proc = _task_procs.get(task)
        if proc is not None:
            return proc
        nursery = task.parent_nursery
    return None


def current_runtime() -> Runtime:
    """The runtime of the current ``pj.run``; raises :class:`NoProcessError` (a ``RuntimeError``)
    outside one."""
    try:
        return _runtime_var.get()
    except LookupError:
        raise NoProcessError("not inside a philipjose runtime (use pj.run)") from None


_CoroutineType: Final = types.CoroutineType
_task_names: dict[Any, str] = {}


def _task_name(fn: Any) -> str:
    # Trio task names for process functions, cached (a bounded cache: lambdas may be made per spawn).
    name = _name_of(fn)
    try:
        if len(_task_names) >= 4096:
            _task_names.clear()
        _task_names[fn] = name
    except TypeError:  # unhashable callable
        pass
    return name


def _name_of(fn: Any) -> str:
    target = getattr(fn, "func", fn)  # functools.partial
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if qualname is None:
        return repr(target)
    return f"{module}.{qualname}" if module else qualname


def _to_atom(name: Any, what: str = "name") -> Atom:
    if type(name) is Atom:
        return name
    if isinstance(name, str):
        return Atom(name)
    raise BadArg(f"{what} must be an atom or str, not {name!r}")


class Runtime:
    """One actor runtime (one per ``pj.run``). See the module docstring for how it works.

    Attributes used by the node layer: ``node`` (``Atom('nonode@nohost')`` until distribution
    starts), ``creation`` (0 until then), ``dist`` (``None`` until the node layer sets it) and
    ``nursery`` (for system tasks such as listeners and connections; not for processes).
    """

    def __init__(self) -> None:
        self.node: Atom = NONODE
        self.creation: int = 0
        self.dist: DistributionHooks | None = None
        self.nursery: trio.Nursery = None  # type: ignore[assignment]  # set by run_async
        self._proc_nursery: trio.Nursery = None  # type: ignore[assignment]
        self._procs: dict[int, Process] = {}
        self._names: dict[Atom, Process] = {}
        self._aliases: dict[tuple[int, ...], Process] = {}
        self._remote_watch: dict[Reference, Process] = {}
        self._by_node: dict[Atom, set[Process]] = {}
        self._next_key = 1
        self._refs = itertools.count(random.getrandbits(40))
        self._closing = False
        self._main: Process | None = None
        self._main_done = trio.Event()
        self._main_outcome: tuple[str, Any] = ("exit", NORMAL)
        self._system_pid = Pid(NONODE, 0, 0, 0)
        self.default_group_leader: Pid | None = None
        #: options for the default group leader (set by ``pj.run``/``pj.node.start``, read by
        #: ``philipjose.io`` when it starts it)
        self.io_options: dict[str, Any] = {}

    # ------------------------------------------------------------------ identity

    def set_node(self, name: Atom, creation: int) -> None:
        """New pids and references use ``name`` and ``creation`` from now on."""
        self.node = Atom(name)
        self.creation = creation
        self._system_pid = Pid(self.node, 0, 0, creation)

    def make_ref(self) -> Reference:
        """A unique reference of the local node (three id words, the first of 18 bits as in Erlang)."""
        n = next(self._refs)
        return Reference(self.node, self.creation, (n & 0x3FFFF, (n >> 18) & _MASK32, (n >> 50) & _MASK32))

    def is_local_node(self, node: Atom) -> bool:
        """True when ``node`` names this node (its current name or ``nonode@nohost``)."""
        return node is self.node or node is NONODE or node == self.node or node == NONODE

    def _same(self, proc: Process, pid: Pid) -> bool:
        # The key matched; is ``pid`` really this incarnation of the process?
        if proc.pid is pid or proc.pid == pid:
            return True
        node = pid.node
        if node == NONODE:
            return pid.creation == 0
        return node == self.node and pid.creation == self.creation

    def _find(self, pid: Pid) -> Process | None:
        """The live process with this local pid, or None (dead, unknown, or not local)."""
        proc = self._procs.get((pid.serial << 32) | pid.id)
        if proc is None or not proc.alive or not self.is_local_node(pid.node) or not self._same(proc, pid):
            return None
        return proc

    def _find_any(self, pid: Pid) -> Process | None:
        # Like _find, but also returns a doomed process that has not finished yet.
        proc = self._procs.get((pid.serial << 32) | pid.id)
        if proc is None or not self.is_local_node(pid.node) or not self._same(proc, pid):
            return None
        return proc

    def lookup(self, pid: Pid) -> bool:
        """True when ``pid`` is a live local process (made under either node name)."""
        return self._find(pid) is not None

    def _sender_pid(self) -> Pid:
        proc = current_process()
        return proc.pid if proc is not None else self._system_pid

    def start_system_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` in the system nursery as a task that is not a process.

        Prefer this to ``nursery.start_soon`` in a nursery of the calling process: a task started there
        is a helper of that process and acts as it (``pj.self()``, the sender of its messages).
        """
        self.nursery.start_soon(fn, *args, name=fn)

    def _index(self, node: Atom, proc: Process) -> None:
        procs = self._by_node.get(node)
        if procs is None:
            procs = self._by_node[node] = set()
        procs.add(proc)

    # ------------------------------------------------------------------ spawning

    def spawn(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        *,
        link: Process | None = None,
        monitor: Process | None = None,
        group_leader: Pid | None = None,
    ) -> tuple[Pid, Reference | None]:
        """Start ``fn(*args)`` as a new process; link it to / monitor it from the given process first.

        The new process's group leader is ``group_leader`` if given, else the spawning process's
        (as in Erlang), else the runtime's default.

        Raises ``TypeError`` naming ``fn`` when it is not callable or does not return a coroutine (it is
        called right here, as ``nursery.start_soon`` does). Returns the pid and the monitor reference.
        """
        if not callable(fn):
            raise TypeError(f"spawn expects an async function, got {fn!r}, which is not callable")
        coro = fn(*args)
        if type(coro) is not _CoroutineType and not inspect.isawaitable(coro):
            raise TypeError(
                f"spawn expects an async function, but {_name_of(fn)} returned {type(coro).__name__} "
                "(is it a plain 'def' instead of 'async def'?)"
            )
        if self._closing:
            _close(coro)
            raise NoProcessError("the runtime is shutting down")
        key = self._next_key
        self._next_key = key + 1
        pid = Pid(self.node, key & _MASK32, key >> 32, self.creation)
        proc = Process(self, pid, key, fn)
        if group_leader is not None:
            proc.group_leader = group_leader
        else:
            parent = current_process()
            if parent is not None:
                proc.group_leader = parent.group_leader
        self._procs[key] = proc
        ref = None
        if link is not None:
            link.links = link.links or set()
            link.links.add(pid)
            proc.links = {link.pid}
        if monitor is not None:
            ref = self.make_ref()
            monitor.monitors = monitor.monitors or {}
            monitor.monitors[ref] = pid
            proc.monitored_by = {ref: (monitor.pid, pid)}
        name = _task_names.get(fn)
        if name is None:
            name = _task_name(fn)
        self._proc_nursery.start_soon(self._process_main, proc, coro, name=name)
        return pid, ref

    def spawn_outside(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Pid:
        """Spawn ``fn(*args)`` from a Trio task that is not this runtime's (a library's task beside
        it, as the farm's): the process runs with this runtime current, as one spawned inside."""
        context = copy_context()
        context.run(_runtime_var.set, self)
        pid, _ = context.run(self.spawn, fn, args)
        return pid

    async def _process_main(self, proc: Process, coro: Awaitable[Any]) -> None:
        task = proc.task = _current_task()
        _task_procs[task] = proc
        reason: Any = NORMAL
        try:
            if not proc.alive:  # killed before it ever ran
                _close(coro)
            else:
                if not killscope.LAZY:
                    proc.kill_scope = killscope.enter()
                try:
                    value = await coro
                except BaseException as exc:
                    scope = proc.kill_scope
                    if scope is None or not killscope.leave(scope, exc):
                        raise
                else:
                    if proc.kill_scope is not None:
                        killscope.leave(proc.kill_scope, None)
                    if proc is self._main:
                        self._main_outcome = ("value", value)
        except Exit as exc:
            reason = exc.reason
            if proc.reason is None and not is_quiet(reason) and proc is not self._main:
                cause = exc.__cause__
                name = _name_of(proc.initial_call)
                if isinstance(cause, Exception) and type(reason) is tuple and reason[:1] == (_CRASH,):
                    # raise Exit(crash_reason(e)) from e: a crash whose reason was computed earlier
                    log.error("process %r (%s) crashed", proc.pid, name, exc_info=cause)
                else:
                    log.error("process %r (%s) exited with reason %r", proc.pid, name, reason)
        except Exception as exc:
            reason = crash_reason(exc)
            if proc is self._main:
                self._main_outcome = ("error", exc)
            elif proc.reason is None:
                log.error("process %r (%s) crashed", proc.pid, _name_of(proc.initial_call), exc_info=exc)
        except BaseException:
            # Cancelled by the runtime shutting down, KeyboardInterrupt, SystemExit: finish, re-raise.
            self._finish(proc, proc.reason if proc.reason is not None else KILLED)
            raise
        if proc.reason is not None:  # killed by an exit signal: that reason wins
            reason = proc.reason
        self._finish(proc, reason)

    def _finish(self, proc: Process, reason: Any) -> None:
        """The process has ended: release its name, fire its links, then its monitors."""
        proc.alive = False
        proc.reason = reason
        proc.waiter = None
        if proc.task is not None:
            _task_procs.pop(proc.task, None)
            proc.task = None
        self._procs.pop(proc.key, None)
        if proc is self._main:
            if self._main_outcome[0] == "exit":
                self._main_outcome = ("exit", reason)
            self._main_done.set()
        if self._closing:
            return
        pid = proc.pid
        if proc.name is not None:
            self._names.pop(proc.name, None)
            proc.name = None
        if proc.aliases:
            for alias in proc.aliases:
                self._aliases.pop(alias, None)
            proc.aliases = None
        dist = self.dist
        remote_nodes: set[Atom] = set()
        monitors = proc.monitors
        if monitors:
            proc.monitors = None
            for ref, target in monitors.items():
                self._drop_monitor(pid, ref, target, remote_nodes)
        links = proc.links
        if links:
            proc.links = None
            for other in links:
                if self.is_local_node(other.node):
                    peer = self._find_any(other)
                    if peer is not None and peer.links is not None and pid in peer.links:
                        peer.links.discard(pid)
                        self._exit_signal(peer, pid, reason, link=True)
                else:
                    remote_nodes.add(other.node)
                    if dist is not None:
                        dist.exit(pid, other, reason, link=True)
        watchers = proc.monitored_by
        if watchers:
            proc.monitored_by = None
            for ref, (watcher, item) in watchers.items():
                if self.is_local_node(watcher.node):
                    w = self._find_any(watcher)
                    if w is not None and w.monitors is not None and w.monitors.pop(ref, None) is not None:
                        self._enqueue(w, (DOWN, ref, PROCESS, item, reason))
                else:
                    remote_nodes.add(watcher.node)
                    self._remote_watch.pop(ref, None)
                    if dist is not None:
                        dist.monitor_exit(item, watcher, ref, reason)
        for node in remote_nodes:
            procs = self._by_node.get(node)
            if procs is not None:
                procs.discard(proc)

    # ------------------------------------------------------------------ messages

    def _enqueue(self, proc: Process, msg: Any) -> None:
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

    def send(self, dest: Any, msg: Any) -> None:
        """Send ``msg`` to a pid, registered name, ``(name, node)`` or alias reference (never blocks).

        A dead or unknown pid, an unregistered ``(name, node)`` and an inactive alias drop the message
        silently; an unregistered bare name raises :class:`BadArg`.
        """
        if type(dest) is Pid:
            node = dest.node
            if node is self.node or node is NONODE:
                proc = self._procs.get((dest.serial << 32) | dest.id)
                if proc is not None and proc.alive and (proc.pid is dest or self._same(proc, dest)):
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
        self._send_slow(dest, msg)

    def _send_slow(self, dest: Any, msg: Any, hold: bool = True) -> trio.Event | None:
        """Every send but the local-pid fast path. A send to a busy remote connection returns the
        event the node sets when that connection has drained and, with ``hold``, holds the calling
        process back at its next ``receive`` until then (see :meth:`_send_remote`); otherwise None."""
        if isinstance(dest, Pid):
            if self.is_local_node(dest.node):
                proc = self._find(dest)
                if proc is not None:
                    self._enqueue(proc, msg)
            elif self.dist is not None:
                return self._send_remote(dest, msg, hold)
        elif isinstance(dest, str):
            name = _to_atom(dest)
            proc = self._names.get(name)
            if proc is None:
                raise BadArg(f"cannot send to {name!r}: no process is registered under that name")
            if proc.alive:
                self._enqueue(proc, msg)
        elif _is_name_node(dest):
            name, node = _to_atom(dest[0]), _to_atom(dest[1], "node")
            if self.is_local_node(node):
                proc = self._names.get(name)
                if proc is not None and proc.alive:
                    self._enqueue(proc, msg)
            elif self.dist is not None:
                return self._send_remote((name, node), msg, hold)
        elif isinstance(dest, Reference):
            if self.is_local_node(dest.node):
                proc = self._aliases.get(dest.ids)
                if proc is not None and proc.alive:
                    self._enqueue(proc, msg)
            elif self.dist is not None:
                return self._send_remote(dest, msg, hold)
        else:
            raise BadArg(f"cannot send to {dest!r}: expected a Pid, a name, (name, node) or an alias")
        return None

    def _send_remote(self, to: Any, msg: Any, hold: bool) -> trio.Event | None:
        """Hand a send to a remote destination to ``dist``; if its connection is busy, hold the
        calling process back until the returned event is set (with ``hold``).

        A send cannot block, so the hold takes effect at the process's next checkpoint in the
        runtime: its reduction budget is zeroed, so its next ``receive`` (or ``send_wait``) goes
        through the budget's checkpoint, which waits for the event (see ``api._suspend``). A task
        that is not a process is not held (it may ``await pj.send_wait``).
        """
        proc = current_process()
        assert self.dist is not None
        until = self.dist.send(self._system_pid if proc is None else proc.pid, to, msg)
        if until is not None and hold and proc is not None:
            proc.hold = until
            proc.budget = 0
        return until

    def send_nowait(self, dest: Any, msg: Any) -> None:
        """Like :meth:`send`, but a send to a busy remote connection raises :class:`Busy` and sends
        nothing (OTP's ``erlang:send_nosuspend``); the caller is never held back."""
        node = _remote_node(self, dest)
        if node is not None and self.dist is not None and self.dist.busy(node):
            raise Busy(f"the connection to {node} is busy", node)
        self._send_slow(dest, msg, hold=False)

    def alias(self, proc: Process, ref: Reference | None = None) -> Reference:
        """Make ``ref`` (default: a new reference) an alias of ``proc``: messages sent to it reach
        ``proc`` until :meth:`unalias`. ``ref`` must be a local reference."""
        if ref is None:
            ref = self.make_ref()
        elif not self.is_local_node(ref.node):
            raise BadArg(f"an alias must be a local reference, not {ref!r}")
        self._aliases[ref.ids] = proc
        if proc.aliases is None:
            proc.aliases = set()
        proc.aliases.add(ref.ids)
        return ref

    def unalias(self, proc: Process, ref: Reference) -> bool:
        """Deactivate an alias of ``proc``; later messages to it are dropped. True if it was active."""
        if proc.aliases is None or ref.ids not in proc.aliases or not self.is_local_node(ref.node):
            return False
        proc.aliases.discard(ref.ids)
        self._aliases.pop(ref.ids, None)
        return True

    # ------------------------------------------------------------------ exit signals

    def _doom(self, proc: Process, reason: Any) -> None:
        """Kill ``proc`` with ``reason``: it is dead from now on and its task is cancelled."""
        if not proc.alive:
            return
        proc.alive = False
        proc.reason = reason
        proc.budget = 0  # its next receive checkpoints (and sees the cancellation)
        if proc.kill_scope is not None:
            proc.kill_scope.cancel()
        elif proc.task is not None:  # (a process that has not started yet sees it is dead and ends)
            proc.kill_scope = killscope.cancel_task(proc.task)

    def _exit_signal(self, proc: Process, sender: Pid, reason: Any, *, link: bool) -> None:
        if not proc.alive:
            return
        action = decide_exit(
            reason, trap_exit=proc.trap_exit, link=link, from_self=sender is proc.pid or sender == proc.pid
        )
        if action is IGNORE:
            return
        if action is DELIVER:
            self._enqueue(proc, (EXIT, sender, reason))
            return
        self._doom(proc, action)

    def exit(self, sender: Pid, to: Pid, reason: Any) -> None:
        """``erlang:exit(to, reason)`` sent by ``sender`` (see :func:`~.reasons.decide_exit`)."""
        reason = as_reason(reason)
        if not isinstance(to, Pid):
            raise BadArg(f"exit expects a Pid, not {to!r}")
        if self.is_local_node(to.node):
            proc = self._find(to)
            if proc is not None:
                self._exit_signal(proc, sender, reason, link=False)
        elif self.dist is not None:
            self.dist.exit(sender, to, reason, link=False)

    # ------------------------------------------------------------------ links

    def link(self, proc: Process, other: Pid) -> None:
        """Link ``proc`` and ``other`` (idempotent; linking to itself does nothing).

        A dead local ``other`` gives a trapping ``proc`` the message ``(EXIT, other, noproc)`` and
        raises ``Exit(noproc)`` otherwise (Erlang's ``link/1`` fails with ``noproc``).
        """
        if not isinstance(other, Pid):
            raise BadArg(f"link expects a Pid, not {other!r}")
        if other is proc.pid or other == proc.pid:
            return
        if self.is_local_node(other.node):
            peer = self._find(other)
            if peer is None:
                if proc.trap_exit:
                    self._enqueue(proc, (EXIT, other, NOPROC))
                    return
                raise Exit(NOPROC)
            if proc.links is None:
                proc.links = set()
            proc.links.add(other)
            if peer.links is None:
                peer.links = set()
            peer.links.add(proc.pid)
            return
        if proc.links is None:
            proc.links = set()
        if other in proc.links:
            return
        proc.links.add(other)
        self._index(other.node, proc)
        if self.dist is not None:
            self.dist.link(proc.pid, other)
        else:
            proc.links.discard(other)
            self._exit_signal(proc, other, NOCONNECTION, link=True)

    def unlink(self, proc: Process, other: Pid) -> None:
        """Remove the link between ``proc`` and ``other``; no signal from it has any effect later."""
        if not isinstance(other, Pid):
            raise BadArg(f"unlink expects a Pid, not {other!r}")
        if proc.links is None or other not in proc.links:
            return
        proc.links.discard(other)
        if self.is_local_node(other.node):
            peer = self._find_any(other)
            if peer is not None and peer.links is not None:
                peer.links.discard(proc.pid)
        elif self.dist is not None:
            self.dist.unlink(proc.pid, other)

    # ------------------------------------------------------------------ monitors

    def monitor(self, proc: Process, target: Any) -> Reference:
        """``proc`` monitors ``target`` (a pid, a registered name, or ``(name, node)``); returns the ref.

        A target that does not exist gives ``(DOWN, ref, process, target, noproc)`` at once.
        """
        ref = self.make_ref()
        if isinstance(target, Pid):
            if self.is_local_node(target.node):
                peer = self._find(target)
                if peer is None:
                    self._enqueue(proc, (DOWN, ref, PROCESS, target, NOPROC))
                    return ref
                self._add_monitor(proc, peer, ref, target, target)
                return ref
            return self._monitor_remote_target(proc, ref, target, target)
        if isinstance(target, str):
            name, node = _to_atom(target), self.node
        elif _is_name_node(target):
            name, node = _to_atom(target[0]), _to_atom(target[1], "node")
        else:
            raise BadArg(f"monitor expects a Pid, a name or (name, node), not {target!r}")
        if self.is_local_node(node):
            item = (name, self.node)
            peer = self._names.get(name)
            if peer is None or not peer.alive:
                self._enqueue(proc, (DOWN, ref, PROCESS, item, NOPROC))
                return ref
            self._add_monitor(proc, peer, ref, peer.pid, item)
            return ref
        return self._monitor_remote_target(proc, ref, (name, node), (name, node))

    def _add_monitor(self, proc: Process, peer: Process, ref: Reference, target: Pid, item: Any) -> None:
        if proc.monitors is None:
            proc.monitors = {}
        proc.monitors[ref] = target
        if peer.monitored_by is None:
            peer.monitored_by = {}
        peer.monitored_by[ref] = (proc.pid, item)

    def _monitor_remote_target(self, proc: Process, ref: Reference, target: Any, item: Any) -> Reference:
        node = target.node if isinstance(target, Pid) else target[1]
        if self.dist is None:
            self._enqueue(proc, (DOWN, ref, PROCESS, item, NOCONNECTION))
            return ref
        if proc.monitors is None:
            proc.monitors = {}
        proc.monitors[ref] = target
        self._index(node, proc)
        self.dist.monitor(proc.pid, target, ref)
        return ref

    def _drop_monitor(self, watcher: Pid, ref: Reference, target: Any, remote_nodes: set[Atom]) -> None:
        if isinstance(target, Pid) and self.is_local_node(target.node):
            peer = self._find_any(target)
            if peer is not None and peer.monitored_by is not None:
                peer.monitored_by.pop(ref, None)
            return
        remote_nodes.add(target.node if isinstance(target, Pid) else target[1])
        if self.dist is not None:
            self.dist.demonitor(watcher, target, ref)

    def demonitor(self, proc: Process, ref: Reference, flush: bool = False) -> bool:
        """Drop monitor ``ref`` held by ``proc``; with ``flush``, also remove its queued ``DOWN``.

        Returns True when the monitor was still active.
        """
        if not isinstance(ref, Reference):
            raise BadArg(f"demonitor expects a Reference, not {ref!r}")
        found = False
        if proc.monitors is not None and ref in proc.monitors:
            target = proc.monitors.pop(ref)
            found = True
            nodes: set[Atom] = set()
            self._drop_monitor(proc.pid, ref, target, nodes)
        if flush and proc.queue:
            queue = proc.queue
            for i, m in enumerate(queue):
                if type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref:
                    del queue[i]
                    break
        return found

    def monitor_as(self, watcher: Pid, target: Any) -> Reference:
        """:meth:`monitor` made by the live local process ``watcher`` instead of the caller: its
        ``DOWN`` goes to ``watcher``. For services (``pg``) whose state other processes change
        synchronously on the service's behalf. :class:`BadArg` if ``watcher`` is not alive."""
        proc = self._find(watcher) if isinstance(watcher, Pid) else None
        if proc is None:
            raise BadArg(f"monitor_as: {watcher!r} is not a live local process")
        return self.monitor(proc, target)

    def demonitor_as(self, watcher: Pid, ref: Reference, flush: bool = False) -> bool:
        """:meth:`demonitor` of a monitor held by the local process ``watcher`` (False when it is gone)."""
        proc = self._find_any(watcher) if isinstance(watcher, Pid) else None
        return proc is not None and self.demonitor(proc, ref, flush)

    @staticmethod
    def flush_messages(proc: Process, test: Callable[[Any], bool]) -> int:
        """Remove every message of ``proc``'s mailbox for which ``test`` is true; how many went."""
        queue = proc.queue
        if not queue:
            return 0
        kept = [m for m in queue if not test(m)]
        removed = len(queue) - len(kept)
        if removed:
            queue.clear()
            queue.extend(kept)
        return removed

    # ------------------------------------------------------------------ registry

    def register(self, name: Any, pid: Pid) -> None:
        """Register a live local ``pid`` under ``name``; :class:`BadArg` if either is taken or dead."""
        name = _to_atom(name)
        if name == _UNDEFINED:
            raise BadArg("the name 'undefined' cannot be registered")
        if not isinstance(pid, Pid):
            raise BadArg(f"register expects a Pid, not {pid!r}")
        holder = self._names.get(name)
        if holder is not None:
            raise BadArg(f"cannot register {name!r}: already registered to {holder.pid!r}")
        if not self.is_local_node(pid.node):
            raise BadArg(f"cannot register {name!r}: {pid!r} is not a local process")
        proc = self._find(pid)
        if proc is None:
            raise BadArg(f"cannot register {name!r}: process {pid!r} is not alive")
        if proc.name is not None:
            raise BadArg(f"cannot register {name!r}: {pid!r} is already registered as {proc.name!r}")
        self._names[name] = proc
        proc.name = name

    def unregister(self, name: Any) -> None:
        """Remove the registered ``name``; :class:`BadArg` if it is not registered."""
        name = _to_atom(name)
        proc = self._names.pop(name, None)
        if proc is None:
            raise BadArg(f"cannot unregister {name!r}: it is not registered")
        proc.name = None

    def whereis(self, name: Any) -> Pid | None:
        """The pid registered under ``name``, or None."""
        proc = self._names.get(_to_atom(name))
        return None if proc is None else proc.pid

    def registered(self) -> list[Atom]:
        """All registered names."""
        return list(self._names)

    # ------------------------------------------------------------------ group leaders

    def group_leader_of(self, proc: Process | None) -> Pid:
        """The group leader of ``proc`` (None: a task that is not a process): its own, else the
        runtime's default, started on first use (an io server of ``philipjose.io``)."""
        if proc is not None and proc.group_leader is not None:
            return proc.group_leader
        gl = self.default_group_leader
        if gl is None or self._find(gl) is None:
            if not _default_gl_starter:
                raise NoProcessError("no io server available (import philipjose.io)")
            gl = self.default_group_leader = _default_gl_starter[0](self)
        return gl

    def set_group_leader(self, pid: Pid, leader: Pid) -> bool:
        """Make ``leader`` the group leader of the local process ``pid``; False if it is not alive
        (a GROUP_LEADER signal from another node uses this)."""
        proc = self._find(pid)
        if proc is None:
            return False
        proc.group_leader = leader
        return True

    # ------------------------------------------------------------------ introspection

    def processes(self) -> list[Pid]:
        """The pids of all live local processes, oldest first."""
        return [proc.pid for proc in self._procs.values() if proc.alive]

    def process_info(self, pid: Pid) -> dict[str, Any] | None:
        """A snapshot of a live local process, or None if it is dead (see ``pj.process_info``)."""
        if not isinstance(pid, Pid) or not self.is_local_node(pid.node):
            raise BadArg(f"process_info expects a local Pid, not {pid!r}")
        proc = self._find(pid)
        if proc is None:
            return None
        current = current_process()
        task = proc.task
        if proc is current and task is trio.lowlevel.current_task():
            status = "running"
            function = _current_function_here()
        else:
            if proc.hold is not None and task is not None and task.custom_sleep_data is proc.hold:
                status = "suspended"  # held back by a busy connection (see api._suspend)
            elif proc.waiter is not None and proc.waiter.custom_sleep_data is proc:
                status = "waiting"
            elif task is None:
                status = "runnable"  # spawned, not started yet
            elif getattr(task, "_next_send_fn", None) is None:
                status = "waiting"  # suspended in some other await (sleep, I/O, ...)
            else:
                status = "runnable"
            function = _current_function_of(task) if task is not None else None
        initial = _name_of(proc.initial_call)
        return {
            "status": status,
            "message_queue_len": len(proc.queue or ()),
            "links": list(proc.links or ()),
            "monitors": list((proc.monitors or {}).values()),
            "monitored_by": [watcher for watcher, _ in (proc.monitored_by or {}).values()],
            "registered_name": proc.name,
            "trap_exit": proc.trap_exit,
            "current_function": function or initial,
            "initial_call": initial,
        }

    # ------------------------------------------------------------------ entry points for remote signals

    def deliver(self, to: Pid | Atom | Reference, msg: Any) -> None:
        """A message from a remote process to a local pid, registered name or alias (never blocks).

        An unknown or dead target drops it.
        """
        if type(to) is Atom:
            proc = self._names.get(to)
        elif type(to) is Pid:
            proc = self._find(to) if self.is_local_node(to.node) else None
        elif isinstance(to, Reference):
            proc = self._aliases.get(to.ids) if self.is_local_node(to.node) else None
        else:
            proc = self._names.get(_to_atom(to))
        if proc is None or not proc.alive:
            return
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

    def adopt_monitor(self, watcher: Pid, target: Pid, ref: Reference) -> bool:
        """Record that local ``watcher`` monitors remote ``target`` with ``ref``, a monitor the remote
        node set up itself (the ``monitor`` option of a spawn request).

        From then on it behaves like one made by :meth:`monitor`: ``demonitor(ref)`` tells the remote
        node, a lost connection gives ``DOWN ... noconnection``, and :meth:`monitor_down` delivers.
        Returns False when ``watcher`` is no longer alive.
        """
        proc = self._find(watcher)
        if proc is None:
            return False
        if proc.monitors is None:
            proc.monitors = {}
        proc.monitors[ref] = target
        self._index(target.node, proc)
        return True

    def monitor_down(self, watcher: Pid, ref: Reference, item: Any, reason: Any) -> None:
        """A remote process (or name) that ``watcher`` monitors with ``ref`` went down.

        Delivers ``('DOWN', ref, process, item, reason)`` and removes the monitor, but only while the
        monitor is still active: after ``demonitor(ref)`` a late notice is dropped, as in Erlang.
        """
        proc = self._find(watcher) if self.is_local_node(watcher.node) else None
        if proc is None or not proc.alive or not proc.monitors or proc.monitors.pop(ref, None) is None:
            return
        self._enqueue(proc, (DOWN, ref, PROCESS, item, reason))

    def link_remote(self, local: Pid, remote: Pid) -> None:
        """A remote process linked to ``local``; if ``local`` is dead, answer with exit ``noproc``."""
        proc = self._find(local) if self.is_local_node(local.node) else None
        if proc is None:
            if self.dist is not None:
                self.dist.exit(local, remote, NOPROC, link=True)
            return
        if proc.links is None:
            proc.links = set()
        proc.links.add(remote)
        self._index(remote.node, proc)

    def unlink_remote(self, local: Pid, remote: Pid) -> None:
        """A remote process removed its link to ``local``."""
        proc = self._find_any(local) if self.is_local_node(local.node) else None
        if proc is not None and proc.links is not None:
            proc.links.discard(remote)

    def exit_signal(self, sender: Pid, to: Pid, reason: Any, *, link: bool) -> None:
        """An exit signal from a remote process: ``link=True`` for a broken link (EXIT; ignored when
        there is no such link), ``link=False`` for ``erlang:exit/2`` (EXIT2)."""
        proc = self._find(to) if self.is_local_node(to.node) else None
        if proc is None:
            return
        if link:
            if proc.links is None or sender not in proc.links:
                return
            proc.links.discard(sender)
        self._exit_signal(proc, sender, reason, link=link)

    def monitor_remote(self, watcher: Pid, target: Pid | Atom, ref: Reference) -> None:
        """A remote ``watcher`` monitors a local pid or registered name (noproc at once if absent)."""
        if isinstance(target, Pid):
            proc = self._find(target) if self.is_local_node(target.node) else None
        else:
            proc = self._names.get(_to_atom(target))
        if proc is None or not proc.alive:
            if self.dist is not None:
                self.dist.monitor_exit(target, watcher, ref, NOPROC)
            return
        if proc.monitored_by is None:
            proc.monitored_by = {}
        proc.monitored_by[ref] = (watcher, target)
        self._remote_watch[ref] = proc
        self._index(watcher.node, proc)

    def demonitor_remote(self, watcher: Pid, target: Pid | Atom, ref: Reference) -> None:
        """A remote ``watcher`` dropped its monitor ``ref``."""
        proc = self._remote_watch.pop(ref, None)
        if proc is not None and proc.monitored_by is not None:
            proc.monitored_by.pop(ref, None)

    def node_down(self, node: Atom) -> None:
        """The connection to ``node`` is gone: links to its pids fire with ``noconnection``, monitors of
        its processes give ``DOWN ... noconnection``, and its watchers' monitors are dropped."""
        node = Atom(node)
        procs = self._by_node.pop(node, None)
        if not procs:
            return
        for proc in sorted(procs, key=lambda p: p.key):
            if proc.monitored_by:
                for ref, (watcher, _item) in list(proc.monitored_by.items()):
                    if watcher.node == node:
                        del proc.monitored_by[ref]
                        self._remote_watch.pop(ref, None)
            if proc.monitors:
                for ref, target in list(proc.monitors.items()):
                    target_node = target.node if isinstance(target, Pid) else target[1]
                    if target_node == node:
                        del proc.monitors[ref]
                        self._enqueue(proc, (DOWN, ref, PROCESS, target, NOCONNECTION))
            if proc.links:
                for other in [p for p in proc.links if p.node == node]:
                    proc.links.discard(other)
                    self._exit_signal(proc, other, NOCONNECTION, link=True)


def _remote_node(rt: Runtime, dest: Any) -> Atom | None:
    """The remote node ``dest`` is on, or None when it is local (or not a destination)."""
    if isinstance(dest, Pid | Reference):
        return None if rt.is_local_node(dest.node) else dest.node
    if _is_name_node(dest):
        node = _to_atom(dest[1], "node")
        return None if rt.is_local_node(node) else node
    return None


def _is_name_node(dest: Any) -> bool:
    return type(dest) is tuple and len(dest) == 2 and isinstance(dest[0], str) and isinstance(dest[1], str)


def _close(coro: Any) -> None:
    close = getattr(coro, "close", None)
    if close is not None:
        close()


_INTERNAL_PREFIXES: Final = ("trio.", "philipjose.actors.", "outcome", "contextlib", "asyncio")


def _is_internal(module: str) -> bool:
    return module == "trio" or module.startswith(_INTERNAL_PREFIXES)


def _frame_name(frame: Any) -> str:
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{frame.f_code.co_qualname}"


def _current_function_of(task: trio.lowlevel.Task) -> str | None:
    found = None
    for frame, _lineno in task.iter_await_frames():
        if not _is_internal(frame.f_globals.get("__name__", "")):
            found = frame
    return _frame_name(found) if found is not None else None


def _current_function_here() -> str | None:
    frame: Any = sys._getframe(1)
    while frame is not None:
        if not _is_internal(frame.f_globals.get("__name__", "")):
            return _frame_name(frame)
        frame = frame.f_back
    return None


async def run_async(
    main: Callable[..., Awaitable[Any]],
    *args: Any,
    setup: Callable[[], Awaitable[Any]] | None = None,
) -> Any:
    """Run the actor runtime inside an existing Trio program; see :func:`run`."""
    rt = Runtime()
    token = _runtime_var.set(rt)
    try:
        async with trio.open_nursery() as system:
            rt.nursery = system
            async with trio.open_nursery() as procs:
                rt._proc_nursery = procs
                if setup is not None:
                    await setup()
                pid, _ = rt.spawn(main, args)
                rt._main = rt._procs[(pid.serial << 32) | pid.id]
                await rt._main_done.wait()
                rt._closing = True
                procs.cancel_scope.cancel()
            system.cancel_scope.cancel()
    finally:
        _runtime_var.reset(token)
    kind, value = rt._main_outcome
    if kind == "value":
        return value
    if kind == "error":
        raise value
    if value == NORMAL:
        return None
    raise Exit(value)


def run(
    main: Callable[..., Awaitable[Any]],
    *args: Any,
    setup: Callable[[], Awaitable[Any]] | None = None,
    clock: trio.abc.Clock | None = None,
) -> Any:
    """Start a runtime under ``trio.run``, run ``main(*args)`` as its first process, return its result.

    ``setup`` (optional) is awaited inside the runtime, with :func:`current_runtime` available and the
    system nursery open, before ``main`` starts (the node layer starts distribution there). ``clock``
    is passed to ``trio.run`` (e.g. ``trio.testing.MockClock``).

    When ``main`` returns, every process still running is cancelled (as if killed; their ``finally``
    blocks run, links and monitors no longer fire) and ``run`` returns ``main``'s value. If ``main``
    raises an exception, ``run`` raises it (it is not logged). If ``main`` exits through
    ``pj.Exit(reason)`` or is killed by an exit signal, ``run`` returns None for ``normal`` and raises
    ``pj.Exit(reason)`` otherwise.
    """
    return trio.run(_run_entry, main, args, setup, clock=clock)


async def _run_entry(
    main: Callable[..., Awaitable[Any]], args: Iterable[Any], setup: Callable[[], Awaitable[Any]] | None
) -> Any:
    return await run_async(main, *args, setup=setup)
