"""OTP's ``sys`` system messages: what a GenServer or a supervisor answers, and the calls that ask.

Erlang's ``sys:get_state/1``, ``sys:get_status/1``, ``sys:suspend/1`` and friends send a process
``{system, From, Request}`` (``From`` a gen_server-style ``(pid, tag)``) and wait for the reply, as
``gen:call(Name, system, Request)`` does. A :class:`~philipjose.actors.genserver.GenServer` and a
supervisor answer them as gen_server does (the facts are OTP 25's ``sys.erl`` and ``gen_server.erl``):

============================ ======================================================================
request                      reply
============================ ======================================================================
``get_state``                ``{ok, State}`` (see below); to a caller on an OTP 25 node, ``State``
``{replace_state, Fun}``     ``{ok, NewState}``, ``NewState = Fun(State)`` (OTP 25 callers: the bare
                             ``NewState``); ``{error, {callback_failed, ...}}`` when
                             ``Fun`` raises, is not a Python callable (an Erlang fun cannot run on a
                             Python node: ``{error, {callback_failed, {gen_server,
                             system_replace_state}, {error, {badfun, Fun}}}}``), or returns a state
                             the server refuses; the state is then unchanged
``get_status``               ``{status, Pid, {module, gen_server}, [PDict, running | suspended,
                             Parent, Debug, Misc]}``, ``Misc`` as gen_server's ``format_status``
                             gives: ``[{header, "Status for generic server Name"}, {data,
                             [{"Status", S}, {"Parent", P}, {"Logged events", []}]}, {data,
                             [{"State", State}]}]`` (the strings are Erlang strings, lists of
                             character codes)
``suspend`` / ``resume``     ``ok``; a suspended server handles only system messages (and its
                             parent's exit) until resumed; calls to it wait
``{change_code, M, V, X}``   ``ok`` when suspended (a no-op: Python code is not upgraded this way);
                             ``{error, {unknown_system_msg, Req}}`` when running, as OTP answers
``{terminate, Reason}``      ``ok``, then the server terminates with ``Reason``
``{debug, D}``               ``no_debug``, ``{log, false}``, ``{trace, false}``, ``{statistics,
                             false}``, ``{remove, _}``: ``ok``; ``{log, get}``: ``{ok, []}``;
                             ``{statistics, get}``: ``{ok, no_statistics}``; anything else (turning
                             tracing, logging or statistics on): ``unknown_debug``, OTP's answer to
                             a debug option it does not know
anything else                ``{error, {unknown_system_msg, Request}}``
============================ ======================================================================

The state of a GenServer is what its ``system_get_state()`` returns: by default a ``dict`` of the
instance's attributes (a copy), which an Erlang node sees as a map with binary keys
(``#{<<"n">> => 5}``). ``system_replace_state(fun)`` defaults to ``fun(state)`` and, when that is a
``dict`` with ``str`` keys, makes those the instance's attributes. Override both to expose another
state (say, ``self.n`` alone). When the reply to a caller on another node cannot be encoded (the state
holds a Python object with no Erlang form), ``get_state`` and ``replace_state`` answer
``{error, {callback_failed, {gen_server, system_get_state}, {error, {unencodable, Repr}}}}`` and
``get_status`` shows the state as its ``repr`` (a binary).

OTP 26 changed the reply to ``get_state`` and ``replace_state`` from ``State`` to ``{ok, State}`` and
OTP 25's ``sys`` cannot read the new one (nor OTP 27's the old): a server asks the caller's node for its
release (``erlang:system_info(otp_release)`` through its ``rex``, once per node incarnation) and answers
in that release's shape; philipjose callers get ``{ok, State}``.

From Python, ``pj.sys.get_state(dest)``, :func:`get_status`, :func:`suspend`, :func:`resume`,
:func:`replace_state` (a Python callable: it runs in the server, so only on a server of the same
node; a callable cannot be sent to another node), :func:`change_code` and :func:`terminate` work on
Python and Erlang servers alike (``dest``: pid, registered name or ``(name, node)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from philipjose.actors._system import SYSTEM
from philipjose.actors.errors import ActorError, as_reason
from philipjose.actors.genserver import gen_call, otp_release
from philipjose.term import Atom, Pid

__all__ = [
    "SysError",
    "change_code",
    "get_state",
    "get_status",
    "replace_state",
    "resume",
    "suspend",
    "terminate",
]

_ERROR: Final = Atom("error")
_OK: Final = Atom("ok")
_SYS: Final = Atom("sys")
_INFINITY: Final = Atom("infinity")


class SysError(ActorError):
    """A server answered a ``sys`` request with ``{error, Reason}`` (``reason``), as when the
    ``replace_state`` function raised; Erlang's ``sys`` raises ``error(Reason)`` there."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"sys request failed: {self.reason!r}"


