"""Starting supervisors and talking to them (the functions re-exported by ``philipjose.supervisors``).

Every function here must run inside a philipjose process (``pj.run``). The requests are calls to
the supervisor process with no timeout, as in OTP (``gen_server:call(Sup, Req, infinity)``); a
refused request raises :class:`~philipjose.supervisors.errors.ChildError` with OTP's reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from philipjose import actors
from philipjose.actors.errors import as_reason
from philipjose.supervisors.errors import ChildError, SpecError, StartError
from philipjose.supervisors.spec import ChildSpec, SupFlags, start_function, validate_children
from philipjose.supervisors.supervisor import (
    ACK,
    DOWN,
    DYNAMIC,
    PJ_REQUEST,
    SIMPLE,
    STATIC,
    ChildInfo,
    supervisor_main,
)
from philipjose.term.types import Atom, Pid

__all__ = [
    "count_children",
    "delete_child",
    "get_childspec",
    "restart_child",
    "start",
    "start_child",
    "start_dynamic",
    "start_dynamic_link",
    "start_link",
    "stop",
    "terminate_child",
    "which_children",
]

SupRef = Any
"""A supervisor: its Pid, its registered name, or ``(name, node)``."""


async def _spawn_supervisor(
    link: bool,
    flags: SupFlags,
    mode: str,
    specs: tuple[ChildSpec, ...],
    name: Any,
    max_children: int | None = None,
    extra_args: tuple[Any, ...] = (),
) -> Pid:
    if name is not None and not isinstance(name, str):
        raise SpecError("name", f"must be an atom or str, got {name!r}")
    me = actors.self()
    spawn = actors.spawn_link if link else actors.spawn
    pid = spawn(supervisor_main, me, link, flags, mode, specs, name, max_children, extra_args)
    ref = actors.monitor(pid)

    def answer(message: Any) -> bool:
        if type(message) is not tuple:
            return False
        if len(message) == 4 and message[0] == ACK and message[1] == pid:
            return True
        return len(message) == 5 and message[0] == DOWN and message[1] == ref

    message = await actors.receive(match=answer)
    if message[0] == DOWN:
        raise StartError(message[4])
    actors.demonitor(ref, flush=True)
    if not message[2]:
        raise StartError(message[3])
    return pid


@start_function
async def start_link(
    children: Iterable[object],
    *,
    strategy: str = "one_for_one",
    intensity: int = 1,
    period: int = 5,
    name: Any = None,
    auto_shutdown: str = "never",
) -> Pid:
    """Start a supervisor linked to the caller and return its pid once every child has started.

    ``children`` are child specs (``ChildSpec``, dicts, callables or ``(callable, *args)``, see
    :func:`~philipjose.supervisors.spec.child_spec`), started in this order. ``strategy``:
    ``one_for_one`` (default), ``one_for_all``, ``rest_for_one`` or ``simple_one_for_one`` (one
    template spec, children added with ``start_child(sup, extra_args)``). More than ``intensity``
    restarts within ``period`` seconds (defaults 1 and 5) stop the supervisor with ``shutdown``.
    ``name`` registers it. ``auto_shutdown``: ``never`` (default), ``any_significant``,
    ``all_significant``.

    Raises ``SpecError`` (invalid specs or flags, before anything starts) or ``StartError`` with
    ``reason`` ``(shutdown, (failed_to_start_child, Id, Reason))`` when a child fails to start (the
    children already started are stopped first), or ``(already_started, Pid)`` when ``name`` is
    taken. On failure the supervisor unlinks from the caller before ending, so the caller gets the
    exception rather than an exit signal.

    Usable as a child's start: ``{"id": "sub", "start": (supervisors.start_link, [...]),
    "type": "supervisor"}`` (keyword flags through :func:`functools.partial`, or use
    :func:`~philipjose.supervisors.tree.supervisor_spec`).
    """
    flags = SupFlags(strategy, intensity, period, auto_shutdown)
    specs = validate_children(children, flags)
    mode = SIMPLE if flags.strategy == "simple_one_for_one" else STATIC
    return await _spawn_supervisor(True, flags, mode, specs, name)


async def start(
    children: Iterable[object],
    *,
    strategy: str = "one_for_one",
    intensity: int = 1,
    period: int = 5,
    name: Any = None,
    auto_shutdown: str = "never",
) -> Pid:
    """Like :func:`start_link`, without a link to the caller (a standalone supervisor)."""
    flags = SupFlags(strategy, intensity, period, auto_shutdown)
    specs = validate_children(children, flags)
    mode = SIMPLE if flags.strategy == "simple_one_for_one" else STATIC
    return await _spawn_supervisor(False, flags, mode, specs, name)


def _dynamic_flags(intensity: int, period: int, max_children: int | None) -> SupFlags:
    if max_children is not None and (
        isinstance(max_children, bool) or not isinstance(max_children, int) or max_children < 0
    ):
        raise SpecError("max_children", f"must be an integer >= 0 or None, got {max_children!r}")
    return SupFlags("one_for_one", intensity, period, "never")


@start_function
async def start_dynamic_link(
    *,
    max_children: int | None = None,
    intensity: int = 3,
    period: int = 5,
    extra_args: Iterable[Any] = (),
    name: Any = None,
) -> Pid:
    """Start an Elixir-style dynamic supervisor linked to the caller: no children at first, each
    added with ``start_child(sup, spec)`` (any spec; ids are not used), restarted one for one.

    ``max_children`` (default None: no limit) caps the number of children; ``start_child`` beyond it
    raises ``ChildError(max_children)``. ``extra_args`` are put before each spec's own args, as
    Elixir's ``extra_arguments``. ``intensity``/``period`` default to 3 and 5, as Elixir's
    ``max_restarts``/``max_seconds``. Children are addressed by pid (``terminate_child(sup, pid)``) and
    are all stopped at once when the supervisor ends.
    """
    flags = _dynamic_flags(intensity, period, max_children)
    return await _spawn_supervisor(True, flags, DYNAMIC, (), name, max_children, tuple(extra_args))


async def start_dynamic(
    *,
    max_children: int | None = None,
    intensity: int = 3,
    period: int = 5,
    extra_args: Iterable[Any] = (),
    name: Any = None,
) -> Pid:
    """Like :func:`start_dynamic_link`, without a link to the caller."""
    flags = _dynamic_flags(intensity, period, max_children)
    return await _spawn_supervisor(False, flags, DYNAMIC, (), name, max_children, tuple(extra_args))


async def _request(sup: SupRef, *request: Any) -> Any:
    ok, value = await actors.call(sup, (PJ_REQUEST, Atom(request[0]), *request[1:]), timeout=None)
    if ok:
        return value
    if type(value) is tuple and len(value) == 3 and value[0] == "spec_error":
        raise SpecError(value[1], value[2])
    raise ChildError(value)


async def which_children(sup: SupRef) -> list[ChildInfo]:
    """Every child as ``(id, pid, type, modules)`` in start order (``pid`` None when not running,
    ``"restarting"`` while a failed restart waits to be retried; ``id`` None for dynamic children)."""
    result: list[ChildInfo] = await _request(sup, "which_children")
    return result


async def count_children(sup: SupRef) -> dict[str, int]:
    """Counts as OTP's ``count_children``: ``specs``, ``active`` (children alive), ``supervisors``
    and ``workers``."""
    result: dict[str, int] = await _request(sup, "count_children")
    return result


async def start_child(sup: SupRef, spec: object) -> Pid | None:
    """Add and start a child; return its pid (None if its start returned None: OTP's ``ignore``).

    ``spec`` is a child spec for ``one_for_one``/``one_for_all``/``rest_for_one`` and dynamic
    supervisors, and a list of extra args (appended to the template's args) for
    ``simple_one_for_one``. Raises ``SpecError`` for an invalid spec and ``ChildError`` with reason
    ``already_present``, ``(already_started, Pid)``, ``max_children`` or the start's failure reason.
    """
    result: Pid | None = await _request(sup, "start_child", spec)
    return result


async def terminate_child(sup: SupRef, child: Any) -> None:
    """Stop a child (by id; by pid for dynamic supervisors) as its ``shutdown`` says. A static
    child's spec is kept (unless temporary) so it can be restarted with :func:`restart_child`.
    Raises ``ChildError`` (``not_found``, ``simple_one_for_one``)."""
    await _request(sup, "terminate_child", child)


async def restart_child(sup: SupRef, child_id: Any) -> Pid | None:
    """Start again a static child that is not running; return its new pid. Raises ``ChildError``
    (``running``, ``restarting``, ``not_found``, ``simple_one_for_one``, or the start's reason)."""
    result: Pid | None = await _request(sup, "restart_child", child_id)
    return result


async def delete_child(sup: SupRef, child_id: Any) -> None:
    """Remove the spec of a static child that is not running. Raises ``ChildError`` (``running``,
    ``restarting``, ``not_found``, ``simple_one_for_one``)."""
    await _request(sup, "delete_child", child_id)


async def get_childspec(sup: SupRef, child: Any) -> ChildSpec:
    """The :class:`ChildSpec` of a child (by id, or by pid for dynamic supervisors)."""
    result: ChildSpec = await _request(sup, "get_childspec", child)
    return result


async def stop(sup: SupRef, reason: Any = "shutdown") -> None:
    """Stop a supervisor from any process: its children are stopped in reverse start order, then it
    exits with ``reason`` (default ``shutdown``). Returns once it is done (like ``gen_server:stop``).
    """
    ref = actors.monitor(sup)
    await _request(sup, "stop", as_reason(reason))
    await actors.receive(match=lambda m: type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref)
