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
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import trio

from philipjose.node.ratelimit import RateLimiter

__all__ = ["CAPACITY_ERRNOS", "open_listeners", "serve_listeners"]

log: Final = logging.getLogger("philipjose.node")

#: ``accept`` errors that mean "out of resources": back off and retry instead of failing.
CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

_MIN_BACKOFF: Final = 0.01
_MAX_BACKOFF: Final = 1.0


async def open_listeners(port: int, host: str | None) -> list[trio.SocketListener]:
    """The node's listening sockets on ``port`` (0: a free one).

    ``host`` None (the default of :func:`philipjose.node.start`) listens on every interface, IPv4 and
    IPv6, with one dual-stack socket bound to ``::`` (``IPV6_V6ONLY`` off, so IPv4 peers arrive as
    ``::ffff:a.b.c.d``): peers reach the node at ``127.0.0.1`` and at ``::1`` on the same port. Where
    the host has no IPv6 (the socket cannot be made or bound) it listens on ``0.0.0.0`` alone. A given
    ``host`` is passed to ``trio.open_tcp_listeners``.
    """
    if host is not None:
        return await trio.open_tcp_listeners(port, host=host)
    try:
        sock = trio.socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return await trio.open_tcp_listeners(port, host="0.0.0.0")
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as trio's listeners
        await sock.bind(("::", port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        return await trio.open_tcp_listeners(port, host="0.0.0.0")
    return [trio.SocketListener(sock)]


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
