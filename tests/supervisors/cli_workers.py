"""Workers for the ``philipjose run`` subprocess tests: they print what happens to them on stdout."""

from __future__ import annotations

from typing import Any

import philipjose as pj
from philipjose.supervisors import start_function


async def polite(tag: str) -> None:
    """Traps exits; prints ``stopping <tag>`` when its supervisor shuts it down."""
    pj.process_flag("trap_exit", True)
    message = await pj.receive((pj.Atom("EXIT"), pj.ANY, pj.ANY))
    print(f"stopping {tag} {message[2]}", flush=True)
    raise pj.Exit(message[2])


async def lingering(tag: str) -> None:
    """Traps exits; on shutdown prints ``stopping <tag>`` and then never ends."""
    pj.process_flag("trap_exit", True)
    await pj.receive((pj.Atom("EXIT"), pj.ANY, pj.ANY))
    print(f"stopping {tag}", flush=True)
    await pj.receive(lambda m: False)


async def doomed(go: Any = None) -> None:
    """Crashes as soon as it runs."""
    raise RuntimeError("doomed worker")


class Echo(pj.GenServer):
    """Replies ``("pong", request)`` to every call."""

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return ("pong", request)


@start_function
async def start_echo(name: str) -> pj.Pid:
    """Start :class:`Echo` registered as ``name``."""
    return await Echo.start_link(name=name)
