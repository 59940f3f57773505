"""An EPMD server on Trio that real Erlang nodes (and ``epmd -names``) use as they use OTP's epmd.

Behaviour, as OTP's epmd:

- A registration (``ALIVE2_REQ``) lives while its TCP connection stays open; it is dropped when the
  node closes the connection or sends anything more on it. A name held by a live node is refused
  (result 1). Each new registration of a name gets a new creation (see :mod:`.registry`);
  version-6 requests get ``ALIVE2_X_RESP`` (32-bit creation), older ones ``ALIVE2_RESP``.
- ``ALIVE2_REQ``, ``KILL_REQ``, ``STOP_REQ`` and ``DUMP_REQ`` are served only to local peers
  (loopback addresses, or a peer whose address is the server socket's own); others are closed
  without a reply and logged. ``KILL`` is refused ("NO") while nodes are registered and ``STOP`` is
  ignored, unless ``relaxed_command_check``.
- ``PORT_PLEASE2_REQ`` and ``NAMES_REQ`` are served to anyone; NAMES uses epmd's exact text.

Idle exit (not in OTP's epmd): with ``idle_timeout=S`` the server stops once, for S seconds in a
row, no node has been registered and no connection has been open. Any connection restarts the
count, so a node that has just asked NAMES (as :func:`~philipjose.epmd.ensure.ensure_epmd` does
before it registers) always finds the server still there. This is how a daemon that a node started
implicitly goes away after its nodes (see ``docs/epmd.md``); by default (None) a server stays up.

Robustness: a connection must deliver its request within ``packet_timeout`` seconds (60 by
default) from being accepted, and a reply is abandoned after as long; at most ``max_connections``
connections are open at once (by default 1000, less if the file descriptor limit is lower) — when
full, the oldest connection that holds no registration is closed to make room (or the new one, if
all hold registrations). Malformed bytes close only the connection that sent them. Everything is
logged through the ``philipjose.epmd`` logger.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from philipjose.epmd.client import default_epmd_port
from philipjose.epmd.errors import EpmdProtocolError
from philipjose.epmd.protocol import (
    NEED_DATA,
    Alive2Reply,
    Alive2Request,
    ConnectionClosed,
    DumpReply,
    DumpRequest,
    KillReply,
    KillRequest,
    NamesReply,
    NamesRequest,
    PortPleaseRequest,
    PortReply,
    Reply,
    Request,
    ServerConnection,
    StopReply,
    StopRequest,
)
from philipjose.epmd.registry import Registry

__all__ = [
    "DEFAULT_PACKET_TIMEOUT",
    "EpmdServer",
    "default_max_connections",
    "is_local_peer",
    "is_loopback",
    "open_listeners",
    "parse_addresses",
    "serve",
]

logger = logging.getLogger("philipjose.epmd")

DEFAULT_PACKET_TIMEOUT = 60.0
_READ_SIZE = 4096
_FD_RESERVE = 32


def default_max_connections() -> int:
    """1000, or fewer if the soft file descriptor limit leaves less room."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1000
    return max(16, min(1000, soft - _FD_RESERVE))


def parse_addresses(text: str | Sequence[str] | None) -> list[str] | None:
    """``"a,b c"`` or ``["a", "b"]`` -> a list of addresses; None/empty means all interfaces."""
    if text is None:
        return None
    parts = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    return parts or None


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_local_peer(peer_address: str, own_address: str) -> bool:
    """epmd's rule for "local": a loopback peer, or one whose address is the socket's own."""
    return is_loopback(peer_address) or peer_address == own_address


