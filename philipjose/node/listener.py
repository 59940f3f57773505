"""The accept loop of a node's listening sockets (Trio), with a calm answer to running out of descriptors.

Theory of operation: like ``trio.serve_listeners``, each listener accepts in a loop and starts
``handler(stream)`` in a task of its own. When ``accept`` fails because the process or the system is
out of file descriptors or buffers (``EMFILE``, ``ENFILE``, ``ENOBUFS``, ``ENOMEM``), the connection
stays in the kernel's backlog, so accepting again at once would fail again at once: the loop backs
off instead (10 ms, doubling up to 1 s, back to 10 ms after the next success) while the node's other
tasks -- established connections, ticks, processes -- run on, and it logs at most one line per
second (:class:`~philipjose.node.ratelimit.RateLimiter`), with the count of failures it did not
log. ``trio.serve_listeners`` would log a traceback every 100 ms instead.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import trio

from philipjose.node.ratelimit import RateLimiter

__all__ = ["CAPACITY_ERRNOS", "serve_listeners"]

log: Final = logging.getLogger("philipjose.node")

#: ``accept`` errors that mean "out of resources": back off and retry instead of failing.
CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

_MIN_BACKOFF: Final = 0.01
_MAX_BACKOFF: Final = 1.0


async def serve_listeners(
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    listeners: Sequence[trio.SocketListener],
) -> None:
    """Accept on every listener until cancelled; run ``handler(stream)`` for each connection.

    ``handler`` must not raise (the node's ``accept`` catches everything); the stream is closed
    after it returns. The listeners are closed when this returns.
    """
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_serve_one, listener, handler, nursery)


async def _run_handler(
    handler: Callable[[trio.SocketStream], Awaitable[object]], stream: trio.SocketStream
) -> None:
    try:
        await handler(stream)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_one(
    listener: trio.SocketListener,
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    nursery: trio.Nursery,
) -> None:
    limiter = RateLimiter(burst=1, period=1.0, max_keys=4)
    backoff = _MIN_BACKOFF
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in CAPACITY_ERRNOS:
                    raise
                allowed, held = limiter.allow(exc.errno, time.monotonic())
                if allowed:
                    more = f" ({held} more since the last report)" if held else ""
                    log.error(
                        "cannot accept connections: %s (%s); backing off%s",
                        errno.errorcode.get(exc.errno, exc.errno),
                        os.strerror(exc.errno),
                        more,
                    )
                await trio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            backoff = _MIN_BACKOFF
            nursery.start_soon(_run_handler, handler, stream)
