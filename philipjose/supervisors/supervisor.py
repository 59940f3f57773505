"""The supervisor process: OTP's ``supervisor`` semantics carried out on philipjose processes.

Theory of operation
-------------------
A supervisor is a process that traps exits. It is spawned linked to its parent (the caller of
``start_link``), starts its children in order, then acknowledges the parent, which is waiting in
``start_link`` for that ack (or for the failure, or for the supervisor going down). Its loop then
handles three kinds of messages, one at a time:

- ``(EXIT, pid, reason)``. From the parent: stop every child in reverse start order, then exit with
  the same reason. From a child: decide with :mod:`.strategy` whether it is restarted (restart type
  and reason); if so, record the restart with :mod:`.intensity` and, if the intensity is exceeded,
  stop every child and exit with ``shutdown``; otherwise carry out the strategy's plan (stop the
  affected siblings in reverse order, start them again in order). A child that is not restarted is
  forgotten if temporary and may shut the supervisor down (``auto_shutdown`` with significant
  children). From anybody else: ignored.
- ``('$gen_call', caller, request)``: the API (``which_children``, ``start_child``, ...), answered
  with ``reply(caller, (True, value))`` or ``(False, error)``.
- ``(TRY_AGAIN, key)``, sent to itself when a restart failed: retry it later, so that other messages
  (a stop request, say) are handled in between; every retry counts as a restart, as in OTP.

Stopping a child: monitor it, send ``exit(child, shutdown)`` (or ``kill`` for ``brutal_kill``),
wait for the ``DOWN`` message (the monitor, never the link: a child that unlinked cannot hang the
supervisor) for at most its ``shutdown`` seconds, then ``kill`` it and wait again; finally unlink it
and drop its pending ``EXIT`` message. Dynamic children (``simple_one_for_one`` and the Elixir-style
dynamic supervisor) are stopped all at once when the supervisor ends, in no defined order.

Children are kept in three forms. Static supervisors: ``order`` (ids in start order) and
``children`` (id -> :class:`_Child`), plus ``by_pid``. Dynamic supervisors: ``dynamic`` (pid ->
:class:`_Dynamic`) and ``restarting`` (token -> :class:`_Dynamic`) for children whose restart
failed and is to be retried.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import trio

from philipjose import actors
from philipjose.actors._system import SystemState, charlist, handle_system, is_system
from philipjose.actors.genserver import reply_system, wants_ok_state
from philipjose.rpc.expose import default_registry
from philipjose.supervisors import _reports
from philipjose.supervisors.errors import SpecError, SupervisorError
from philipjose.supervisors.intensity import check_restart, whole_seconds
from philipjose.supervisors.otp import (
    ErlangMFA,
    InvalidSpec,
    child_record,
    erlang_spec,
    find_id,
    otp_id,
    spec_map,
    start_result,
)
from philipjose.supervisors.spec import ChildSpec, SupFlags, check_child, is_start_function
from philipjose.supervisors.strategy import (
    SHUTDOWN,
    auto_shutdown_triggered,
    is_reported,
    plan_restart,
    should_restart,
    shutdown_ok,
)
from philipjose.term import EncodeError
from philipjose.term.types import Atom, Pid, Reference

__all__ = ["ACK", "DYNAMIC", "PJ_REQUEST", "SIMPLE", "STATIC", "ChildInfo", "Supervisor", "supervisor_main"]

EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
GEN_CALL = Atom("$gen_call")
KILL = Atom("kill")
TRY_AGAIN = Atom("$pj_supervisor_try_again")
RESTARTING = "restarting"
RUNNING = Atom("$pj_supervisor_child_running")
#: Requests of the Python API are ``(PJ_REQUEST, kind, *args)`` and get ``(True, value)`` or
#: ``(False, reason)``; any other call is an Erlang caller's and gets OTP's shapes.
PJ_REQUEST = Atom("$pj_supervisor")
OK = Atom("ok")
ERROR = Atom("error")
UNDEFINED = Atom("undefined")
#: The "callback module" a philipjose supervisor reports to ``sys:get_status`` and
#: ``supervisor:get_callback_module``.
CALLBACK = Atom("philipjose.supervisors")

STATIC = "static"
SIMPLE = "simple_one_for_one"
DYNAMIC = "dynamic"


class ChildInfo(tuple[Any, Any, str, Any]):
    """One entry of ``which_children``: ``(id, pid, type, modules)`` as in OTP, with ``pid`` a Pid,
    ``None`` (not running) or ``"restarting"``, and ``id`` None for dynamic children."""

    __slots__ = ()

    def __new__(cls, id: Any, pid: Any, type: str, modules: Any) -> ChildInfo:
        return super().__new__(cls, (id, pid, type, modules))

    @property
    def id(self) -> Any:
        return self[0]

    @property
    def pid(self) -> Any:
        return self[1]

    @property
    def type(self) -> str:
        return self[2]

    @property
    def modules(self) -> Any:
        return self[3]


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    pid: Pid | None = None
    restarting: bool = False


@dataclass(slots=True)
class _Dynamic:
    spec: ChildSpec
    args: tuple[Any, ...]


class _Failed(Exception):
    """A start function failed (internal): ``reason`` is the Erlang-shaped reason."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class _Stop(Exception):
    """The supervisor is to end with ``reason`` once its children are stopped (internal)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason_of(exc: Exception) -> Any:
    """The failure reason of a start that raised ``exc``: the ``reason`` of ``pj.Exit``, a
    ``StartError`` (ours or GenServer's) or a ``ChildError``; else the runtime's crash reason."""
    if isinstance(exc, actors.Exit | actors.StartError | SupervisorError):
        reason = getattr(exc, "reason", None)
        if reason is not None:
            return reason
    return actors.crash_reason(exc)


class _Body:
    """A child's async function, wrapped to tell the supervisor once it runs (``_name_of`` in the
    runtime reads ``func``, so the process's initial call is still the user's function)."""

    __slots__ = ("func", "supervisor")

    def __init__(self, func: Callable[..., Awaitable[Any]], supervisor: Pid) -> None:
        self.func = func
        self.supervisor = supervisor

    async def __call__(self, *args: Any) -> Any:
        actors.send(self.supervisor, (RUNNING, actors.self()))
        return await self.func(*args)


async def _spawn_body(func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Pid:
    """Spawn ``func(*args)`` linked to the supervisor and wait until it has begun to run, so that
    children start in order (each runs up to its first checkpoint before the next is spawned). An
    ``EXIT`` that comes instead (killed before it ran) is put back for the supervisor's loop."""
    me = actors.self()
    pid = actors.spawn_link(_Body(func, me), *args)

    def started(message: Any) -> bool:
        return (
            type(message) is tuple
            and ((len(message) == 2 and message[0] == RUNNING) or (len(message) == 3 and message[0] == EXIT))
            and message[1] == pid
        )

    message = await actors.receive(match=started)
    if message[0] == EXIT:
        actors.send(me, message)
    return pid