async def _call(dest: Any, request: Any, timeout: float | None, function: str, args: list[Any]) -> Any:
    """``gen:call(Dest, system, Request, Timeout)``; a dead server raises
    ``pj.Exit((Reason, (sys, Function, [Dest, *Args, Timeout])))`` as OTP's ``sys`` exits."""
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"sys timeout must be >= 0 or None, not {timeout!r}")
    where = (_SYS, Atom(function), [dest, *args, _INFINITY if timeout is None else timeout])
    return await gen_call(dest, SYSTEM, request, timeout, where, f"sys:{function} on {dest!r}")


async def _state(dest: Any, result: Any) -> Any:
    """The state in a ``get_state``/``replace_state`` reply: ``{ok, State}`` from an OTP 26+ server or
    a philipjose one, the bare ``State`` from OTP 25 and older (``dest``'s node tells which)."""
    node = dest.node if type(dest) is Pid else dest[1] if type(dest) is tuple and len(dest) == 2 else None
    release = None if node is None else await otp_release(node, dest.creation if type(dest) is Pid else None)
    modern = release is None or release >= 26
    if modern and type(result) is tuple and len(result) == 2 and result[0] == _OK:
        return result[1]
    return _or_raise(result)


def _or_raise(result: Any) -> Any:
    if type(result) is tuple and len(result) == 2 and result[0] == _ERROR:
        raise SysError(result[1])
    return result


async def get_state(dest: Any, timeout: float | None = 5.0) -> Any:
    """The state of the server ``dest`` (``sys:get_state/2``). Raises :class:`SysError` when the
    server answers ``{error, Reason}``, ``pj.Exit`` when it is not there, ``TimeoutError``."""
    return await _state(dest, await _call(dest, Atom("get_state"), timeout, "get_state", []))


async def replace_state(dest: Any, fun: Callable[[Any], Any], timeout: float | None = 5.0) -> Any:
    """Replace the state of the server ``dest`` with ``fun(state)`` and return the new state
    (``sys:replace_state/3``). ``fun`` runs in the server, so ``dest`` must be a philipjose server of
    this node (a callable cannot be sent to another node). Raises :class:`SysError` when ``fun``
    raised or the server refused its result (the state is then unchanged)."""
    if not callable(fun):
        raise TypeError(f"replace_state expects a callable, not {fun!r}")
    answer = await _call(dest, (Atom("replace_state"), fun), timeout, "replace_state", [fun])
    return await _state(dest, answer)


async def get_status(dest: Any, timeout: float | None = 5.0) -> Any:
    """``sys:get_status/2``: ``(Atom('status'), pid, (Atom('module'), mod), [pdict, sys_state,
    parent, debug, misc])`` exactly as the server sends it (see the module docstring)."""
    return await _call(dest, Atom("get_status"), timeout, "get_status", [])


async def suspend(dest: Any, timeout: float | None = 5.0) -> None:
    """Suspend the server ``dest`` (``sys:suspend/2``): it handles only system messages until
    :func:`resume`."""
    _or_raise(await _call(dest, Atom("suspend"), timeout, "suspend", []))


async def resume(dest: Any, timeout: float | None = 5.0) -> None:
    """Resume a server suspended with :func:`suspend` (``sys:resume/2``)."""
    _or_raise(await _call(dest, Atom("resume"), timeout, "resume", []))


async def change_code(dest: Any, module: Any, old_vsn: Any, extra: Any, timeout: float | None = 5.0) -> None:
    """``sys:change_code/5`` on a suspended server (a plain ``str`` module is an atom). Raises
    :class:`SysError` with the server's reason (a running one answers ``{unknown_system_msg, ...}``,
    as OTP's do)."""
    module = as_reason(module)
    request = (Atom("change_code"), module, old_vsn, extra)
    _or_raise(await _call(dest, request, timeout, "change_code", [module, old_vsn, extra]))


async def terminate(dest: Any, reason: Any = "normal", timeout: float | None = 5.0) -> None:
    """Make the server ``dest`` terminate with ``reason`` (``sys:terminate/3``; a plain ``str`` is an
    atom). Returns once the server has acknowledged, before its ``terminate`` callback has run."""
    reason = as_reason(reason)
    _or_raise(await _call(dest, (Atom("terminate"), reason), timeout, "terminate", [reason]))
