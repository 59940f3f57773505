"""OTP's shapes for a supervisor called from Erlang or Elixir (pure: no runtime, no I/O).

``supervisor:start_child/2`` from another node sends an Erlang child spec: a map ``#{id => Id,
start => {M, F, A}, restart => ..., shutdown => Ms, type => ..., modules => ..., significant => ...}``
or the old tuple ``{Id, {M, F, A}, Restart, Shutdown, Type, Modules}``. A Python supervisor can only
start Python code, so ``{M, F, A}`` must name a function exposed with ``rpc.expose`` (``M:F/length(A)``):
it is the child's start, used as a Python start would be (see :mod:`.spec`); a start function may also
return OTP's ``{ok, Pid}``, ``{ok, Pid, Info}``, ``ignore`` or ``{error, Reason}``. Anything else is
not found, and the start fails as OTP's does when the module is missing:
``{error, {{'EXIT', {undef, [{M, F, A, []}]}}, ChildRecord}}``. The checks and their error reasons
(``missing_id``, ``{invalid_mfa, X}``, ``{invalid_shutdown, X}``, ...) are OTP 25's ``check_childspec``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Final, Literal

from philipjose.actors.errors import Exit
from philipjose.supervisors.spec import ChildSpec, Shutdown
from philipjose.term.types import Atom, Pid

__all__ = [
    "ErlangMFA",
    "InvalidSpec",
    "child_record",
    "erlang_mfa",
    "erlang_spec",
    "find_id",
    "otp_id",
    "spec_map",
    "start_result",
]

_UNDEFINED: Final = Atom("undefined")
_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_IGNORE: Final = Atom("ignore")
_RESTARTS: Final = ("permanent", "transient", "temporary")
_TYPES: Final = ("worker", "supervisor")


class InvalidSpec(Exception):
    """An Erlang child spec that OTP's ``check_childspec`` refuses; ``reason`` is its reason term."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


def otp_id(cid: Any) -> Any:
    """A child id as an Erlang caller sees it: a ``str`` as an atom, None as ``undefined``."""
    if cid is None:
        return _UNDEFINED
    if type(cid) is str:
        return Atom(cid)
    return cid


class ErlangMFA:
    """Marks a start made from an Erlang spec's ``{M, F, A}`` (``module``, ``function``, ``args``
    attributes), so that ``get_childspec`` and the child records show that MFA."""

    module: Any
    function: Any
    args: tuple[Any, ...]


def start_result(result: Any) -> Pid | None:
    """The pid (None: ``ignore``) of what an exposed start function returned, which may also be
    OTP's ``{ok, Pid}``, ``{ok, Pid, Info}``, ``ignore`` or ``{error, Reason}`` (raises
    ``pj.Exit(Reason)``; anything else raises ``pj.Exit({bad_return_value, Result})``)."""
    if result is None or isinstance(result, Pid):
        return result
    if result == _IGNORE:
        return None
    if type(result) is tuple and len(result) in (2, 3) and result[0] == _OK and isinstance(result[1], Pid):
        pid: Pid = result[1]
        return pid
    if type(result) is tuple and len(result) == 2 and result[0] == _ERROR:
        raise Exit(result[1])
    raise Exit((Atom("bad_return_value"), result))


def _atom_choice(value: Any, choices: tuple[str, ...], reason: str) -> str:
    if type(value) is Atom and str(value) in choices:
        return str(value)
    raise InvalidSpec((Atom(reason), value))


def _shutdown(value: Any) -> Shutdown:
    if value == Atom("brutal_kill"):
        return "brutal_kill"
    if value == Atom("infinity"):
        return "infinity"
    if type(value) is int and value >= 0:
        return value / 1000
    raise InvalidSpec((Atom("invalid_shutdown"), value))


def _modules(value: Any) -> tuple[str, ...] | Literal["dynamic"]:
    if value == Atom("dynamic"):
        return "dynamic"
    if type(value) is list and all(type(m) is Atom for m in value):
        return tuple(str(m) for m in value)
    raise InvalidSpec((Atom("invalid_modules"), value))


