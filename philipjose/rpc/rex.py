"""The legacy ``rex`` server: ``rpc`` requests of callers that do not use ``spawn_request``.

Before OTP 23, ``rpc:call(Node, M, F, A)`` was ``gen_server:call({rex, Node}, {call, M, F, A, GL})``,
and hidden C nodes send ``{From, {call, M, F, A, GL}}`` to ``rex`` and wait for ``{rex, Reply}``.
This process, registered as ``rex`` on every philipjose node that serves rpc, answers:

- ``'$gen_call'`` with ``{call, M, F, A, GL}`` or ``{block_call, M, F, A, GL}``: the reply;
- ``{From, {call, M, F, A, GL}}``: ``From ! {rex, Reply}``;
- ``'$gen_cast'`` with ``{cast, M, F, A, GL}``: runs it, no reply.

Each request runs in its own process, so a slow function does not hold up the server. ``Reply`` is
what OTP's rex gives (``catch apply(M, F, A)``): the value, or the thrown value, or
``{badrpc, {'EXIT', Reason}}`` for an exit and ``{badrpc, {'EXIT', {Reason, Stack}}}`` for an error
(``undef`` for anything not exposed). Other messages are ignored, as OTP's rex ignores them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from philipjose.actors import current_runtime, receive, reply, send
from philipjose.rpc.reasons import ERROR, THROW, badarg_stack, exception_term, undef_stack
from philipjose.rpc.serve import check_encodable, invoke, lookup
from philipjose.term import Atom, EncodeError, Pid

if TYPE_CHECKING:
    from philipjose.rpc.service import RpcService

__all__ = ["NAME", "rex", "rex_result"]

log: Final = logging.getLogger("philipjose.rpc")

NAME: Final = Atom("rex")
_GEN_CALL: Final = Atom("$gen_call")
_GEN_CAST: Final = Atom("$gen_cast")
_CALL: Final = Atom("call")
_BLOCK_CALL: Final = Atom("block_call")
_CAST: Final = Atom("cast")
_BADRPC: Final = Atom("badrpc")
_EXIT: Final = Atom("EXIT")
_UNDEF: Final = Atom("undef")
_BADARG: Final = Atom("badarg")


def _request(term: Any, kinds: tuple[Atom, ...]) -> tuple[Any, Any, Any] | None:
    """``(M, F, A)`` of ``{Kind, M, F, A, GL}`` when Kind is one of ``kinds``, else None."""
    if type(term) is tuple and len(term) == 5 and term[0] in kinds:
        return term[1], term[2], term[3]
    return None


def _serve(gl_term: Any, fn: Any, *args: Any) -> None:
    # as OTP's rex: the worker runs with the group leader the caller sent ({call, M, F, A, GL})
    leader = gl_term[4] if type(gl_term[4]) is Pid else None
    current_runtime().spawn(fn, args, group_leader=leader)


def _badrpc(reason: Any) -> tuple[Atom, tuple[Atom, Any]]:
    return (_BADRPC, (_EXIT, reason))


async def rex_result(service: RpcService, module: Any, function: Any, args: Any, peer: Any) -> Any:
    """What OTP's rex replies for ``apply(module, function, args)`` (see the module docstring)."""
    if type(module) is not Atom or type(function) is not Atom or type(args) is not list:
        log.warning("refused an rpc from %s with bad arguments: %.200r", peer, (module, function, args))
        return _badrpc((_BADARG, badarg_stack(module, function, args)))
    entry, _ = lookup(service.registry, module, function, args, peer)
    if entry is None:
        return _badrpc((_UNDEF, undef_stack(module, function, args)))
    try:
        value = await invoke(entry, args)
    except Exception as exc:
        kind, reason, stack = exception_term(exc)
        if kind == THROW:
            value = reason
        else:
            log.info("rpc %s:%s/%d from %s raised %s: %r", module, function, len(args), peer, kind, exc)
            return _badrpc((reason, stack) if kind == ERROR else reason)
    try:
        await check_encodable(value)
    except (EncodeError, ValueError) as exc:
        kind, reason, stack = exception_term(exc)
        return _badrpc((reason, stack))
    return value


async def _answer_call(service: RpcService, caller: Any, mfa: tuple[Any, Any, Any]) -> None:
    reply(caller, await rex_result(service, *mfa, peer=_node_of(caller[0])))


async def _answer_old_call(service: RpcService, sender: Pid, mfa: tuple[Any, Any, Any]) -> None:
    send(sender, (NAME, await rex_result(service, *mfa, peer=sender.node)))


async def _run_cast(service: RpcService, mfa: tuple[Any, Any, Any]) -> None:
    await rex_result(service, *mfa, peer="a cast")


def _node_of(pid: Any) -> Any:
    return pid.node if isinstance(pid, Pid) else "?"


async def rex(service: RpcService) -> None:
    """The process body of ``rex``: answer requests forever (see the module docstring)."""
    while True:
        msg = await receive()
        if type(msg) is not tuple:
            continue
        if len(msg) == 3 and msg[0] == _GEN_CALL and type(msg[1]) is tuple and len(msg[1]) == 2:
            mfa = _request(msg[2], (_CALL, _BLOCK_CALL))
            if mfa is not None:
                _serve(msg[2], _answer_call, service, msg[1], mfa)
        elif len(msg) == 2 and msg[0] == _GEN_CAST:
            mfa = _request(msg[1], (_CAST,))
            if mfa is not None:
                _serve(msg[1], _run_cast, service, mfa)
        elif len(msg) == 2 and type(msg[0]) is Pid:
            mfa = _request(msg[1], (_CALL,))
            if mfa is not None:
                _serve(msg[1], _answer_old_call, service, msg[0], mfa)
