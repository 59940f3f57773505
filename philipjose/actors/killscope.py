"""How an exit signal cancels a process's task without the process paying for it at spawn.

``exit(pid, kill)`` must end a process blocked in any await: ``receive``, ``trio.sleep``, socket I/O,
a nursery waiting for its children. Trio cancels tasks only through cancel scopes, and entering a
``trio.CancelScope`` costs about as much as starting the task itself (4-5 us to enter, plus four
objects that the garbage collector walks for the whole life of the process). Most processes are never
killed, so they should not pay that up front.

So a process starts *without* a scope of its own: its task's cancel status is the process nursery's.
When an exit signal dooms it, :func:`cancel_task` gives the task an already cancelled scope *beneath*
everything the task has entered so far: a new cancel status is spliced in between the process
nursery's status and the outermost status of the task's own stack (the same re-parenting Trio does
in ``TaskStatus.started``). From then on the task behaves exactly as if it had entered that scope
first thing and the scope had been cancelled: every checkpoint raises ``trio.Cancelled`` except inside
shielded scopes (Trio still honours them), the child tasks of nurseries the process opened are
cancelled, and the process's wrapper absorbs the ``Cancelled`` when the function unwinds
(:func:`leave`, which is the scope's ``__exit__``).

This relies on Trio internals (``CancelStatus``, ``Task._cancel_status``,
``Task._activate_cancel_status``, ``CancelScope._cancel_status`` and ``_has_been_entered``). They are
checked once at import: if a Trio release changes them, :data:`LAZY` is False and every process
enters its own ``trio.CancelScope`` when it starts (:func:`enter`), the public-API way, with the same
semantics and a slower spawn. The test suite runs the kill tests both ways.
"""

from __future__ import annotations

from typing import Any, Final

import trio

__all__ = ["LAZY", "cancel_task", "enter", "leave"]


def _find_cancel_status() -> Any:
    try:
        from trio._core._run import CancelStatus
    except ImportError:  # pragma: no cover - depends on the Trio release
        return None
    needed = (
        (trio.lowlevel.Task, "_activate_cancel_status"),
        (CancelStatus, "parent"),
        (CancelStatus, "__attrs_attrs__"),
    )
    if not all(hasattr(owner, name) for owner, name in needed):  # pragma: no cover
        return None
    fields = {field.name for field in CancelStatus.__attrs_attrs__}
    scope_fields = {field.name for field in getattr(trio.CancelScope, "__attrs_attrs__", ())}
    if not {"_scope", "_parent"} <= fields or not {"_cancel_status", "_has_been_entered"} <= scope_fields:
        return None  # pragma: no cover
    return CancelStatus


_CancelStatus: Final = _find_cancel_status()

#: True when processes start without a cancel scope and get one only when an exit signal kills them.
LAZY: bool = _CancelStatus is not None


def enter() -> trio.CancelScope:
    """Enter a new cancel scope in the current task (the eager way, used when :data:`LAZY` is False)."""
    scope = trio.CancelScope()
    scope.__enter__()
    return scope


def cancel_task(task: trio.lowlevel.Task) -> trio.CancelScope:
    """Cancel ``task`` (a process's task, started in the process nursery, not yet finished) as if it
    had entered a cancel scope first thing; return that scope, for :func:`leave` in the task."""
    nursery = task.parent_nursery
    assert nursery is not None, "a process task always has its nursery"
    base: Any = nursery.cancel_scope._cancel_status
    scope = trio.CancelScope()
    status = _CancelStatus(scope=scope, parent=base)
    scope._cancel_status = status
    scope._has_been_entered = True
    outer: Any = task._cancel_status
    if outer is base:
        task._activate_cancel_status(status)
    else:
        while outer.parent is not base and outer.parent is not None:
            outer = outer.parent
        outer.parent = status
    scope.cancel()
    return scope


def leave(scope: trio.CancelScope, exc: BaseException | None) -> bool:
    """Exit ``scope`` in its task as a ``with`` block would when ``exc`` (or nothing) propagates out of
    it; True when the scope absorbed ``exc`` (its own ``Cancelled``)."""
    if exc is None:
        scope.__exit__(None, None, None)
        return False
    return bool(scope.__exit__(type(exc), exc, exc.__traceback__))
