"""Serving other nodes: SPAWN_REQUEST for ``erpc:execute_call/4``, ``erpc:execute_cast/3`` and any
exposed function, answered as ERTS answers it.

Theory of operation
-------------------
OTP 25's ``erpc:call(Node, M, F, A, T)`` (and so ``rpc:call``) sends
``spawn_request(Node, erpc, execute_call, [Res, M, F, A], [{reply, error_only}, monitor])``; on the
wire this is a SPAWN_REQUEST whose options are ``[monitor]``. The node calls
:func:`handle_spawn_request` synchronously from the connection's reader. It spawns a local process,
sets up the link and the monitor the request asked for (the monitor's reference is the request id),
and answers SPAWN_REPLY with the new pid and the flags saying what was set up — all before the new
process first runs, so the reply always precedes any signal from the process.

The ``execute_call`` process looks ``M:F/len(A)`` up in the registry of exposed functions (nothing
else is ever looked up or imported), runs it, and ends with the exit reason ``erpc`` reads from the
``DOWN`` message: ``{Res, return, V}``, ``{Res, throw, V}``, ``{Res, exit, R}``,
``{Res, error, R, Stack}`` (see :mod:`.reasons`). An unexposed function gives
``{Res, error, undef, [{M, F, A, []}]}``, exactly what Erlang gives for a missing function, and a
warning in the log; arguments that are not a proper list (or a module or function that is not an
atom) give ``{Res, error, badarg, [{erlang, apply, [M, F, A], _}]}``, as OTP 25 does. Either way
``rpc:call`` returns ``{badrpc, {'EXIT', {Reason, Stack}}}``. The exit is made with an exit signal
to itself, so that these non-normal reasons are not logged as crashes (they are how erpc returns
values).

Timeouts. When ``erpc:call`` times out it drops its monitor (DEMONITOR_P); ERTS would let the process
run on. Nobody can receive its result any more, so philipjose kills it: the Python work is cancelled
(``trio.Cancelled`` is raised in the exposed function, whose ``finally`` blocks run). The node calls
:func:`handle_demonitor` for every DEMONITOR_P; only monitors of running ``execute_call`` processes
are acted upon. Likewise, when the connection to the caller's node goes down, the calls it made are
killed: the service's watcher process (:func:`watcher`) watches every node it runs calls for with
``monitor_node``, and kills them on ``nodedown`` (the request id, a reference of the caller's node,
says which node made each call).

``erpc:execute_cast/3`` (``erpc:cast``) runs the function and discards the result; a Python exception
is logged as a crash. A SPAWN_REQUEST for an exposed ``M:F/Arity`` itself (Elixir's
``Node.spawn(py, M, F, A)``, Erlang's ``spawn(Py, M, F, A)``) runs it as the process; for anything
not exposed the process exits at once with ``{undef, [{M, F, A, []}]}``, as in Erlang.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio

from philipjose.actors import Exit, exit, process_flag, receive, self
from philipjose.io import print_to_group_leader
from philipjose.node import control as c
from philipjose.node.ordering import cheap_to_encode
from philipjose.rpc.expose import Exposed, Registry
from philipjose.rpc.reasons import ERROR, badarg_stack, call_result, undef_stack
from philipjose.term import Atom, EncodeError, Pid, encode

if TYPE_CHECKING:
    from philipjose.node import Node
    from philipjose.rpc.service import RpcService

__all__ = [
    "check_encodable",
    "execute_call",
    "execute_cast",
    "exit_quietly",
    "handle_demonitor",
    "handle_spawn_request",
    "invoke",
    "lookup",
    "spawned_body",
    "watcher",
]

log: Final = logging.getLogger("philipjose.rpc")

ERPC: Final = Atom("erpc")
EXECUTE_CALL: Final = Atom("execute_call")
EXECUTE_CAST: Final = Atom("execute_cast")
UNDEF: Final = Atom("undef")
BADARG: Final = Atom("badarg")
KILL: Final = Atom("kill")
_NODEDOWN: Final = Atom("nodedown")
_LINK: Final = Atom("link")
_MONITOR: Final = Atom("monitor")
_FLAG_LINK: Final = 1
_FLAG_MONITOR: Final = 2


async def invoke(entry: Exposed, args: list[Any]) -> Any:
    """Call the exposed function with ``args``; await its result if it is awaitable.

    It runs inside :func:`philipjose.io.print_to_group_leader`: its ``print()`` goes to the
    process's group leader, which for a call from another node is the caller's (as an Erlang rpc
    server runs the function with the caller's group leader). What it printed is written out
    before the call returns (see ``Redirection.drain``).
    """
    with print_to_group_leader() as redirection:
        try:
            result = entry.fn(*args)
            if inspect.isawaitable(result):
                result = await result
        finally:
            await redirection.drain()
    return result


async def exit_quietly(reason: Any) -> None:
    """End the current process with ``reason`` without the runtime logging it as a crash."""
    process_flag("trap_exit", False)
    exit(self(), reason)
    await trio.lowlevel.checkpoint()  # the exit signal has cancelled this process: never returns
    raise Exit(reason)  # pragma: no cover - only if the signal were somehow not delivered


async def check_encodable(value: Any) -> None:
    """Raise ``EncodeError`` (or ``ValueError``) if ``value`` has no external form. A large value is
    tried in a worker thread, as the node encodes it, not on the event loop."""
    if cheap_to_encode(value):
        encode(value)
    else:
        await trio.to_thread.run_sync(encode, value)


async def _encodable(reason: tuple[Any, ...], ref: Any) -> tuple[Any, ...]:
    """``reason`` if it has an external form, else the error an unencodable value becomes."""
    try:
        await check_encodable(reason)
    except (EncodeError, ValueError) as exc:
        return call_result(ref, exc)
    return reason


def _describe(module: Any, function: Any, args: Any) -> str:
    arity = len(args) if type(args) is list else "?"
    m = module if type(module) is Atom else repr(module)
    f = function if type(function) is Atom else repr(function)
    return f"{m:.100}:{f:.100}/{arity}"


def _args_ok(module: Any, function: Any, args: Any) -> bool:
    return type(module) is Atom and type(function) is Atom and type(args) is list


def lookup(
    registry: Registry, module: Any, function: Any, args: Any, peer: Any
) -> tuple[Exposed | None, str]:
    """Look ``module:function/len(args)`` up in ``registry``; return the entry (None: undef, logged
    as a refused call from ``peer``) and a description for messages."""
    what = _describe(module, function, args)
    entry = registry.lookup(module, function, len(args)) if _args_ok(module, function, args) else None
    if entry is None and _args_ok(module, function, args):
        log.warning("refused a call from %s to %s: not exposed (undef)", peer, what)
    return entry, what


async def execute_call(
    registry: Registry,
    calls: dict[Any, Pid],
    ref: Any,
    module: Any,
    function: Any,
    args: Any,
    peer: Any,
    monitor: Any,
) -> None:
    """The body of an ``erpc:execute_call(Ref, M, F, A)`` process (see the module docstring)."""
    try:
        if not _args_ok(module, function, args):
            log.warning(
                "refused a call from %s with bad arguments: %s", peer, _describe(module, function, args)
            )
            reason: tuple[Any, ...] = (ref, ERROR, BADARG, badarg_stack(module, function, args))
        else:
            entry, _ = lookup(registry, module, function, args, peer)
            if entry is None:
                reason = (ref, ERROR, UNDEF, undef_stack(module, function, args))
            else:
                try:
                    value = await invoke(entry, args)
                except Exception as exc:
                    reason = call_result(ref, exc)
                else:
                    reason = call_result(ref, None, value)
                reason = await _encodable(reason, ref)
    finally:
        if monitor is not None:
            calls.pop(monitor, None)
    await exit_quietly(reason)


async def execute_cast(registry: Registry, module: Any, function: Any, args: Any, peer: Any) -> None:
    """The body of an ``erpc:execute_cast(M, F, A)`` process: run, discard the result."""
    if not _args_ok(module, function, args):
        log.warning("refused a cast from %s with bad arguments: %s", peer, _describe(module, function, args))
        await exit_quietly((BADARG, badarg_stack(module, function, args)))
        return
    entry, _ = lookup(registry, module, function, args, peer)
    if entry is None:
        await exit_quietly((UNDEF, undef_stack(module, function, args)))
        return
    await invoke(entry, args)


async def spawned_body(entry: Exposed | None, module: Atom, function: Atom, args: list[Any]) -> None:
    """The body of a process spawned as an exposed ``M:F/Arity`` (its result is discarded)."""
    if entry is None:
        await exit_quietly((UNDEF, undef_stack(module, function, args)))
        return
    await invoke(entry, args)


def body_for(service: RpcService, req: c.SpawnRequest, peer: Atom) -> Callable[[], Awaitable[None]]:
    """The process function that serves ``req`` (pure apart from logging a refused call)."""
    module, function, args = req.module, req.function, req.args
    if module == ERPC and function == EXECUTE_CALL and len(args) == 4:
        ref, m, f, a = args
        monitor = req.req_id if _MONITOR in req.options else None
        return partial(execute_call, service.registry, service.calls, ref, m, f, a, peer, monitor)
    if module == ERPC and function == EXECUTE_CAST and len(args) == 3:
        m, f, a = args
        return partial(execute_cast, service.registry, m, f, a, peer)
    entry, _ = lookup(service.registry, module, function, args, peer)
    return partial(spawned_body, entry, module, function, args)


def handle_spawn_request(service: RpcService, node: Node, peer: Atom, req: c.SpawnRequest) -> None:
    """Serve one SPAWN_REQUEST from ``peer`` (called by the node's reader; never blocks)."""
    rt = node.rt
    if len(req.args) != req.arity or not isinstance(req.options, list):
        log.warning(
            "refused a malformed spawn request from %s for %s",
            peer,
            _describe(req.module, req.function, req.args),
        )
        node.reply_spawn(peer, c.SpawnReply(req.req_id, req.sender, 0, BADARG))
        return
    link = _LINK in req.options
    monitor = _MONITOR in req.options
    # the caller's group leader, as ERTS gives it: io from the function goes to the caller's side
    leader = req.group_leader if type(req.group_leader) is Pid else None
    pid, _ = rt.spawn(body_for(service, req, peer), (), group_leader=leader)
    flags = 0
    if link:
        rt.link_remote(pid, req.sender)
        flags |= _FLAG_LINK
    if monitor:
        rt.monitor_remote(req.sender, pid, req.req_id)
        flags |= _FLAG_MONITOR
        if req.module == ERPC and req.function == EXECUTE_CALL:
            service.calls[req.req_id] = pid
            if peer not in service.watched and service.watcher is not None:
                service.watched.add(peer)
                node.monitor_node(service.watcher, peer)
    node.reply_spawn(peer, c.SpawnReply(req.req_id, req.sender, flags, pid))


async def watcher(service: RpcService) -> None:
    """The process body of the service's watcher: on ``(nodedown, Node)``, kill the calls ``Node`` made."""
    rt = service.node.rt
    me = self()
    while True:
        msg = await receive()
        if type(msg) is not tuple or len(msg) != 2 or msg[0] != _NODEDOWN:
            continue
        node = msg[1]
        service.watched.discard(node)
        for ref, pid in list(service.calls.items()):
            if ref.node == node:
                del service.calls[ref]
                log.info("connection to %s lost; cancelling its call %r", node, pid)
                rt.exit(me, pid, KILL)


def handle_demonitor(service: RpcService, node: Node, peer: Atom, event: c.DemonitorP) -> None:
    """A remote process dropped a monitor: if it watched a running ``execute_call``, kill that
    process (its caller gave up, so nobody can receive the result)."""
    pid = service.calls.get(event.ref)
    if pid is not None and isinstance(event.target, Pid) and event.target == pid:
        del service.calls[event.ref]
        log.info("%s gave up a call; cancelling %r", peer, pid)
        node.rt.exit(event.watcher, pid, KILL)
