"""Spawning on other nodes: outgoing SPAWN_REQUESTs, their replies, and ``pj.node.spawn``.

Theory of operation
-------------------
A request is recorded in the node's :class:`~.service.RpcService` ``pending`` table under its
request id before the SPAWN_REQUEST is sent. The node calls :func:`handle_spawn_reply` from the
connection's reader when the SPAWN_REPLY arrives; synchronously (so before any later signal from the
new process is handled) it sets up the local side of the link and of the monitor the remote node
reports in the reply's flags, then delivers ``(spawn_reply, ReqId, ok, Pid)`` or
``(spawn_reply, ReqId, error, Reason)`` to the caller as Erlang does (for ``reply="error_only"`` only
the error, for ``reply="no"`` nothing). The monitor's reference is the request id, as in Erlang.

A request abandoned by its caller (a timeout, a cancellation, the caller's death) is marked; when its
reply comes, the monitor is dropped and the new process is killed. The caller also watches the node
(``monitor_node``) while it waits, so a connection that never comes up or dies before the reply gives
``noconnection`` instead of a wait forever.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from philipjose.actors import current_runtime, receive, spawn_link, spawn_monitor
from philipjose.actors import link as link_to
from philipjose.actors import self as self_pid
from philipjose.actors import spawn as local_spawn
from philipjose.actors.runtime import current_process
from philipjose.node import control as c
from philipjose.rpc.errors import BadRpc
from philipjose.rpc.serve import lookup, spawned_body
from philipjose.rpc.service import RpcService, current_service, registry_here
from philipjose.term import Atom, Pid, Reference

if TYPE_CHECKING:
    from philipjose.node import Node

__all__ = [
    "Request",
    "abandon",
    "finish",
    "flush_nodedown",
    "handle_spawn_reply",
    "spawn",
    "start_request",
    "sweep",
]

SPAWN_REPLY: Final = Atom("spawn_reply")
NODEDOWN: Final = Atom("nodedown")
NOCONNECTION: Final = Atom("noconnection")
_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_KILL: Final = Atom("kill")
_LINK: Final = Atom("link")
_MONITOR: Final = Atom("monitor")
_FLAG_LINK: Final = 1
_FLAG_MONITOR: Final = 2


@dataclass(slots=True)
class Request:
    """One outgoing spawn request. ``reply``: ``"yes"``, ``"error_only"`` or ``"no"`` (which replies
    reach the caller as messages); ``pid``: set when the reply brought one."""

    caller: Pid
    node: Atom
    reply: str
    abandoned: bool = False
    answered: bool = False
    pid: Pid | None = None


def start_request(
    service: RpcService,
    node: Atom,
    module: Atom,
    function: Atom,
    args: list[Any],
    *,
    options: list[Any],
    reply: str,
) -> tuple[Reference, Request]:
    """Send a SPAWN_REQUEST from the current process; the caller then waits for the outcome.

    The current process is made to watch ``node`` (``monitor_node``): the caller must call
    :func:`finish` when done waiting.
    """
    dist = service.node
    me = self_pid()
    req_id = dist.rt.make_ref()
    request = Request(me, node, reply)
    service.pending[req_id] = request
    dist.monitor_node(me, node)
    leader = dist.rt.group_leader_of(current_process())  # the new process's group leader: ours
    event = c.SpawnRequest(req_id, me, leader, module, function, len(args), options, args)
    try:
        dist.send_control(node, event)
    except BaseException:
        finish(service, req_id, request)
        raise
    return req_id, request


def finish(service: RpcService, req_id: Reference, request: Request) -> bool:
    """The caller stopped waiting: stop watching the node; forget an unanswered request only if it
    was not abandoned (an abandoned one waits for its reply, to kill the process).

    Returns True when the connection to the node is down: a ``(nodedown, Node)`` message may then be
    in the caller's mailbox (see :func:`flush_nodedown`).
    """
    dist = service.node
    dist.demonitor_node(request.caller, request.node)
    if not request.abandoned:
        service.pending.pop(req_id, None)
    peer = dist.peers.get(request.node)
    return peer is None or not peer.up


async def flush_nodedown(node: Atom) -> None:
    """Drop a ``(nodedown, node)`` that the watch of a finished request left in the mailbox."""
    with contextlib.suppress(TimeoutError):
        await receive(match=lambda m: m == (NODEDOWN, node), timeout=0)


def abandon(service: RpcService, req_id: Reference, request: Request) -> Pid | None:
    """Give up the request: kill the remote process now (returned) or when its reply arrives (None)."""
    rt = service.node.rt
    if request.answered:
        pid = request.pid
        if pid is not None:
            proc = rt._find(request.caller)
            if proc is not None:
                rt.demonitor(proc, req_id, flush=True)
            rt.exit(request.caller, pid, _KILL)
        return pid
    request.abandoned = True
    sweep(service)
    return None


def sweep(service: RpcService) -> None:
    """Forget abandoned requests and casts to nodes we are no longer connected to: no reply can
    come (their connection was lost before it was answered)."""
    peers = service.node.peers
    stale = [
        rid
        for rid, req in service.pending.items()
        if (req.abandoned or req.reply == "no") and req.node not in peers
    ]
    for rid in stale:
        del service.pending[rid]


def handle_spawn_reply(service: RpcService, node: Node, peer: Atom, event: c.SpawnReply) -> bool:
    """Handle a SPAWN_REPLY for one of our requests (see the module doc). False: not ours."""
    request = service.pending.pop(event.req_id, None)
    if request is None:
        return False
    rt = node.rt
    request.answered = True
    result = event.result
    if type(result) is not Pid:
        if request.reply != "no" and not request.abandoned:
            rt.deliver(request.caller, (SPAWN_REPLY, event.req_id, _ERROR, result))
        return True
    request.pid = result
    if request.abandoned or not rt.lookup(request.caller):
        if event.flags & _FLAG_MONITOR:
            node.send_control(peer, c.DemonitorP(request.caller, result, event.req_id))
        rt.exit(request.caller, result, _KILL)
        return True
    if event.flags & _FLAG_LINK:
        rt.link_remote(request.caller, result)
    if event.flags & _FLAG_MONITOR:
        rt.adopt_monitor(request.caller, result, event.req_id)
    if request.reply == "yes":
        rt.deliver(request.caller, (SPAWN_REPLY, event.req_id, _OK, result))
    return True


def _answer(req_id: Reference, node: Atom) -> Any:
    def test(m: Any) -> bool:
        return type(m) is tuple and (
            (len(m) == 4 and m[1] == req_id and m[0] == SPAWN_REPLY)
            or (len(m) == 2 and m == (NODEDOWN, node))
        )

    return test


async def spawn(
    node: str,
    module: str,
    function: str,
    args: list[Any] | tuple[Any, ...],
    *,
    link: bool = False,
    monitor: bool = False,
) -> Any:
    """Spawn ``module:function(*args)`` on ``node`` (Erlang's ``spawn/4``, ``spawn_link/4``,
    ``spawn_monitor/4``); returns the new pid, or ``(pid, ref)`` with ``monitor=True``.

    Call it from a process. The link or monitor is set up atomically with the spawn, as in Erlang.
    Raises :class:`BadRpc` with the remote node's error (``notsup``, ``badopt``, ``system_limit``) or
    ``noconnection`` when the node cannot be reached. On this node itself, only exposed functions
    can be spawned (anything else exits at once with ``undef``, as on a remote philipjose node).
    """
    target, mod, fun = Atom(node), Atom(module), Atom(function)
    arguments = list(args)
    rt = current_runtime()
    if rt.is_local_node(target):
        return _spawn_here(mod, fun, arguments, link=link, monitor=monitor)
    service = current_service()
    options = ([_LINK] if link else []) + ([_MONITOR] if monitor else [])
    req_id, request = start_request(service, target, mod, fun, arguments, options=options, reply="yes")
    lost = False
    try:
        msg = await receive(match=_answer(req_id, target))
    except BaseException:
        abandon(service, req_id, request)
        raise
    finally:
        lost = finish(service, req_id, request)
    if lost and msg[0] != NODEDOWN:
        await flush_nodedown(target)
    if msg[0] == NODEDOWN:
        raise BadRpc(NOCONNECTION)
    if msg[2] != _OK:
        raise BadRpc(msg[3])
    pid = msg[3]
    return (pid, req_id) if monitor else pid


def _spawn_here(module: Atom, function: Atom, args: list[Any], *, link: bool, monitor: bool) -> Any:
    entry, _ = lookup(registry_here(), module, function, args, current_runtime().node)
    body = partial(spawned_body, entry, module, function, args)
    if monitor:
        pid, ref = spawn_monitor(body)
        if link:
            link_to(pid)
        return pid, ref
    return spawn_link(body) if link else local_spawn(body)
