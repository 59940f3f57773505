"""The farm as a service that Erlang and Elixir processes call: the registered ``philipjose_farm``.

``Farm(service=True)`` starts a :class:`~philipjose.actors.GenServer` registered as
``philipjose_farm`` on the farmer's node (a child of the workers' supervisor, started after their
keepers and stopped first). Erlang calls it with ``gen_server:call({philipjose_farm, FarmNode},
Request, Timeout)``, Elixir with ``GenServer.call``:

==================================  ============================================================
request                              reply
==================================  ============================================================
``{map, M, F, [Args, ...]}``         ``{ok, [Result, ...]}`` (in order) or ``{error, Reason}``: the
                                     first error; the other tasks are cancelled
``{submit, M, F, Args}``             ``Ref`` at once; later the caller gets the message
                                     ``{philipjose_farm, Ref, {ok, Value} | {error, Reason}}``
``{race, [{M, F, Args}, ...]}``      ``{ok, Value}`` of the first to succeed (the others are
                                     stopped), or ``{error, Reason}`` of the last to fail
``stats``                            ``{ok, #{submitted => N, completed => N, ...}}``: the farm's
                                     counters, and ``workers``: how many are up by kind
==================================  ============================================================

``M:F`` must be a Python function exposed with :func:`philipjose.rpc.expose` on the farmer (the
registry the node's rpc serves: the same allow-list as ``rpc:call``), with that arity; it runs on
the farm's Python workers as ``farm.submit(fn, *Args)`` would run it (shipped with cloudpickle; an
``async def`` one runs under ``trio.run`` there). Anything else is refused before any task starts,
as OTP's apply would: ``{error, {undef, [{M, F, Args, []}]}}``. A malformed request is
``{error, badarg}``; an unknown one ``{error, {unknown_call, Request}}``.

Error reasons (:func:`error_reason`): a Python exception in the task is the crash reason of a Python
process, ``{python_exception, Type, Message, Traceback}`` (binaries; what rpc's callers see too);
``timeout`` (the farm's ``task_timeout`` ran out), ``cancelled``, ``{worker_lost, [Node, ...]}``
(the task killed ``max_deaths`` workers), ``{farm_error, Message}`` (the farm broke or closed), and
``{unencodable, Text}`` for a result that has no Erlang term (a Python object).

A caller that dies stops what it asked for: its map, race or submitted task is cancelled.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

import trio

import philipjose as pj
from philipjose import rpc, supervisors
from philipjose.actors import NOREPLY, Caller, GenServer, current_runtime
from philipjose.farm.errors import FarmError, TaskError, TaskTimeout, WorkerLost
from philipjose.rpc.expose import Registry
from philipjose.rpc.reasons import undef_stack
from philipjose.term import Atom, EncodeError, Pid, Reference, term_to_binary

if TYPE_CHECKING:
    from philipjose.farm.farm import Farm

__all__ = [
    "SERVICE_NAME",
    "FarmService",
    "Map",
    "Race",
    "Refusal",
    "Stats",
    "Submit",
    "error_reason",
    "parse_request",
    "service_specs",
]

SERVICE_NAME: Final = Atom("philipjose_farm")
"""The name the farm service is registered under on the farmer's node."""

_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_MAP: Final = Atom("map")
_SUBMIT: Final = Atom("submit")
_RACE: Final = Atom("race")
_STATS: Final = Atom("stats")
_BADARG: Final = Atom("badarg")
_UNDEF: Final = Atom("undef")
_DOWN: Final = Atom("DOWN")
_DONE: Final = Atom("pj_farm_job_done")
_KILL: Final = Atom("kill")


# -- requests, decided purely ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Map:
    """``{map, M, F, ArgsList}``: ``calls`` are ``(fn, args)`` in order."""

    calls: tuple[tuple[Callable[..., Any], list[Any]], ...]


@dataclass(frozen=True, slots=True)
class Submit:
    """``{submit, M, F, Args}``."""

    fn: Callable[..., Any]
    args: list[Any]


@dataclass(frozen=True, slots=True)
class Race:
    """``{race, [{M, F, Args}, ...]}``."""

    calls: tuple[tuple[Callable[..., Any], list[Any]], ...]


@dataclass(frozen=True, slots=True)
class Stats:
    """``stats``."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused at once with ``reply``."""

    reply: Any


Request = Map | Submit | Race | Stats | Refusal


def _resolve(
    registry: Registry, module: Any, function: Any, args: Any
) -> tuple[Callable[..., Any], list[Any]]:
    if type(args) is not list:
        raise _Refused((_ERROR, _BADARG))
    entry = registry.lookup(module, function, len(args))
    if entry is None:  # not exposed (or not with this arity), or not atoms: OTP's undef
        raise _Refused((_ERROR, (_UNDEF, undef_stack(module, function, args))))
    return entry.fn, args


class _Refused(Exception):
    def __init__(self, reply: Any) -> None:
        super().__init__(reply)
        self.reply = reply


def parse_request(request: Any, registry: Registry) -> Request:
    """What ``request`` (as decoded from the caller) asks for; every function is looked up in
    ``registry`` (the allow-list) before anything runs."""
    try:
        if request == _STATS:
            return Stats()
        if type(request) is not tuple or not request or type(request[0]) is not Atom:
            return Refusal((_ERROR, (Atom("unknown_call"), request)))
        tag = request[0]
        if tag == _MAP and len(request) == 4:
            if type(request[3]) is not list:
                return Refusal((_ERROR, _BADARG))
            return Map(tuple(_resolve(registry, request[1], request[2], a) for a in request[3]))
        if tag == _SUBMIT and len(request) == 4:
            return Submit(*_resolve(registry, *request[1:]))
        if tag == _RACE and len(request) == 2:
            mfas = request[1]
            if type(mfas) is not list or not mfas or any(type(m) is not tuple or len(m) != 3 for m in mfas):
                return Refusal((_ERROR, _BADARG))
            return Race(tuple(_resolve(registry, *m) for m in mfas))
        return Refusal((_ERROR, (Atom("unknown_call"), request)))
    except _Refused as refused:
        return Refusal(refused.reply)