async def start_child_process(spec: ChildSpec, args: tuple[Any, ...]) -> Pid | None:
    """Start one child as the spec says, linked to the calling process. Returns its pid, or None for
    ``ignore``. Raises ``_Failed`` with the reason when the start fails."""
    start = spec.start
    try:
        if isinstance(start, type) and issubclass(start, actors.GenServer):
            result: Any = await start.start_link(*args, timeout=None)
        elif is_start_function(start):
            result = start(*args)
            if inspect.isawaitable(result):
                result = await result
        else:
            return await _spawn_body(cast(Callable[..., Awaitable[Any]], start), args)
    except Exception as exc:  # a start function failed: that is the child's start error
        raise _Failed(_reason_of(exc)) from exc
    if result is None or isinstance(result, Pid):
        return result
    raise _Failed((Atom("bad_return_value"), result))


class _ErlangStart(ErlangMFA):
    """The start of a child that an Erlang caller's spec gave as ``{M, F, A}``: the function exposed
    as ``M:F/length(A)`` (see :mod:`.otp`), ``fn`` None when there is none (the start then fails with
    OTP's ``{'EXIT', {undef, [{M, F, A, []}]}}``)."""

    __philipjose_start_function__ = True

    def __init__(self, module: Any, function: Any, args: tuple[Any, ...]) -> None:
        self.module = module
        self.function = function
        self.args = args
        entry = default_registry().lookup(module, function, len(args))
        self.fn = None if entry is None else entry.fn

    def __repr__(self) -> str:
        return f"{self.module}:{self.function}/{len(self.args)}"

    async def __call__(self, *args: Any) -> Pid | None:
        if self.fn is None:
            raise actors.Exit((EXIT, (Atom("undef"), [(self.module, self.function, list(args), [])])))
        if not is_start_function(self.fn):  # an async function: the body of the child
            return await _spawn_body(self.fn, args)
        result = self.fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return start_result(result)


def _alive(pid: Pid) -> bool:
    """``is_alive`` for local pids; a child on another node counts as alive while it is a child."""
    try:
        return actors.is_alive(pid)
    except actors.BadArg:
        return True


def _is_down(ref: Reference) -> Callable[[Any], bool]:
    def match(message: Any) -> bool:
        return type(message) is tuple and len(message) == 5 and message[0] == DOWN and message[1] == ref

    return match