def erlang_spec(
    term: Any, make_start: Callable[[Any, Any, tuple[Any, ...]], Callable[..., Any]]
) -> ChildSpec:
    """The :class:`ChildSpec` for an Erlang child spec (map or 6-tuple); ``make_start(M, F, A)``
    gives its start (an :class:`ErlangMFA`). Raises :class:`InvalidSpec` with OTP's reason."""
    if type(term) is dict:
        if Atom("id") not in term:
            raise InvalidSpec(Atom("missing_id"))
        if Atom("start") not in term:
            raise InvalidSpec(Atom("missing_start"))
        cid, mfa = term[Atom("id")], term[Atom("start")]
        restart = term.get(Atom("restart"), Atom("permanent"))
        significant = term.get(Atom("significant"), False)
        ctype = term.get(Atom("type"), Atom("worker"))
        shutdown = term.get(Atom("shutdown"))
        modules = term.get(Atom("modules"))
    elif type(term) is tuple and len(term) == 6:
        cid, mfa, restart, shutdown, ctype, modules = term
        significant = False
    else:
        raise InvalidSpec((Atom("invalid_child_spec"), term))
    if not (
        type(mfa) is tuple
        and len(mfa) == 3
        and type(mfa[0]) is Atom
        and type(mfa[1]) is Atom
        and type(mfa[2]) is list
    ):
        raise InvalidSpec((Atom("invalid_mfa"), mfa))
    restart_s = _atom_choice(restart, _RESTARTS, "invalid_restart_type")
    if type(significant) is not bool:
        raise InvalidSpec((Atom("invalid_significant"), significant))
    type_s = _atom_choice(ctype, _TYPES, "invalid_child_type")
    shutdown_v = None if shutdown is None else _shutdown(shutdown)
    modules_v = (str(mfa[0]),) if modules is None else _modules(modules)
    try:
        hash(cid)
    except TypeError:
        raise InvalidSpec((Atom("invalid_child_spec"), term)) from None
    module, function, args = mfa
    start = make_start(module, function, tuple(args))
    return ChildSpec(
        id=cid,
        start=start,
        args=tuple(args),
        restart=restart_s,
        shutdown=shutdown_v,
        type=type_s,
        significant=significant,
        modules=modules_v,
    )


def _shutdown_term(spec: ChildSpec) -> Any:
    if isinstance(spec.shutdown, str):
        return Atom(spec.shutdown)
    return round((spec.shutdown or 0.0) * 1000)


def erlang_mfa(spec: ChildSpec) -> tuple[Any, Any, Any]:
    """``{M, F, A}`` of a child: an Erlang spec's own (``A`` ``undefined`` for a temporary child, as
    OTP keeps it); for a Python start its module and qualified name, with ``undefined`` arguments
    (Python values need not have an Erlang form)."""
    start: Any = spec.start
    if isinstance(start, ErlangMFA):
        return (start.module, start.function, _UNDEFINED if spec.restart == "temporary" else list(start.args))
    name = getattr(start, "__qualname__", None) or type(start).__qualname__
    module = getattr(start, "__module__", None) or "python"
    return (Atom(str(module)), Atom(str(name)), _UNDEFINED)


def _modules_term(spec: ChildSpec) -> Any:
    return Atom("dynamic") if spec.modules == "dynamic" else [Atom(m) for m in spec.modules]


def child_record(spec: ChildSpec, pid: Any) -> tuple[Any, ...]:
    """OTP's internal ``#child{}`` record, as start_child's errors and ``sys:get_state`` show it:
    ``{child, Pid, Id, MFA, Restart, Significant, Shutdown, Type, Modules}``."""
    return (
        Atom("child"),
        _UNDEFINED if pid is None else pid,
        otp_id(spec.id),
        erlang_mfa(spec),
        Atom(spec.restart),
        spec.significant,
        _shutdown_term(spec),
        Atom(spec.type),
        _modules_term(spec),
    )


def spec_map(spec: ChildSpec) -> dict[Atom, Any]:
    """``get_childspec``'s map, with every key."""
    return {
        Atom("id"): otp_id(spec.id),
        Atom("modules"): _modules_term(spec),
        Atom("restart"): Atom(spec.restart),
        Atom("shutdown"): _shutdown_term(spec),
        Atom("significant"): spec.significant,
        Atom("start"): erlang_mfa(spec),
        Atom("type"): Atom(spec.type),
    }


def find_id(ids: list[Hashable], key: Any) -> Hashable | None:
    """The child id that ``key`` from an Erlang caller means: the same term, else the id it is shown
    as (``which_children`` shows a ``str`` id ``"worker"`` as the atom ``worker``)."""
    for cid in ids:
        if cid == key and type(cid) is type(key):
            return cid
    for cid in ids:
        if otp_id(cid) == key:
            return cid
    return None