async def open_listeners(port: int, addresses: Sequence[str] | None = None) -> list[trio.SocketListener]:
    """Listen on ``port`` at each address (127.0.0.1 added unless loopback is covered, as epmd does).

    ``addresses=None`` listens on all IPv4 and IPv6 interfaces (IPv6 skipped if unavailable).
    ``port=0`` picks a free port, the same for every address.
    """
    implicit = addresses is None
    hosts = ["0.0.0.0", "::"] if addresses is None else list(addresses)
    covered = any(is_loopback(host) or host in ("0.0.0.0", "") for host in hosts)
    if not implicit and not covered:
        hosts.append("127.0.0.1")
    listeners: list[trio.SocketListener] = []
    try:
        for host in hosts:
            try:
                opened = await trio.open_tcp_listeners(port, host=host)
            except OSError as exc:
                if implicit and host == "::" and exc.errno != errno.EADDRINUSE:
                    logger.debug("not listening on IPv6: %s", exc)
                    continue
                raise
            listeners.extend(opened)
            if port == 0:
                port = opened[0].socket.getsockname()[1]
    except BaseException:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        raise
    return listeners


@dataclass(slots=True, eq=False)
class _Peer:
    id: int
    address: str
    local: bool
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    registered: bool = False


_Handler = Callable[[trio.SocketStream, ServerConnection, _Peer, Any], Awaitable[None]]


