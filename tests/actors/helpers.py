"""Shared helpers for the actor tests: run a main function under a MockClock that jumps at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio.testing

import philipjose as pj
from philipjose import Atom

NORMAL = Atom("normal")
KILL = Atom("kill")
KILLED = Atom("killed")
NOPROC = Atom("noproc")
EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
PROCESS = Atom("process")
SHUTDOWN = Atom("shutdown")


def run(main: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``pj.run`` with ``MockClock(autojump_threshold=0)``: timeouts elapse as soon as all tasks block."""
    return pj.run(main, *args, clock=trio.testing.MockClock(autojump_threshold=0))


async def wait_down(ref: Any, timeout: float | None = 10) -> Any:
    """Receive the DOWN message of monitor ``ref`` and return its reason."""
    msg = await pj.receive(
        lambda m: type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref, timeout=timeout
    )
    return msg[4]


async def forever() -> None:
    """A process that waits for a message that never comes."""
    await pj.receive(lambda m: False)


async def collect(n: int, timeout: float | None = 10) -> list[Any]:
    return [await pj.receive(timeout=timeout) for _ in range(n)]
