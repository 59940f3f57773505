"""Helpers for the pg tests: member processes, and waiting for a group's members by its notifications."""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio

import philipjose as pj
from philipjose import Atom, Pid

JOIN = Atom("join")
LEAVE = Atom("leave")
STOP = Atom("stop")


async def member() -> None:
    """A process that stays until it gets ``stop`` (then exits normally) or ``{exit, Reason}``."""
    while True:
        msg = await pj.receive()
        if msg == STOP:
            return
        if type(msg) is tuple and len(msg) == 2 and msg[0] == Atom("exit"):
            raise pj.Exit(msg[1])


def spawn_member(group: Any, *, scope: str = "pg") -> Pid:
    """A new member process that has joined ``group``."""
    pid = pj.spawn(member)
    pj.pg.join(group, pid, scope=scope)
    return pid


def _minus(items: list[Pid], removed: list[Pid]) -> list[Pid]:
    out = list(items)
    for pid in removed:
        if pid in out:
            out.remove(pid)
    return out


async def wait_members(
    group: Any, expected: list[Pid], *, scope: str = "pg", timeout: float = 20
) -> list[Pid]:
    """Wait (on the calling node) until ``group`` has exactly ``expected`` members, following the
    scope's own notifications (``pj.pg.monitor``); returns ``get_members``."""
    ref, members = pj.pg.monitor(group, scope=scope)
    try:
        current = list(members)
        with trio.fail_after(timeout):
            while Counter(current) != Counter(expected):
                _, action, _, pids = await pj.receive(
                    match=lambda m: type(m) is tuple and len(m) == 4 and m[0] == ref
                )
                current = current + pids if action == JOIN else _minus(current, pids)
        return pj.pg.get_members(group, scope=scope)
    finally:
        pj.pg.demonitor(ref, scope=scope)