class EpmdServer:
    """The server's state and connection handling; :func:`serve` binds and runs one.

    ``registry`` holds the registrations, ``port`` the bound port (after start), ``connection_count``
    the open connections. :meth:`stop` ends :meth:`serve_listeners` (as an accepted KILL does).
    ``idle_timeout``: seconds with no registration and no connection after which it stops by itself
    (None, the default: never; see the module doc).
    """

    def __init__(
        self,
        *,
        relaxed_command_check: bool = False,
        packet_timeout: float = DEFAULT_PACKET_TIMEOUT,
        max_connections: int | None = None,
        max_remembered: int = 1000,
        idle_timeout: float | None = None,
    ) -> None:
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout!r}")
        self.idle_timeout = idle_timeout
        self.registry = Registry(max_remembered=max_remembered)
        self.relaxed_command_check = relaxed_command_check
        self.packet_timeout = packet_timeout
        self.max_connections = default_max_connections() if max_connections is None else max_connections
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.port = 0
        self.listeners: list[trio.SocketListener] = []
        self._peers: OrderedDict[int, _Peer] = OrderedDict()
        self._ids = itertools.count(1)
        self._stopped = trio.Event()
        self._changed = trio.Event()
        self._finished = trio.Event()
        self._handlers: dict[type[Request], _Handler] = {
            Alive2Request: self._on_alive2,
            PortPleaseRequest: self._on_port_please,
            NamesRequest: self._on_names,
            DumpRequest: self._on_dump,
            KillRequest: self._on_kill,
            StopRequest: self._on_stop,
        }

    @property
    def connection_count(self) -> int:
        return len(self._peers)

    async def wait_until(self, predicate: Callable[[Registry], bool]) -> None:
        """Wait until ``predicate(self.registry)`` is true (checked now and after each change)."""
        while not predicate(self.registry):
            await self._changed.wait()

    def _note_change(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_stopped(self) -> None:
        """Wait until :meth:`serve_listeners` has closed its listeners and connections."""
        await self._finished.wait()

    def stop(self) -> None:
        """Make :meth:`serve_listeners` close everything and return."""
        self._stopped.set()

    async def serve_listeners(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[EpmdServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on ``listeners`` until :meth:`stop` or an accepted KILL; started value: self."""
        self.listeners = listeners
        self.port = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._handle, listeners)
                where = ", ".join(
                    "{}:{}".format(*listener.socket.getsockname()[:2]) for listener in listeners
                )
                logger.info("EPMD listening on %s", where)
                if self.idle_timeout is not None:
                    nursery.start_soon(self._stop_when_idle, self.idle_timeout)
                task_status.started(self)
                await self._stopped.wait()
                nursery.cancel_scope.cancel()
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            self._finished.set()
        logger.info("EPMD on port %d stopped", self.port)

    def _idle(self) -> bool:
        return not len(self.registry) and not self._peers

    async def _stop_when_idle(self, timeout: float) -> None:
        """Stop the server once it has been idle (see :meth:`_idle`) for ``timeout`` seconds in a row;
        every change (a connection opened or closed, a registration) restarts the count."""
        while True:
            while not self._idle():
                await self._changed.wait()
            with trio.move_on_after(timeout):
                await self._changed.wait()
                continue
            if self._idle():
                logger.info("EPMD on port %d: no node registered for %gs; exiting", self.port, timeout)
                self.stop()
                return

    # --- connections -------------------------------------------------------------------------------

    def _admit(self, stream: trio.SocketStream) -> _Peer | None:
        try:
            peer_addr = stream.socket.getpeername()[0]
            own_addr = stream.socket.getsockname()[0]
        except OSError:
            return None
        if len(self._peers) >= self.max_connections:
            victim = next((p for p in self._peers.values() if not p.registered), None)
            if victim is None:
                logger.warning(
                    "connection cap %d reached by registrations; refusing %s", self.max_connections, peer_addr
                )
                return None
            logger.warning(
                "connection cap %d reached; closing the oldest idle connection (from %s)",
                self.max_connections,
                victim.address,
            )
            victim.scope.cancel()
            del self._peers[victim.id]
        peer = _Peer(next(self._ids), peer_addr, is_local_peer(peer_addr, own_addr))
        self._peers[peer.id] = peer
        self._note_change()
        return peer

    async def _handle(self, stream: trio.SocketStream) -> None:
        peer = self._admit(stream)
        if peer is None:
            await trio.aclose_forcefully(stream)
            return
        try:
            with peer.scope:
                await self._converse(stream, peer)
        except EpmdProtocolError as exc:
            logger.warning("closing connection from %s: %s", peer.address, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            logger.debug("connection from %s failed: %s", peer.address, exc)
        except Exception:
            logger.exception("error while serving %s; closing that connection", peer.address)
        finally:
            self._peers.pop(peer.id, None)
            entry = self.registry.unregister_owner(peer.id)
            if entry is not None:
                logger.info("unregistered %r (port %d)", entry.info.name, entry.info.port)
            self._note_change()
            await trio.aclose_forcefully(stream)

    async def _next_event(
        self, stream: trio.SocketStream, conn: ServerConnection
    ) -> Request | ConnectionClosed:
        while True:
            event = conn.next_event()
            if event is not NEED_DATA:
                return event
            conn.receive_data(await stream.receive_some(_READ_SIZE))

    async def _converse(self, stream: trio.SocketStream, peer: _Peer) -> None:
        conn = ServerConnection()
        with trio.move_on_after(self.packet_timeout) as timer:
            event = await self._next_event(stream, conn)
        if timer.cancelled_caught:
            logger.info(
                "closing connection from %s: no request within %ss", peer.address, self.packet_timeout
            )
            return
        if isinstance(event, ConnectionClosed):
            return
        logger.debug("%s from %s", type(event).__name__, peer.address)
        await self._handlers[type(event)](stream, conn, peer, event)

    async def _reply(self, stream: trio.SocketStream, conn: ServerConnection, reply: Reply) -> bool:
        with trio.move_on_after(self.packet_timeout):
            await stream.send_all(conn.send(reply))
            return True
        return False

    def _refuse_remote(self, peer: _Peer, request: Request) -> bool:
        if peer.local:
            return False
        logger.warning("%s from non-local address %s refused", type(request).__name__, peer.address)
        return True

    # --- requests ----------------------------------------------------------------------------------

    async def _on_alive2(
        self, stream: trio.SocketStream, conn: ServerConnection, peer: _Peer, request: Alive2Request
    ) -> None:
        if self._refuse_remote(peer, request):
            return
        entry = self.registry.register(request.info, peer.id, seed=int(time.time()))
        extended = request.highest_version >= 6
        if entry is None:
            logger.warning(
                "refused to register %r from %s: name in use or invalid", request.name, peer.address
            )
            await self._reply(stream, conn, Alive2Reply(1, 99, extended))
            return
        peer.registered = True
        self._note_change()
        logger.info(
            "registered %r at port %d (type %d, versions %d-%d), creation %d",
            request.name,
            request.port,
            request.node_type,
            request.lowest_version,
            request.highest_version,
            entry.creation,
        )
        if not await self._reply(stream, conn, Alive2Reply(0, entry.creation, extended)):
            return
        await self._next_event(stream, conn)  # returns on close; raises on any byte sent

    async def _on_port_please(
        self, stream: trio.SocketStream, conn: ServerConnection, peer: _Peer, request: PortPleaseRequest
    ) -> None:
        info = self.registry.lookup(request.name)
        await self._reply(stream, conn, PortReply(1) if info is None else PortReply(0, info))

    async def _on_names(
        self, stream: trio.SocketStream, conn: ServerConnection, peer: _Peer, request: NamesRequest
    ) -> None:
        await self._reply(stream, conn, NamesReply(self.port, tuple(self.registry.names())))

    async def _on_dump(
        self, stream: trio.SocketStream, conn: ServerConnection, peer: _Peer, request: DumpRequest
    ) -> None:
        if self._refuse_remote(peer, request):
            return
        parts = [
            f"active name     <{e.info.name}> at port {e.info.port}, fd = {e.owner}\n\x00"
            for e in self.registry.registrations()
        ]
        parts += [
            f"old/unused name <{name}>, port = 0, fd = 0 \n\x00" for name, _ in self.registry.remembered()
        ]
        await self._reply(stream, conn, DumpReply(self.port, "".join(parts)))

    async def _on_kill(
        self, stream: trio.SocketStream, conn: ServerConnection, peer: _Peer, request: KillRequest
    ) -> None:
        if self._refuse_remote(peer, request):
            return
        if len(self.registry) and not self.relaxed_command_check:
            logger.warning("KILL refused: nodes are registered")
            await self._reply(stream, conn, KillReply(False))
            return
        await self._reply(stream, conn, KillReply(True))
        logger.info("KILL accepted from %s", peer.address)
        self.stop()

    async def _on_stop(
        self, stream: trio.SocketStream, conn: ServerConnection, peer: _Peer, request: StopRequest
    ) -> None:
        if self._refuse_remote(peer, request):
            return
        if not self.relaxed_command_check:
            logger.warning("STOP %r refused: relaxed command checking is off", request.name)
            return
        entry = self.registry.unregister_name(request.name)
        if entry is not None:
            logger.info("STOP: unregistered %r", request.name)
            self._note_change()
            owner = self._peers.get(entry.owner) if isinstance(entry.owner, int) else None
            if owner is not None:
                owner.scope.cancel()
        await self._reply(stream, conn, StopReply(entry is not None))


async def serve(
    port: int | None = None,
    address: str | Sequence[str] | None = None,
    *,
    relaxed_command_check: bool = False,
    packet_timeout: float = DEFAULT_PACKET_TIMEOUT,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    task_status: trio.TaskStatus[EpmdServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an EPMD server until cancelled, :meth:`EpmdServer.stop`, or an accepted KILL.

    ``port``: default ``$ERL_EPMD_PORT`` else 4369; 0 picks a free one. ``address``: addresses to
    listen on (comma-separated string or list; loopback always added); None = all interfaces.
    With ``nursery.start(serve, ...)`` the started value is the :class:`EpmdServer` (``.port``,
    ``.registry``). ``idle_timeout``: stop after that many seconds with no node registered and no
    connection (None: never). Raises OSError (e.g. ``EADDRINUSE``) if it cannot listen.
    """
    server = EpmdServer(
        relaxed_command_check=relaxed_command_check,
        packet_timeout=packet_timeout,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
    )
    listeners = await open_listeners(default_epmd_port() if port is None else port, parse_addresses(address))
    await server.serve_listeners(listeners, task_status=task_status)
