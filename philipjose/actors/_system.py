"""OTP's ``sys`` system messages, server side (internal): the replies a GenServer or a supervisor
gives to ``{system, From, Request}``. The table of requests and replies, and the calls that ask, are
in :mod:`philipjose.actors.sys`; the facts come from OTP 25's ``sys.erl`` and ``gen_server.erl``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from philipjose.actors.errors import Exit
from philipjose.actors.reasons import crash_reason
from philipjose.term import Atom, ExportFun, Fun, Pid

__all__ = ["SYSTEM", "SystemState", "charlist", "handle_system", "is_system", "pid_text", "unencodable"]

SYSTEM: Final = Atom("system")
_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_GET_STATE: Final = Atom("get_state")
_REPLACE_STATE: Final = Atom("replace_state")
_GET_STATUS: Final = Atom("get_status")
_SUSPEND: Final = Atom("suspend")
_RESUME: Final = Atom("resume")
_CHANGE_CODE: Final = Atom("change_code")
_TERMINATE: Final = Atom("terminate")
_DEBUG: Final = Atom("debug")
_RUNNING: Final = Atom("running")
_SUSPENDED: Final = Atom("suspended")
_UNKNOWN_SYSTEM_MSG: Final = Atom("unknown_system_msg")
_UNKNOWN_DEBUG: Final = Atom("unknown_debug")
_CALLBACK_FAILED: Final = Atom("callback_failed")
_STATUS: Final = Atom("status")
_MODULE: Final = Atom("module")
_HEADER: Final = Atom("header")
_DATA: Final = Atom("data")
_FALSE_OK: Final = frozenset({Atom("log"), Atom("trace"), Atom("statistics"), Atom("log_to_file")})


def charlist(text: str) -> list[int]:
    """``text`` as an Erlang string (a list of character codes), as ``format_status`` writes them."""
    return [ord(ch) for ch in text]


def is_system(msg: Any) -> bool:
    """True for ``{system, From, Request}`` with ``From`` a ``(pid, tag)`` pair."""
    return (
        type(msg) is tuple
        and len(msg) == 3
        and msg[0] == SYSTEM
        and type(msg[1]) is tuple
        and len(msg[1]) == 2
        and isinstance(msg[1][0], Pid)
    )


@dataclass(slots=True)
class SystemState:
    """What a server keeps for ``sys``: whether it is suspended and, after ``{terminate, Reason}``,
    the reason it is to end with (``terminating`` True)."""

    suspended: bool = False
    terminating: bool = False
    reason: Any = None


def pid_text(pid: Pid) -> str:
    """``pid_to_list`` as the process's own node prints it: ``<0.Id.Serial>``."""
    return f"<0.{pid.id}.{pid.serial}>"


def _status_misc(label: str, name: Any, pid: Pid, sys_state: Atom, parent: Pid, data: list[Any]) -> list[Any]:
    who = str(name) if name is not None else pid_text(pid)
    header = (_HEADER, charlist(f"Status for {label} {who}"))
    common = (
        _DATA,
        [
            (charlist("Status"), sys_state),
            (charlist("Parent"), parent),
            (charlist("Logged events"), []),
        ],
    )
    return [header, common, *data]


def _debug(what: Any) -> Any:
    if what == Atom("no_debug"):
        return _OK
    if type(what) is tuple and len(what) == 2:
        key, flag = what
        if key in _FALSE_OK and flag is False:
            return _OK
        if key == Atom("log") and flag == Atom("get"):
            return (_OK, [])
        if key == Atom("statistics") and flag == Atom("get"):
            return (_OK, Atom("no_statistics"))
        if key == Atom("remove"):
            return _OK
    return _UNKNOWN_DEBUG


def wants_release(request: Any) -> bool:
    """True for the requests whose reply depends on the caller's OTP release (``get_state`` and
    ``{replace_state, Fun}``: ``{ok, State}`` since OTP 26, the bare ``State`` before)."""
    if request == _GET_STATE:
        return True
    return type(request) is tuple and len(request) == 2 and request[0] == _REPLACE_STATE


