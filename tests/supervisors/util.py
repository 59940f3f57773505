"""Helpers for the supervisor tests: a MockClock runtime, and workers that report to the test process.

Workers send ``(event, tag, pid)`` tuples to the process registered as ``"test"``: ``"started"``
when they start and, for those that trap exits, ``"stopping"`` when asked to shut down.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

import philipjose as pj
from philipjose import Atom
from philipjose.supervisors import start_function

EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
NORMAL = Atom("normal")
SHUTDOWN = Atom("shutdown")
KILLED = Atom("killed")
KILL = Atom("kill")
BOOM = Atom("boom")


def run(main: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``pj.run`` under ``MockClock(autojump_threshold=0)``, with the main process registered as
    ``"test"`` and trapping exits (so a supervisor it started that gives up does not take it down)."""

    async def wrapper() -> Any:
        pj.register("test", pj.self())
        pj.process_flag("trap_exit", True)
        return await main(*args)

    return pj.run(wrapper, clock=trio.testing.MockClock(autojump_threshold=0))


def _tell(event: str, tag: Any) -> None:
    test = pj.whereis("test")
    if test is not None:
        pj.send(test, (event, tag, pj.self()))


async def worker(tag: Any) -> None:
    """Reports ``started`` then waits forever (dies at once on ``shutdown``)."""
    _tell("started", tag)
    await pj.receive(lambda m: False)


async def trapping_worker(tag: Any, linger: float = 0.0) -> None:
    """Traps exits; on an EXIT from its supervisor reports ``stopping``, waits ``linger`` seconds
    (virtual time), then exits with that reason."""
    pj.process_flag("trap_exit", True)
    _tell("started", tag)
    message = await pj.receive((EXIT, pj.ANY, pj.ANY))
    _tell("stopping", tag)
    if linger:
        await trio.sleep(linger)
    raise pj.Exit(message[2])


async def stubborn_worker(tag: Any) -> None:
    """Traps exits and ignores every exit signal (only ``kill`` ends it)."""
    pj.process_flag("trap_exit", True)
    _tell("started", tag)
    while True:
        message = await pj.receive()
        if type(message) is tuple and message and message[0] == EXIT:
            _tell("ignored", tag)


async def unlinking_worker(tag: Any, supervisor_box: list[Any]) -> None:
    """Unlinks from its supervisor and ignores shutdown (traps exits): only a monitor sees it die."""
    pj.process_flag("trap_exit", True)
    info = pj.process_info(pj.self())
    assert info is not None
    for pid in info["links"]:
        pj.unlink(pid)
    _tell("started", tag)
    while True:
        await pj.receive()


async def ends_with(tag: Any, reason: Any) -> None:
    """Waits for ``("end", tag)`` sent to it, then exits with ``reason``."""
    _tell("started", tag)
    await pj.receive(("end", tag))
    raise pj.Exit(reason)


async def crasher(tag: Any) -> None:
    """Waits for ``"crash"`` then raises an exception."""
    _tell("started", tag)
    await pj.receive("crash")
    raise RuntimeError(f"{tag} crashed on purpose")


@start_function
async def failing_start(reason: Any) -> None:
    """A start function that always fails with ``reason``."""
    raise pj.Exit(reason)


def ignoring_start(tag: Any) -> None:
    """A start function returning None: OTP's ``ignore``."""
    _tell("ignored_start", tag)
    return None


class Flaky:
    """Start functions whose outcome is scripted: ``Flaky(["ok", "fail", "ok"])`` succeeds, fails,
    then succeeds (and keeps repeating the last entry)."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.calls = 0

    def __call__(self, tag: Any) -> Any:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if step == "fail":
            raise RuntimeError(f"start of {tag} failed")
        return pj.spawn_link(worker, tag)


async def next_event(event: str | None = None, timeout: float | None = 60) -> tuple[Any, Any, Any]:
    """The next ``(event, tag, pid)`` report (optionally of one kind)."""
    if event is None:
        pattern: Any = (str, pj.ANY, pj.ANY)
    else:
        pattern = (event, pj.ANY, pj.ANY)
    message: tuple[Any, Any, Any] = await pj.receive(pattern, timeout=timeout)
    return message


async def events(n: int, event: str | None = None) -> list[tuple[Any, Any]]:
    """The next ``n`` reports as ``(event, tag)``."""
    return [(e, t) for e, t, _ in [await next_event(event) for _ in range(n)]]


async def wait_down(ref: Any, timeout: float | None = 600) -> Any:
    message = await pj.receive((DOWN, ref, pj.ANY, pj.ANY, pj.ANY), timeout=timeout)
    return message[4]


async def no_message(pattern: Any = None) -> bool:
    """True when no message matching ``pattern`` arrives once every task is blocked."""
    await trio.testing.wait_all_tasks_blocked()
    try:
        await pj.receive(pattern, timeout=0)
    except TimeoutError:
        return True
    return False