def error_reason(exc: BaseException) -> Any:
    """The Erlang reason of a farm task's error (see the module docstring)."""
    if isinstance(exc, TaskTimeout):
        return Atom("timeout")
    if isinstance(exc, concurrent.futures.CancelledError):
        return Atom("cancelled")
    if isinstance(exc, WorkerLost):
        return (Atom("worker_lost"), [Atom(str(w)) for w in exc.workers])
    if isinstance(exc, TaskError):
        kind = exc.remote_type.removeprefix("builtins.")
        return (Atom("python_exception"), kind.encode(), exc.message.encode(), exc.remote_traceback.encode())
    if isinstance(exc, FarmError):
        return (Atom("farm_error"), str(exc).encode())
    raise exc


def outcome_term(ok: bool, value: Any) -> tuple[Atom, Any]:
    """``{ok, Value}`` or ``{error, Reason}``, with a value Erlang cannot hold made an error."""
    if ok:
        try:
            term_to_binary(value)
        except EncodeError:
            return (_ERROR, (Atom("unencodable"), repr(value)[:1000].encode()))
        return (_OK, value)
    return (_ERROR, error_reason(value))


def _call(fn: Callable[..., Any], args: list[Any]) -> Any:
    """Runs on a worker: ``fn(*args)`` (an ``async def`` one under ``trio.run``)."""
    if inspect.iscoroutinefunction(fn):
        return trio.run(functools.partial(fn, *args))
    return fn(*args)


# -- the server --------------------------------------------------------------------------------------


class FarmService(GenServer):
    """The ``philipjose_farm`` server of one farm (see the module docstring)."""

    async def init(self, farm: Farm) -> None:
        self.farm = farm
        self.registry = rpc.current_service().registry
        self.rt = current_runtime()
        self.jobs: dict[Reference, Callable[[], object]] = {}  # caller monitor -> how to stop the job

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        parsed = parse_request(request, self.registry)
        if isinstance(parsed, Refusal):
            return parsed.reply
        if isinstance(parsed, Stats):
            return (_OK, self._stats())
        pid = caller[0]
        watch = pj.monitor(pid)
        if isinstance(parsed, Submit):
            return self._submit(parsed, pid, watch)
        helper = pj.spawn(self._job, parsed, caller, watch)
        self.jobs[watch] = functools.partial(pj.exit, helper, _KILL)
        return NOREPLY

    def _submit(self, request: Submit, pid: Pid, watch: Reference) -> Any:
        ref = self.rt.make_ref()
        try:
            future = self.farm.submit(_call, request.fn, request.args)
        except FarmError as exc:  # the farm is closed or has no Python worker any more
            pj.demonitor(watch, flush=True)
            return (_ERROR, error_reason(exc))
        self.jobs[watch] = future.cancel
        me = pj.self()

        def done(f: Any) -> None:
            error = f.exception()
            result = outcome_term(error is None, f.result() if error is None else error)
            self.rt.send(pid, (SERVICE_NAME, ref, result))
            self.rt.send(me, (_DONE, watch))

        future.add_done_callback(done)
        return ref

    async def _job(self, request: Map | Race, caller: Caller, watch: Reference) -> None:
        """A helper process: run the map or race, reply, tell the server it is done."""
        try:
            if isinstance(request, Map):
                futures: list[Any] = []
                try:
                    futures.extend(self.farm.submit(_call, fn, args) for fn, args in request.calls)
                    reply: Any = outcome_term(True, [await f for f in futures])
                finally:
                    for f in futures:
                        if not f.done():
                            f.cancel()
            else:
                thunks = [functools.partial(_call, fn, args) for fn, args in request.calls]
                reply = outcome_term(True, await self.farm.race(*thunks))
        except (FarmError, concurrent.futures.CancelledError) as exc:
            reply = outcome_term(False, exc)
        pj.reply(caller, reply)
        pj.send(SERVICE_NAME, (_DONE, watch))

    async def handle_info(self, msg: Any) -> None:
        if type(msg) is tuple and len(msg) == 2 and msg[0] == _DONE:
            if self.jobs.pop(msg[1], None) is not None:
                pj.demonitor(msg[1], flush=True)
        elif type(msg) is tuple and len(msg) == 5 and msg[0] == _DOWN:
            stop = self.jobs.pop(msg[1], None)  # the caller died: what it asked for is stopped
            if stop is not None:
                stop()

    def _stats(self) -> dict[Atom, Any]:
        counters = self.farm.counters
        stats: dict[Atom, Any] = {Atom(f.name): getattr(counters, f.name) for f in fields(counters)}
        kinds: dict[Atom, int] = {}
        for kind in self.farm._kind_hosts:
            kinds[Atom(kind)] = len(self.farm._sched.workers(kind))
        stats[Atom("workers")] = kinds
        return stats


@supervisors.start_function
async def _start_service(farm: Farm) -> Pid:
    return await FarmService.start_link(farm, name=SERVICE_NAME)


def service_specs(farm: Farm, enabled: bool) -> list[supervisors.ChildSpec]:
    """The service's child spec for the workers' supervisor (none when not ``enabled``)."""
    if not enabled:
        return []
    return [supervisors.child_spec({"id": "service", "start": (_start_service, farm), "shutdown": 5})]
