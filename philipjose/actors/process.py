"""The process record: one per live process, owned by the runtime's process table.

A process is a Trio task running ``fn(*args)``. Its mailbox is a
``collections.deque``, made on the first message; ``waiter`` holds the task while it is parked in
``receive`` (valid while ``waiter.custom_sleep_data is`` the process) so that a sender can wake it
with ``trio.lowlevel.reschedule``. Relations are created
lazily (``None`` until first used) to keep an idle process small:

- ``links``: pids (local or remote) linked to this process;
- ``monitors``: monitors this process holds, ``ref -> target`` (a pid, or ``(name, node)``);
- ``monitored_by``: monitors on this process, ``ref -> (watcher, item)`` where ``item`` is what the
  watcher asked for (the pid, or the registered name) and is echoed in its DOWN message;
- ``aliases``: ids of the alias references that currently reach this process.

``group_leader`` is the pid of the process's group leader (the io server its output goes to), or
None for the runtime's default one (see ``Runtime.group_leader_of``); a new process inherits its
parent's.

``hold`` is set when the process sent to a busy distribution connection: a ``trio.Event`` that the
node sets when the connection has drained; the process waits for it at its next ``receive`` (or
``send_wait``), OTP's suspension of a sender to a busy dist port (see ``philipjose.actors.api``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final

import trio

from philipjose.term import Pid, Reference

if TYPE_CHECKING:
    from philipjose.actors.runtime import Runtime

__all__ = ["REDUCTIONS", "Process"]

#: Receives a process may complete without yielding to Trio before it is made to yield (see
#: ``philipjose.actors.api.receive``). Like the BEAM's reduction budget.
REDUCTIONS: Final = 100


class Process:
    """The runtime's record of one process (internal; users hold its :class:`Pid`)."""

    __slots__ = (
        "aliases",
        "alive",
        "budget",
        "group_leader",
        "hold",
        "initial_call",
        "key",
        "kill_scope",
        "links",
        "monitored_by",
        "monitors",
        "name",
        "pid",
        "queue",
        "reason",
        "rt",
        "task",
        "trap_exit",
        "waiter",
    )

    def __init__(self, rt: Runtime, pid: Pid, key: int, initial_call: Any) -> None:
        self.rt = rt
        self.pid = pid
        self.key = key
        self.initial_call = initial_call
        self.queue: deque[Any] | None = None  # made by the first message
        self.waiter: trio.lowlevel.Task | None = None
        self.task: trio.lowlevel.Task | None = None
        self.budget = REDUCTIONS
        self.hold: trio.Event | None = None  # set while held back by a busy connection
        self.group_leader: Pid | None = None  # None: the runtime's default group leader
        self.alive = True
        self.trap_exit = False
        self.reason: Any = None
        self.kill_scope: trio.CancelScope | None = None  # see philipjose.actors.killscope
        self.name: Any = None
        self.links: set[Pid] | None = None
        self.monitors: dict[Reference, Any] | None = None
        self.monitored_by: dict[Reference, tuple[Pid, Any]] | None = None
        self.aliases: set[tuple[int, ...]] | None = None

    def __repr__(self) -> str:
        return f"<Process {self.pid!r} {self.initial_call} alive={self.alive}>"
