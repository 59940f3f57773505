"""Helpers for node tests: several philipjose runtimes (nodes) inside one Trio run, without EPMD."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

import philipjose as pj
from philipjose.actors import run_async
from philipjose.node import Node

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A node name unique in this test session: ``prefix<pid>x<n>@localhost``."""
    return f"{prefix}{os.getpid()}x{next(_counter)}@localhost"


class _Result:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class LocalNode:
    """A runtime running ``pj.node.start(name, epmd=False, ...)`` whose main process runs jobs.

    ``await node.run(fn, *args)`` runs ``fn`` as a new process of that runtime and returns its result.
    """

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = options
        self.dist: Node | None = None
        self._jobs_send, self._jobs = trio.open_memory_channel[Any](100)
        self._ready = trio.Event()

    async def _main(self) -> None:
        self.dist = pj.node.current()
        self._ready.set()
        async with self._jobs:
            async for fn, args, result in self._jobs:

                async def job(fn: Any = fn, args: Any = args, result: _Result = result) -> None:
                    try:
                        result.value = await fn(*args)
                    except BaseException as exc:
                        result.error = exc
                        raise
                    finally:
                        result.done.set()

                pj.spawn(job)

    async def _setup(self) -> None:
        await pj.node.start(self.name, **self.options)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(run_async, self._main, setup=self._setup))
            await self._ready.wait()
            task_status.started()

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any, timeout: float = 30) -> Any:
        result = _Result()
        await self._jobs_send.send((fn, args, result))
        with trio.fail_after(timeout):
            await result.done.wait()
        if result.error is not None:
            raise result.error
        return result.value


@asynccontextmanager
async def local_nodes(
    count: int, *, prefixes: tuple[str, ...] = (), **options: Any
) -> AsyncIterator[list[LocalNode]]:
    """``count`` nodes on loopback that know each other's ports (no EPMD); named
    ``prefix<unique>@localhost`` with the given ``prefixes`` (their order is the names' order)."""
    options.setdefault("cookie", "test-cookie")
    options.setdefault("epmd", False)
    options.setdefault("listen_host", "127.0.0.1")
    names = prefixes or tuple(f"n{i}_" for i in range(count))
    nodes = [LocalNode(unique(prefix), dict(options)) for prefix in names]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.serve)
        ports = {n.name: n.dist.port for n in nodes if n.dist is not None}
        for node in nodes:
            assert node.dist is not None
            node.dist.peer_ports.update(ports)
        yield nodes
        nursery.cancel_scope.cancel()
