"""Workers for the example supervision tree ``tree.toml`` (run it with ``philipjose run examples/tree.toml``).

- ``start_store(name)``: a start function that starts the :class:`KeyValue` GenServer registered as
  ``name`` (a start function is how a child gets a registered name).
- ``ticker(store, interval)``: every ``interval`` seconds, bumps the ``ticks`` counter in the store.
- ``flaky(lifetime)``: crashes after ``lifetime`` seconds, to show restarts in the log.
- ``janitor()``: traps exits, and on ``shutdown`` reports the tick count before it goes.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

import philipjose as pj
from philipjose.supervisors import start_function

log = logging.getLogger("tree_workers")


class KeyValue(pj.GenServer):
    """A tiny key-value store: ``call(("get", key))``, ``cast(("incr", key))``."""

    async def init(self) -> None:
        self.data: dict[str, Any] = {}
        log.info("store %r up", pj.self())

    async def handle_call(self, request: Any, caller: Any) -> Any:
        _, key = request
        return self.data.get(key, 0)

    async def handle_cast(self, msg: Any) -> None:
        _, key = msg
        self.data[key] = self.data.get(key, 0) + 1


@start_function
async def start_store(name: str) -> pj.Pid:
    """Start the store linked to the calling supervisor, registered as ``name``."""
    return await KeyValue.start_link(name=name)


async def ticker(store: str, interval: float) -> None:
    """Count ticks in the store every ``interval`` seconds."""
    while True:
        await trio.sleep(interval)
        pj.cast(store, ("incr", "ticks"))


async def flaky(lifetime: float) -> None:
    """Live ``lifetime`` seconds, then crash (its supervisor restarts it)."""
    log.info("flaky %r up for %s s", pj.self(), lifetime)
    await trio.sleep(lifetime)
    raise RuntimeError("flaky worker crashed on purpose")


async def janitor() -> None:
    """Wait for the shutdown from the supervisor, then report and leave."""
    pj.process_flag("trap_exit", True)
    message = await pj.receive((pj.Atom("EXIT"), pj.ANY, pj.ANY))
    ticks = await pj.call("kv", ("get", "ticks")) if pj.whereis("kv") else "n/a"
    log.info("janitor: shutting down (%s), %s ticks counted", message[2], ticks)
    raise pj.Exit(message[2])