def _is_exit_from(pid: Pid) -> Callable[[Any], bool]:
    def match(message: Any) -> bool:
        return type(message) is tuple and len(message) == 3 and message[0] == EXIT and message[1] == pid

    return match


async def _unlink_flush(pid: Pid, default: Any) -> Any:
    actors.unlink(pid)
    try:
        message = await actors.receive(match=_is_exit_from(pid), timeout=0)
    except TimeoutError:
        return default
    return message[2]


async def shutdown_process(pid: Pid, spec: ChildSpec) -> Any:
    """Stop one child as its ``shutdown`` says and return the reason it ended with."""
    ref = actors.monitor(pid)
    timeout = spec.shutdown_timeout
    if spec.shutdown == "brutal_kill":
        actors.exit(pid, KILL)
        message = await actors.receive(match=_is_down(ref))
    else:
        actors.exit(pid, SHUTDOWN)
        try:
            message = await actors.receive(match=_is_down(ref), timeout=timeout)
        except TimeoutError:
            actors.exit(pid, KILL)
            message = await actors.receive(match=_is_down(ref))
    return await _unlink_flush(pid, message[4])


class Supervisor:
    """The state and behaviour of one supervisor process (internal; see the theory of operation)."""

    def __init__(
        self,
        parent: Pid | None,
        flags: SupFlags,
        mode: str,
        specs: Sequence[ChildSpec],
        name: Any,
        max_children: int | None = None,
        extra_args: tuple[Any, ...] = (),
    ) -> None:
        self.parent = parent
        self.flags = flags
        self.mode = mode
        self.name = name
        self.label: Any = name if name is not None else actors.self()
        self.max_children = max_children
        self.extra_args = extra_args
        self.restarts: tuple[int, ...] = ()
        self.order: list[Hashable] = [spec.id for spec in specs] if mode == STATIC else []
        self.children: dict[Hashable, _Child] = {s.id: _Child(s) for s in specs} if mode == STATIC else {}
        self.by_pid: dict[Pid, Hashable] = {}
        self.template: ChildSpec | None = specs[0] if mode == SIMPLE else None
        self.dynamic: dict[Pid, _Dynamic] = {}
        self.restarting: dict[int, _Dynamic] = {}
        self._tokens = itertools.count()
        self.starter: Pid | None = None

    # ----------------------------------------------------------------- starting and stopping

    async def _start(self, spec: ChildSpec, args: tuple[Any, ...], report: bool = True) -> Pid | None:
        pid = await start_child_process(spec, args)
        if pid is not None and report:
            _reports.report_progress(self.label, spec, pid)
        return pid

    async def _start_static(self, child: _Child) -> Pid | None:
        """Start a static child and record its pid; raises ``_Failed`` (after reporting it)."""
        try:
            pid = await self._start(child.spec, child.spec.args)
        except _Failed as failed:
            _reports.report_error("start_error", self.label, failed.reason, child.spec, None)
            raise
        child.pid = pid
        child.restarting = False
        if pid is not None:
            self.by_pid[pid] = child.spec.id
        return pid

    async def _stop_static(self, child: _Child) -> None:
        if child.pid is None:
            return
        pid = child.pid
        reason = await shutdown_process(pid, child.spec)
        self.by_pid.pop(pid, None)
        child.pid = None
        if not shutdown_ok(child.spec.shutdown, child.spec.restart, reason):
            _reports.report_error("shutdown_error", self.label, reason, child.spec, pid)

    def _forget(self, cid: Hashable) -> None:
        child = self.children.pop(cid, None)
        if child is not None:
            self.order.remove(cid)
            if child.pid is not None:
                self.by_pid.pop(child.pid, None)

    async def start_initial(self) -> None:
        """Start the static children in order. On a failure, stop those started (reverse order) and
        raise ``_Stop((shutdown, (failed_to_start_child, Id, Reason)))``."""
        for cid in list(self.order):
            child = self.children[cid]
            try:
                pid = await self._start_static(child)
            except _Failed as failed:
                await self.terminate_all()
                raise _Stop((SHUTDOWN, (Atom("failed_to_start_child"), cid, failed.reason))) from None
            if pid is None and child.spec.restart == "temporary":
                self._forget(cid)

    async def terminate_all(self) -> None:
        """Stop every child: static ones in reverse start order, dynamic ones all at once."""
        if self.mode == STATIC:
            for cid in reversed(list(self.order)):
                child = self.children.get(cid)
                if child is None:
                    continue
                await self._stop_static(child)
                if child.spec.restart == "temporary":
                    self._forget(cid)
                child.restarting = False
        else:
            await self._terminate_dynamic()

    async def _terminate_dynamic(self) -> None:
        """Stop every dynamic child at once: monitor and signal them all, then collect the ``DOWN``
        messages, killing those still alive when their ``shutdown`` time has passed. The ``EXIT``
        messages of these children are consumed on the way (they come first), so the mailbox scan
        stays short however many children there are."""
        now = trio.current_time()
        waiting: dict[Reference, tuple[Pid, _Dynamic]] = {}
        deadlines: list[tuple[float, int, Reference]] = []  # a heap; entries of finished refs are skipped
        pids: set[Pid] = set()
        for pid, entry in self.dynamic.items():
            ref = actors.monitor(pid)
            waiting[ref] = (pid, entry)
            pids.add(pid)
            timeout = entry.spec.shutdown_timeout
            if entry.spec.shutdown == "brutal_kill":
                actors.exit(pid, KILL)
            else:
                actors.exit(pid, SHUTDOWN)
                if timeout is not None:
                    deadlines.append((now + timeout, len(deadlines), ref))
        heapq.heapify(deadlines)
        self.dynamic = {}
        self.restarting = {}

        def is_ours(message: Any) -> bool:
            if type(message) is not tuple:
                return False
            size = len(message)
            if size == 5:
                return message[0] == DOWN and message[1] in waiting
            return size == 3 and message[0] == EXIT and message[1] in pids

        while waiting:
            while deadlines and deadlines[0][2] not in waiting:
                heapq.heappop(deadlines)
            timeout = None
            if deadlines:
                timeout = max(0.0, deadlines[0][0] - trio.current_time())
            try:
                message = await actors.receive(match=is_ours, timeout=timeout)
            except TimeoutError:
                current = trio.current_time()
                while deadlines and deadlines[0][0] <= current:
                    _, _, ref = heapq.heappop(deadlines)
                    if ref in waiting:
                        actors.exit(waiting[ref][0], KILL)
                continue
            if len(message) == 3:
                continue  # the EXIT of a child we are stopping; its DOWN follows
            ref = message[1]
            pid, entry = waiting.pop(ref)
            actors.unlink(pid)
            reason = message[4]
            if not shutdown_ok(entry.spec.shutdown, entry.spec.restart, reason):
                _reports.report_error("shutdown_error", self.label, reason, entry.spec, pid)

    # ----------------------------------------------------------------- exits of children

    async def handle_exit(self, pid: Pid, reason: Any) -> None:
        """An ``EXIT`` from ``pid``: the parent, a child, or someone to ignore."""
        if pid == self.parent:
            raise _Stop(reason)
        if self.mode == STATIC:
            cid = self.by_pid.pop(pid, None)
            if cid is not None:
                await self._static_exit(self.children[cid], reason)
            return
        entry = self.dynamic.pop(pid, None)
        if entry is not None:
            await self._dynamic_exit(pid, entry, reason)

    async def _static_exit(self, child: _Child, reason: Any) -> None:
        spec = child.spec
        old_pid = child.pid
        child.pid = None
        if is_reported(spec.restart, reason):
            _reports.report_error("child_terminated", self.label, reason, spec, old_pid)
        if should_restart(spec.restart, reason):
            await self._restart_static(child, old_pid)
            return
        if spec.restart == "temporary":
            self._forget(spec.id)
        self._maybe_auto_shutdown(spec)

    def _maybe_auto_shutdown(self, spec: ChildSpec) -> None:
        if self.mode == STATIC:
            left = any(
                c.spec.significant and (c.pid is not None or c.restarting) for c in self.children.values()
            )
        else:
            left = bool(self.dynamic) or bool(self.restarting)
        if auto_shutdown_triggered(self.flags.auto_shutdown, spec.significant, left):
            raise _Stop(SHUTDOWN)

    def _add_restart(self, spec: ChildSpec, pid: Any) -> None:
        check = check_restart(
            self.restarts, whole_seconds(trio.current_time()), self.flags.intensity, self.flags.period
        )
        self.restarts = check.restarts
        if check.exceeded:
            _reports.report_error("shutdown", self.label, Atom("reached_max_restart_intensity"), spec, pid)
            raise _Stop(SHUTDOWN)

    async def _restart_static(self, child: _Child, old_pid: Pid | None = None) -> None:
        self._add_restart(child.spec, old_pid)
        plan = plan_restart(
            self.flags.strategy, [(cid, self.children[cid].spec.restart) for cid in self.order], child.spec.id
        )
        for cid in plan.terminate:
            sibling = self.children[cid]
            await self._stop_static(sibling)
            sibling.restarting = False
        for cid in plan.forget:
            self._forget(cid)
        for cid in plan.start:
            target = self.children[cid]
            try:
                await self._start_static(target)
            except _Failed:
                target.restarting = True
                actors.send(actors.self(), (TRY_AGAIN, cid))
                return

    async def _dynamic_exit(self, pid: Pid, entry: _Dynamic, reason: Any) -> None:
        spec = entry.spec
        if is_reported(spec.restart, reason):
            _reports.report_error("child_terminated", self.label, reason, spec, pid)
        if should_restart(spec.restart, reason):
            self._add_restart(spec, pid)
            await self._restart_dynamic(entry)
            return
        self._maybe_auto_shutdown(spec)

    async def _restart_dynamic(self, entry: _Dynamic) -> None:
        try:
            pid = await self._start(entry.spec, entry.args, report=False)
        except _Failed as failed:
            _reports.report_error("start_error", self.label, failed.reason, entry.spec, None)
            token = next(self._tokens)
            self.restarting[token] = entry
            actors.send(actors.self(), (TRY_AGAIN, token))
            return
        if pid is not None:
            self.dynamic[pid] = entry

    async def try_again(self, key: Any) -> None:
        """Retry a restart that failed earlier (a ``TRY_AGAIN`` message)."""
        if self.mode == STATIC:
            child = self.children.get(key)
            if child is not None and child.restarting:
                await self._restart_static(child)
            return
        entry = self.restarting.pop(key, None)
        if entry is not None:
            self._add_restart(entry.spec, None)
            await self._restart_dynamic(entry)

    # ----------------------------------------------------------------- API requests

    async def handle_call(self, request: Any) -> Any:
        """Answer one request of the Python API, ``(kind, *args)``, with ``(True, value)`` or
        ``(False, error reason)``."""
        if type(request) is not tuple or not request:
            return False, (Atom("bad_request"), request)
        entry = self._HANDLERS.get(request[0])
        if entry is None or len(request) != entry[1] + 1:
            return False, (Atom("bad_request"), request)
        result: tuple[bool, Any] = await entry[0](self, *request[1:])
        return result

    async def otp_call(self, request: Any) -> Any:
        """Answer a call from an Erlang or Elixir caller in OTP's shapes (see ``docs/supervision.md``):

        - ``which_children``: ``[{Id, Child, Type, Modules}]``, newest first as OTP lists them
          (the Python API lists them in start order; ``Child`` a pid, ``undefined`` or
          ``restarting``; a ``str`` id is shown as an atom, a dynamic child's as ``undefined``);
        - ``count_children``: ``[{specs, N}, {active, N}, {supervisors, N}, {workers, N}]``;
        - ``{start_child, Spec}``: ``{ok, Pid}`` (``{ok, undefined}`` for ``ignore``), ``{error,
          already_present}``, ``{error, {already_started, Pid}}``, ``{error, Reason}`` for a spec
          OTP refuses, ``{error, {Reason, ChildRecord}}`` when the start fails (see :mod:`.otp`);
        - ``{terminate_child, Id}``, ``{delete_child, Id}``: ``ok`` or ``{error, Reason}``;
          ``{restart_child, Id}``: ``{ok, Pid}`` or ``{error, Reason}``; ``{get_childspec, Id}``:
          ``{ok, Map}`` or ``{error, not_found}``. ``Id`` is an id as ``which_children`` shows it.

        Anything else gets ``{error, {bad_request, Request}}`` (OTP's supervisor would crash).
        """
        if request == Atom("which_children"):
            return self.otp_children()
        if request == Atom("count_children"):
            _, counts = await self._count_children()
            return [(Atom(key), counts[key]) for key in ("specs", "active", "supervisors", "workers")]
        if type(request) is tuple and len(request) == 2 and type(request[0]) is Atom:
            kind, arg = request
            if kind == Atom("start_child"):
                return await self._otp_start_child(arg)
            key = find_id(self.order, arg) if self.mode == STATIC else None
            key = arg if key is None else key
            if kind == Atom("terminate_child"):
                if self.mode == DYNAMIC and key not in self.dynamic:  # as Elixir's DynamicSupervisor
                    return (ERROR, Atom("not_found"))
                ok, value = await self._terminate_child(key)
                return OK if ok else (ERROR, value)
            if kind == Atom("delete_child"):
                ok, value = await self._delete_child(key)
                return OK if ok else (ERROR, value)
            if kind == Atom("restart_child"):
                ok, value = await self._restart_child(key)
                return (OK, UNDEFINED if value is None else value) if ok else (ERROR, value)
            if kind == Atom("get_childspec"):
                ok, value = await self._get_childspec(key)
                return (OK, spec_map(value)) if ok else (ERROR, value)
        return (ERROR, (Atom("bad_request"), request))

    def otp_children(self) -> list[tuple[Any, Any, Atom, Any]]:
        """``which_children`` as OTP answers it."""
        if self.mode == STATIC:
            infos = [
                ChildInfo(cid, RESTARTING if c.restarting else c.pid, c.spec.type, c.spec.modules)
                for cid, c in ((cid, self.children[cid]) for cid in reversed(self.order))
            ]
        else:
            infos = [ChildInfo(None, pid, e.spec.type, e.spec.modules) for pid, e in self.dynamic.items()]
            infos.extend(
                ChildInfo(None, RESTARTING, e.spec.type, e.spec.modules) for e in self.restarting.values()
            )
        return [
            (
                otp_id(info.id),
                UNDEFINED if info.pid is None else Atom(info.pid) if isinstance(info.pid, str) else info.pid,
                Atom(info.type),
                Atom("dynamic") if info.modules == "dynamic" else [Atom(m) for m in info.modules],
            )
            for info in infos
        ]

    async def _otp_start_child(self, arg: Any) -> Any:
        if self.mode == SIMPLE:
            if type(arg) is not list:
                return (ERROR, (Atom("badarg"), arg))
            ok, value = await self._start_child(arg)
            return (OK, UNDEFINED if value is None else value) if ok else (ERROR, value)
        if self.mode == DYNAMIC and type(arg) is tuple and len(arg) in (5, 6) and type(arg[0]) is tuple:
            # Elixir's DynamicSupervisor sends {MFA, Restart, Shutdown, Type, Modules} (1.14) and
            # {MFA, Restart, Shutdown, Type, Modules, Significant} (later versions)
            keys = ("start", "restart", "shutdown", "type", "modules", "significant")
            arg = {Atom("id"): UNDEFINED} | {Atom(k): v for k, v in zip(keys, arg, strict=False)}
        try:
            spec = erlang_spec(arg, _ErlangStart)
        except InvalidSpec as exc:
            return (ERROR, exc.reason)
        except SpecError as exc:
            return (ERROR, (Atom("invalid_child_spec"), arg, exc.reason))
        if spec.significant and self.flags.auto_shutdown == "never":
            combination = [(Atom("auto_shutdown"), Atom("never")), (Atom("significant"), True)]
            return (ERROR, (Atom("bad_combination"), combination))
        if self.mode == DYNAMIC:
            ok, value = await self._start_dynamic_child(spec, self.extra_args + spec.args)
            if ok:
                return Atom("ignore") if value is None else (OK, value)
            return (ERROR, value)
        existing = find_id(self.order, spec.id)
        if existing is not None:
            pid = self.children[existing].pid
            return (ERROR, Atom("already_present") if pid is None else (Atom("already_started"), pid))
        ok, value = await self._add_static(spec)
        if ok:
            return (OK, UNDEFINED if value is None else value)
        return (ERROR, (value, child_record(spec, None)))

    async def _which_children(self) -> tuple[bool, Any]:
        if self.mode == STATIC:
            infos = []
            for cid in self.order:
                child = self.children[cid]
                pid = RESTARTING if child.restarting else child.pid
                infos.append(ChildInfo(cid, pid, child.spec.type, child.spec.modules))
            return True, infos
        result = [ChildInfo(None, pid, e.spec.type, e.spec.modules) for pid, e in self.dynamic.items()]
        result.extend(
            ChildInfo(None, RESTARTING, e.spec.type, e.spec.modules) for e in self.restarting.values()
        )
        return True, result

    async def _count_children(self) -> tuple[bool, Any]:
        counts = {"specs": 0, "active": 0, "supervisors": 0, "workers": 0}
        if self.mode == STATIC:
            entries = [(c.spec, c.pid) for c in self.children.values()]
            counts["specs"] = len(entries)
        else:
            entries = [(e.spec, pid) for pid, e in self.dynamic.items()]
            entries.extend((e.spec, None) for e in self.restarting.values())
            counts["specs"] = 1 if self.mode == SIMPLE else len(entries)
        for spec, pid in entries:
            if pid is not None and _alive(pid):
                counts["active"] += 1
            counts["supervisors" if spec.type == "supervisor" else "workers"] += 1
        return True, counts

    async def _start_child(self, arg: Any) -> tuple[bool, Any]:
        if self.mode == SIMPLE:
            assert self.template is not None
            if isinstance(arg, str | bytes) or not isinstance(arg, list | tuple):
                return False, (Atom("badarg"), "simple_one_for_one start_child takes a list of extra args")
            return await self._start_dynamic_child(self.template, self.template.args + tuple(arg))
        try:
            spec = check_child(arg, self.flags)
        except SpecError as exc:
            return False, ("spec_error", exc.key, exc.reason)
        if self.mode == DYNAMIC:
            return await self._start_dynamic_child(spec, self.extra_args + spec.args)
        existing = self.children.get(spec.id)
        if existing is not None:
            if existing.pid is not None:
                return False, (Atom("already_started"), existing.pid)
            return False, Atom("already_present")
        return await self._add_static(spec)

    async def _add_static(self, spec: ChildSpec) -> tuple[bool, Any]:
        """Start a new static child and keep it (unless temporary and ignored)."""
        child = _Child(spec)
        try:
            pid = await self._start_static(child)
        except _Failed as failed:
            return False, failed.reason
        if pid is None and spec.restart == "temporary":
            return True, None
        self.order.append(spec.id)
        self.children[spec.id] = child
        return True, pid

    async def _start_dynamic_child(self, spec: ChildSpec, args: tuple[Any, ...]) -> tuple[bool, Any]:
        if self.max_children is not None and len(self.dynamic) + len(self.restarting) >= self.max_children:
            return False, Atom("max_children")
        try:
            pid = await self._start(spec, args, report=False)
        except _Failed as failed:
            return False, failed.reason
        if pid is not None:
            self.dynamic[pid] = _Dynamic(spec, args)
        return True, pid

    async def _terminate_child(self, key: Any) -> tuple[bool, Any]:
        if self.mode != STATIC:
            if not isinstance(key, Pid):
                return False, Atom("simple_one_for_one") if self.mode == SIMPLE else Atom("not_found")
            entry = self.dynamic.pop(key, None)
            if entry is None:
                return (False, Atom("not_found")) if _alive(key) else (True, None)
            reason = await shutdown_process(key, entry.spec)
            if not shutdown_ok(entry.spec.shutdown, entry.spec.restart, reason):
                _reports.report_error("shutdown_error", self.label, reason, entry.spec, key)
            return True, None
        child = self.children.get(key)
        if child is None:
            return False, Atom("not_found")
        await self._stop_static(child)
        child.restarting = False
        if child.spec.restart == "temporary":
            self._forget(key)
        return True, None

    async def _restart_child(self, cid: Any) -> tuple[bool, Any]:
        if self.mode != STATIC:
            return False, Atom("simple_one_for_one") if self.mode == SIMPLE else Atom("not_found")
        child = self.children.get(cid)
        if child is None:
            return False, Atom("not_found")
        if child.restarting:
            return False, Atom("restarting")
        if child.pid is not None:
            return False, Atom("running")
        try:
            pid = await self._start_static(child)
        except _Failed as failed:
            return False, failed.reason
        return True, pid

    async def _delete_child(self, cid: Any) -> tuple[bool, Any]:
        if self.mode != STATIC:
            return False, Atom("simple_one_for_one") if self.mode == SIMPLE else Atom("not_found")
        child = self.children.get(cid)
        if child is None:
            return False, Atom("not_found")
        if child.restarting:
            return False, Atom("restarting")
        if child.pid is not None:
            return False, Atom("running")
        self._forget(cid)
        return True, None

    async def _get_childspec(self, key: Any) -> tuple[bool, Any]:
        if self.mode == STATIC:
            child = self.children.get(key)
            return (True, child.spec) if child is not None else (False, Atom("not_found"))
        if self.mode == SIMPLE:
            assert self.template is not None
            return True, self.template
        entry = self.dynamic.get(key) if isinstance(key, Pid) else None
        return (True, entry.spec) if entry is not None else (False, Atom("not_found"))

    # ----------------------------------------------------------------- sys

    def system_state(self) -> tuple[Any, ...]:
        """What ``sys:get_state`` shows: a tuple shaped like OTP's ``#state{}`` record,
        ``{state, Name, Strategy, {Ids, #{Id => ChildRecord}}, Dynamics, Intensity, Period, Restarts,
        DynamicRestarts, AutoShutdown, Module, Args}`` (``Name`` is ``{local, Name}`` or ``{Pid,
        Module}``; ``Ids`` newest first; child records as :func:`.otp.child_record`; ``Dynamics``
        ``{maps, #{Pid => undefined}}`` for dynamic children; ``Module`` ``'philipjose.supervisors'``)."""
        name = (Atom("local"), Atom(self.name)) if self.name is not None else (actors.self(), CALLBACK)
        if self.mode == STATIC:
            ids = [otp_id(cid) for cid in reversed(self.order)]
            records = {otp_id(cid): child_record(c.spec, c.pid) for cid, c in self.children.items()}
            dynamics: Any = UNDEFINED
        else:
            template = self.template
            ids = [] if template is None else [otp_id(template.id)]
            records = {} if template is None else {otp_id(template.id): child_record(template, None)}
            dynamics = (Atom("maps"), dict.fromkeys(self.dynamic, UNDEFINED))
        strategy = "one_for_one" if self.mode == DYNAMIC else self.flags.strategy
        return (
            Atom("state"),
            name,
            Atom(strategy),
            (ids, records),
            dynamics,
            self.flags.intensity,
            self.flags.period,
            list(self.restarts),
            0,
            Atom(self.flags.auto_shutdown),
            CALLBACK,
            [],
        )

    async def system(self, message: Any, state: SystemState) -> None:
        """Answer one ``{system, From, Request}`` as OTP's supervisor (a gen_server) does. The state
        cannot be replaced: ``replace_state`` answers ``{error, {callback_failed, ...}}``."""

        def refuse(fun: Any) -> Any:
            raise actors.BadArg("a philipjose supervisor's state cannot be replaced")

        request = message[2]
        ok_state = await wants_ok_state(message[1][0], request)
        answer = handle_system(
            request,
            state,
            get_state=self.system_state,
            replace_state=refuse,
            status_data=lambda: [
                (Atom("data"), [(charlist("State"), self.system_state())]),
                (Atom("supervisor"), [(charlist("Callback"), CALLBACK)]),
            ],
            pid=actors.self(),
            name=self.name,
            parent=actors.self() if self.parent is None else self.parent,
            ancestors=[] if self.starter is None else [self.starter],
            module=Atom("gen_server"),
            initial_call=(Atom("supervisor"), CALLBACK, 1),
            ok_state=ok_state,
        )
        reply_system(message[1], request, answer)

    # request kind -> (handler, number of arguments)
    _HANDLERS: dict[Any, tuple[Any, int]] = {
        Atom("which_children"): (_which_children, 0),
        Atom("count_children"): (_count_children, 0),
        Atom("start_child"): (_start_child, 1),
        Atom("terminate_child"): (_terminate_child, 1),
        Atom("restart_child"): (_restart_child, 1),
        Atom("delete_child"): (_delete_child, 1),
        Atom("get_childspec"): (_get_childspec, 1),
    }


