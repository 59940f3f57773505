"""The interface the node layer implements so the runtime can reach remote processes.

The runtime calls these for REMOTE targets only: a pid or reference is remote when its node is neither
``runtime.node`` nor ``nonode@nohost``; a ``(name, node)`` destination is remote when ``node`` is not
``runtime.node``. Every method is synchronous and never blocks (the node layer queues the bytes and
connects on first use). The runtime never imports ``philipjose.node``; the node layer sets
``current_runtime().dist`` to an object with these methods.

Back-pressure: ``send`` returns None, or, when the connection to that node is busy (more bytes
queued than its limit), a ``trio.Event`` that the node sets once the connection has drained (or is
gone); the runtime then holds the sending process back until it is set. ``busy(node)`` tells whether
the connection to ``node`` is busy now (for ``send_nowait``). Control signals (links, exits,
monitors) are never held back.

With ``dist`` unset (``None``), a remote target behaves like an unreachable node: a send is dropped,
a link gives the linker an exit signal ``noconnection``, a monitor gives ``DOWN`` with ``noconnection``
at once.
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from philipjose.term import Atom, Pid, Reference

__all__ = ["DistributionHooks"]


class DistributionHooks(Protocol):
    """What the runtime needs from the distribution layer (implemented in ``philipjose.node``)."""

    def send(self, sender: Pid, to: Pid | tuple[Atom, Atom] | Reference, msg: Any) -> trio.Event | None:
        """Send ``msg`` to a remote pid, ``(name, node)`` or alias reference (ALIAS_SEND); returns
        None, or the event to wait for when the connection is busy (see the module docstring)."""

    def busy(self, node: Atom) -> bool:
        """True when the connection to ``node`` is busy (a send would hold the sender back)."""

    def link(self, local: Pid, remote: Pid) -> None:
        """``local`` linked to ``remote`` (LINK)."""

    def unlink(self, local: Pid, remote: Pid) -> None:
        """``local`` unlinked from ``remote`` (UNLINK)."""

    def exit(self, sender: Pid, to: Pid, reason: Any, *, link: bool) -> None:
        """An exit signal to a remote pid: ``link=True`` when the linked local ``sender`` died (EXIT),
        ``link=False`` for ``pj.exit(remote, reason)`` (EXIT2)."""

    def monitor(self, watcher: Pid, target: Pid | tuple[Atom, Atom], ref: Reference) -> None:
        """Local ``watcher`` monitors a remote pid or ``(name, node)`` (MONITOR_P)."""

    def demonitor(self, watcher: Pid, target: Pid | tuple[Atom, Atom], ref: Reference) -> None:
        """Local ``watcher`` drops its monitor ``ref`` (DEMONITOR_P)."""

    def group_leader(self, leader: Pid, to: Pid) -> None:
        """Make ``leader`` the group leader of the remote ``to`` (GROUP_LEADER)."""

    def monitor_exit(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        """A local process monitored by the remote ``watcher`` died (MONITOR_P_EXIT); ``target`` is
        what the watcher asked to monitor (a pid or a registered name)."""
