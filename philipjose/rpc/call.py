"""Calling out: ``await rpc.call(node, module, function, args, timeout=...)`` and ``rpc.cast``.

``call`` does what OTP 25's ``erpc:call`` does: it sends a spawn request for
``erpc:execute_call(Res, M, F, A)`` with a monitor, and reads the result from the ``DOWN`` reason.
It works against any Erlang or Elixir node (any function) and against philipjose nodes (exposed
functions). A call to this node itself runs the exposed function in a new local process the same way.

Outcomes:

- the function returned: its value;
- it raised: :class:`~.errors.RemoteError` with the Erlang class (``error``/``exit``/``throw``), the
  reason and the remote stacktrace (``signal=True`` if the process was killed by an exit signal);
- the operation failed: :class:`~.errors.BadRpc` (``noconnection``, ``notsup``, ``badarg``, ...);
- ``timeout`` seconds passed: :class:`~.errors.RpcTimeout` (a ``TimeoutError``). Unlike erpc, which
  only stops waiting, philipjose also kills the remote process (it drops its monitor first, so no
  late ``DOWN`` arrives); ``RpcTimeout.pid`` is that process. If the spawn reply has not come yet, the
  process is killed when it comes.

Cancelling the calling task (or killing the calling process) also kills the remote process.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from philipjose.actors import current_runtime, receive, spawn_monitor
from philipjose.actors import demonitor as _demonitor
from philipjose.actors import exit as _exit
from philipjose.actors import self as self_pid
from philipjose.actors.runtime import current_process
from philipjose.node import control as c
from philipjose.rpc.errors import BadRpc, RpcTimeout
from philipjose.rpc.reasons import outcome
from philipjose.rpc.serve import ERPC, EXECUTE_CALL, EXECUTE_CAST, execute_call, execute_cast
from philipjose.rpc.service import current_service, registry_here
from philipjose.rpc.spawn import (
    NOCONNECTION,
    NODEDOWN,
    SPAWN_REPLY,
    Request,
    abandon,
    finish,
    flush_nodedown,
    start_request,
    sweep,
)
from philipjose.term import Atom, Reference

__all__ = ["call", "cast"]

_DOWN: Final = Atom("DOWN")
_MONITOR: Final = Atom("monitor")
_KILL: Final = Atom("kill")
_OPTIONS: Final = [_MONITOR]
_SWEEP_AT: Final = 1024  # pending requests before unanswerable ones are looked for


def _check(module: Any, function: Any, args: Any, timeout: float | None) -> tuple[Atom, Atom, list[Any]]:
    if not isinstance(module, str) or not isinstance(function, str):
        raise TypeError(f"module and function must be str or Atom, not {module!r} and {function!r}")
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"args must be a list or tuple, not {type(args).__name__}")
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"timeout must be >= 0 or None, not {timeout!r}")
    return Atom(module), Atom(function), list(args)


def _answer(req_id: Reference, node: Atom) -> Any:
    def test(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        n = len(m)
        if n == 5:
            return bool(m[1] == req_id and m[0] == _DOWN)
        if n == 4:
            return bool(m[1] == req_id and m[0] == SPAWN_REPLY)
        return bool(n == 2 and m[0] == NODEDOWN and m[1] == node)

    return test


async def call(
    node: str, module: str, function: str, args: list[Any] | tuple[Any, ...], *, timeout: float | None = None
) -> Any:
    """Call ``module:function(*args)`` on ``node`` and return its value (see the module docstring).

    ``timeout`` in seconds (``None``: wait forever, as erpc's ``infinity``). Call it from a process.
    Raises ``TypeError``/``ValueError`` for bad arguments (the caller's fault).
    """
    mod, fun, arguments = _check(module, function, args, timeout)
    target = Atom(node)
    rt = current_runtime()
    res = rt.make_ref()
    if rt.is_local_node(target):
        return await _call_here(res, mod, fun, arguments, timeout)
    service = current_service()
    req_id, request = start_request(
        service, target, ERPC, EXECUTE_CALL, [res, mod, fun, arguments], options=_OPTIONS, reply="error_only"
    )
    try:
        msg = await receive(match=_answer(req_id, target), timeout=timeout)
    except TimeoutError:
        pid = abandon(service, req_id, request)
        raise RpcTimeout(pid) from None
    except BaseException:
        abandon(service, req_id, request)
        raise
    finally:
        lost = finish(service, req_id, request)
    if lost and msg[0] != NODEDOWN:
        await flush_nodedown(target)
    return _result(res, msg)


def _result(res: Reference, msg: tuple[Any, ...]) -> Any:
    if msg[0] == _DOWN:
        ok, value = outcome(res, msg[4])
        if ok:
            return value
        raise value
    if msg[0] == SPAWN_REPLY:
        raise BadRpc(msg[3])
    raise BadRpc(NOCONNECTION)


async def _call_here(
    res: Reference, module: Atom, function: Atom, args: list[Any], timeout: float | None
) -> Any:
    """A call to this node: the exposed function in a new local process, like a remote one."""
    body = partial(
        execute_call, registry_here(), {}, res, module, function, args, current_runtime().node, None
    )
    pid, ref = spawn_monitor(body)
    try:
        msg = await receive(
            match=lambda m: type(m) is tuple and len(m) == 5 and m[1] == ref and m[0] == _DOWN,
            timeout=timeout,
        )
    except BaseException as exc:
        _demonitor(ref, flush=True)
        _exit(pid, _KILL)
        if isinstance(exc, TimeoutError):
            raise RpcTimeout(pid) from None
        raise
    ok, value = outcome(res, msg[4])
    if ok:
        return value
    raise value


def cast(node: str, module: str, function: str, args: list[Any] | tuple[Any, ...]) -> None:
    """Run ``module:function(*args)`` on ``node`` and forget it (``erpc:cast``); never blocks.

    Errors are not reported (the remote node may log them). Call it from a process.
    """
    mod, fun, arguments = _check(module, function, args, None)
    target = Atom(node)
    rt = current_runtime()
    if rt.is_local_node(target):
        rt.spawn(partial(execute_cast, registry_here(), mod, fun, arguments, rt.node), ())
        return
    service = current_service()
    me = self_pid()
    req_id = rt.make_ref()
    service.pending[req_id] = Request(me, target, "no")
    if len(service.pending) > _SWEEP_AT:
        sweep(service)
    leader = rt.group_leader_of(current_process())
    event = c.SpawnRequest(req_id, me, leader, ERPC, EXECUTE_CAST, 3, [], [mod, fun, arguments])
    try:
        service.node.send_control(target, event)
    except BaseException:
        service.pending.pop(req_id, None)
        raise