ACK = Atom("$pj_supervisor_ack")


async def supervisor_main(
    starter: Pid,
    linked: bool,
    flags: SupFlags,
    mode: str,
    specs: Sequence[ChildSpec],
    name: Any,
    max_children: int | None,
    extra_args: tuple[Any, ...],
) -> None:
    """The body of a supervisor process (spawned by ``start_link`` / ``start``).

    ``starter`` waits for ``(ACK, self, True, self)`` or ``(ACK, self, False, reason)``. When
    ``linked``, the starter is the parent: its ``EXIT`` stops the supervisor with the same reason.
    """
    actors.process_flag("trap_exit", True)
    me = actors.self()
    parent = starter if linked else None
    if name is not None:
        existing = actors.whereis(name)
        if existing is not None:
            _nack(starter, linked, (Atom("already_started"), existing))
            return
        actors.register(name, me)
    sup = Supervisor(parent, flags, mode, specs, name, max_children, extra_args)
    if mode == STATIC:
        try:
            await sup.start_initial()
        except _Stop as stop:
            _nack(starter, linked, stop.reason)
            raise actors.Exit(stop.reason) from None
    actors.send(starter, (ACK, me, True, me))
    sup.starter = starter
    system = SystemState()
    stopper: Any = None

    def suspended_match(m: Any) -> bool:  # a suspended supervisor takes only these
        return is_system(m) or (type(m) is tuple and len(m) == 3 and m[0] == EXIT and m[1] == parent)

    try:
        while True:
            message = await (actors.receive(match=suspended_match) if system.suspended else actors.receive())
            if type(message) is tuple and len(message) == 3 and message[0] == EXIT:
                await sup.handle_exit(message[1], message[2])
            elif type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL:
                request = message[2]
                if type(request) is tuple and len(request) >= 2 and request[0] == PJ_REQUEST:
                    request = request[1:]
                    if len(request) == 2 and request[0] == Atom("stop"):
                        stopper = message[1]
                        raise _Stop(request[1])
                    answer = await sup.handle_call(request)
                else:
                    answer = await sup.otp_call(request)
                try:
                    actors.reply(message[1], answer)
                except EncodeError:  # an answer a caller on another node cannot get
                    actors.reply(message[1], (ERROR, (Atom("unencodable"), repr(answer).encode())))
            elif is_system(message):
                await sup.system(message, system)
                if system.terminating:
                    raise _Stop(system.reason)
            elif type(message) is tuple and len(message) == 2 and message[0] == TRY_AGAIN:
                await sup.try_again(message[1])
            else:
                _reports.report_unexpected(sup.label, message)
    except _Stop as stop:
        await sup.terminate_all()
        if stopper is not None:
            actors.reply(stopper, (True, None))
        raise actors.Exit(stop.reason) from None


def _nack(starter: Pid, linked: bool, reason: Any) -> None:
    """Tell the starter the start failed; unlink first so it sees an error, not an exit signal."""
    if linked:
        actors.unlink(starter)
    actors.send(starter, (ACK, actors.self(), False, reason))