def handle_system(
    request: Any,
    state: SystemState,
    *,
    get_state: Callable[[], Any],
    replace_state: Callable[[Callable[[Any], Any]], Any],
    status_data: Callable[[], list[Any]],
    pid: Pid,
    name: Any,
    parent: Pid,
    ancestors: list[Pid],
    module: Atom,
    label: str = "generic server",
    initial_call: tuple[Any, Any, int] | None = None,
    ok_state: bool = True,
) -> Any:
    """The reply to one system ``request``, updating ``state`` (suspended, terminating).

    ``get_state()`` returns the state; ``replace_state(fun)`` replaces it and returns the new state,
    raising to refuse; ``status_data()`` gives the server-specific part of ``get_status``'s misc
    (gen_server's default is ``[{data, [{"State", State}]}]``); ``pid`` and ``name`` (registered
    name or None) are the server's own. With ``ok_state`` (the caller runs OTP 26 or later, or is a
    philipjose process) ``get_state`` and ``replace_state`` answer ``{ok, State}``, as gen_server does
    since OTP 26; without it the bare ``State`` that OTP 25's ``sys`` expects.
    """
    if request == _GET_STATE:
        try:
            return (_OK, get_state()) if ok_state else get_state()
        except Exception as exc:
            return (_ERROR, (_CALLBACK_FAILED, (module, Atom("system_get_state")), _raised(exc)))
    if type(request) is tuple and len(request) == 2 and request[0] == _REPLACE_STATE:
        fun = request[1]
        if isinstance(fun, Fun | ExportFun) or not callable(fun):
            return (
                _ERROR,
                (_CALLBACK_FAILED, (module, Atom("system_replace_state")), (_ERROR, (Atom("badfun"), fun))),
            )
        try:
            new = replace_state(fun)
        except Exception as exc:
            return (_ERROR, (_CALLBACK_FAILED, (module, Atom("system_replace_state")), _raised(exc)))
        return (_OK, new) if ok_state else new
    if request == _GET_STATUS:
        sys_state = _SUSPENDED if state.suspended else _RUNNING
        pdict: list[Any] = []
        if initial_call is not None:
            pdict.append((Atom("$initial_call"), initial_call))
        pdict.append((Atom("$ancestors"), list(ancestors)))
        misc = _status_misc(label, name, pid, sys_state, parent, status_data())
        return (_STATUS, pid, (_MODULE, module), [pdict, sys_state, parent, [], misc])
    if request == _SUSPEND:
        state.suspended = True
        return _OK
    if request == _RESUME:
        state.suspended = False
        return _OK
    if type(request) is tuple and len(request) == 4 and request[0] == _CHANGE_CODE and state.suspended:
        return _OK
    if type(request) is tuple and len(request) == 2 and request[0] == _TERMINATE:
        state.terminating = True
        state.reason = request[1]
        return _OK
    if type(request) is tuple and len(request) == 2 and request[0] == _DEBUG:
        return _debug(request[1])
    return (_ERROR, (_UNKNOWN_SYSTEM_MSG, request))


def _raised(exc: Exception) -> tuple[Atom, Any]:
    """``{Class, Reason}`` of a failed callback as OTP reports it: ``{error, Reason}`` (a crash)
    or ``{exit, Reason}`` for ``pj.Exit``."""
    if isinstance(exc, Exit):
        return (Atom("exit"), exc.reason)
    return (_ERROR, crash_reason(exc))


def unencodable(request: Any, answer: Any) -> Any:
    """What to send instead of ``answer`` when it cannot be encoded for a caller on another node:
    ``get_status`` shows each ``{"State", S}`` datum as ``repr(S)`` (a binary); other requests answer
    ``{error, {callback_failed, {gen_server, system_get_state}, {error, {unencodable, Repr}}}}``."""
    if request == _GET_STATUS:
        status, pid, module, items = answer
        misc = [_printable(entry) for entry in items[4]]
        return (status, pid, module, [*items[:4], misc])
    text = repr(answer).encode("utf-8", "replace")
    return (
        _ERROR,
        (
            _CALLBACK_FAILED,
            (Atom("gen_server"), Atom("system_get_state")),
            (_ERROR, (Atom("unencodable"), text)),
        ),
    )


_STATE_KEY: Final = charlist("State")


def _printable(entry: Any) -> Any:
    if type(entry) is tuple and len(entry) == 2 and entry[0] == _DATA and type(entry[1]) is list:
        return (
            _DATA,
            [(k, repr(v).encode("utf-8", "replace")) if k == _STATE_KEY else (k, v) for k, v in entry[1]],
        )
    return entry
