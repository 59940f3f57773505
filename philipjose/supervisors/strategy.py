"""Restart decisions, as pure functions: the supervisor process only carries them out.

Following OTP's ``supervisor`` (``do_restart``, ``restart/3``, ``shutdown/1``, ``do_auto_shutdown``):

- :func:`should_restart`: a ``permanent`` child is always restarted; a ``transient`` one unless it
  ended with ``normal``, ``shutdown`` or ``(shutdown, _)``; a ``temporary`` one never (its spec is
  dropped when it ends).
- :func:`plan_restart`: which siblings to stop and which children to start again, per strategy:

  * ``one_for_one`` and ``simple_one_for_one``: start the dead child again; nothing else.
  * ``one_for_all``: stop every other child (reverse start order), then start all of them again in
    start order. Temporary siblings are stopped and forgotten, never restarted.
  * ``rest_for_one``: stop the children started after the dead one (reverse order), then start the
    dead one and those after it again in start order; temporary ones among them are forgotten.

  As in OTP, children that were not running (stopped with ``terminate_child``, or whose start
  returned ``ignore``) are started again by ``one_for_all`` / ``rest_for_one`` too.
- :func:`is_reported`: whether an exit deserves a ``child_terminated`` error report.
- :func:`shutdown_ok`: whether the reason a child died with, once asked to shut down, is the
  expected one (otherwise a ``shutdown_error`` report is due).
- :func:`auto_shutdown_triggered`: whether a significant child's end shuts the supervisor down.

Exit reasons are Erlang-shaped: atoms (``Atom("normal")``) and tuples (``(Atom("shutdown"), x)``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from philipjose.term.types import Atom

__all__ = [
    "KILLED",
    "NORMAL",
    "SHUTDOWN",
    "RestartPlan",
    "auto_shutdown_triggered",
    "is_reported",
    "is_shutdown_reason",
    "plan_restart",
    "should_restart",
    "shutdown_ok",
]

NORMAL = Atom("normal")
SHUTDOWN = Atom("shutdown")
KILLED = Atom("killed")


def is_shutdown_reason(reason: Any) -> bool:
    """True for ``normal``, ``shutdown`` and ``(shutdown, _)``: the reasons a transient child may end
    with without being restarted."""
    if reason in (NORMAL, SHUTDOWN):
        return True
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == SHUTDOWN


def should_restart(restart: str, reason: Any) -> bool:
    """Whether a child of restart type ``restart`` that ended with ``reason`` is restarted."""
    if restart == "permanent":
        return True
    if restart == "transient":
        return not is_shutdown_reason(reason)
    return False


def is_reported(restart: str, reason: Any) -> bool:
    """Whether the end of a child is logged as ``child_terminated``: always for a permanent child,
    otherwise only for reasons other than ``normal``, ``shutdown`` and ``(shutdown, _)``."""
    return restart == "permanent" or not is_shutdown_reason(reason)


@dataclass(frozen=True, slots=True)
class RestartPlan:
    """What to do once a child has died and is to be restarted.

    ``terminate``: sibling ids to stop, in this order (reverse start order); those not running are
    skipped. ``forget``: the temporary ones among them, whose specs are dropped once stopped.
    ``start``: ids to start, in this order (start order); the dead child comes first in it for
    ``one_for_one``, ``simple_one_for_one`` and ``rest_for_one``.
    """

    terminate: tuple[Hashable, ...]
    forget: tuple[Hashable, ...]
    start: tuple[Hashable, ...]


def plan_restart(strategy: str, children: Sequence[tuple[Hashable, str]], dead: Hashable) -> RestartPlan:
    """The restart plan for ``strategy`` when child ``dead`` is to be restarted.

    ``children`` lists ``(id, restart_type)`` in start order and includes ``dead``. Raises
    ``ValueError`` for an unknown strategy or a ``dead`` id not in ``children``.
    """
    if strategy in ("one_for_one", "simple_one_for_one"):
        return RestartPlan((), (), (dead,))
    ids = [cid for cid, _ in children]
    try:
        position = ids.index(dead)
    except ValueError:
        raise ValueError(f"child {dead!r} is not among the children") from None
    if strategy == "one_for_all":
        affected = [c for c in children if c[0] != dead]
        keep = [cid for cid, restart in children if cid == dead or restart != "temporary"]
    elif strategy == "rest_for_one":
        affected = list(children[position + 1 :])
        keep = [dead] + [cid for cid, restart in affected if restart != "temporary"]
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    return RestartPlan(
        terminate=tuple(cid for cid, _ in reversed(affected)),
        forget=tuple(cid for cid, restart in reversed(affected) if restart == "temporary"),
        start=tuple(keep),
    )


def shutdown_ok(shutdown: object, restart: str, reason: Any) -> bool:
    """Whether ``reason`` is an expected end for a child stopped by its supervisor.

    With ``brutal_kill`` the child is killed, so ``killed`` is expected; otherwise ``shutdown`` is.
    A child that is not permanent may also end with ``normal`` or ``(shutdown, _)`` (and, under
    ``brutal_kill``, ``shutdown``): it may have been ending on its own.
    """
    if shutdown == "brutal_kill" and reason == KILLED:
        return True
    if shutdown != "brutal_kill" and reason == SHUTDOWN:
        return True
    return restart != "permanent" and is_shutdown_reason(reason)


def auto_shutdown_triggered(auto_shutdown: str, significant: bool, significant_left: bool) -> bool:
    """Whether the supervisor shuts itself down after a child ended without being restarted.

    ``significant``: the child that ended was significant. ``significant_left``: some other significant
    child still has a process. ``any_significant`` shuts down at the first significant end;
    ``all_significant`` when no significant child is left; ``never`` never.
    """
    if auto_shutdown == "never" or not significant:
        return False
    if auto_shutdown == "any_significant":
        return True
    return not significant_left
