"""The Trio node: listener, one connection per peer, ticks, routing of signals both ways.

Theory of operation
-------------------
A :class:`Node` is the runtime's ``dist`` (it implements the actors layer's ``DistributionHooks``).
It keeps one :class:`_Peer` per remote node it talks to. A hook (``send``, ``link``, ...) turns the
signal into a control event and hands it to the peer: if the connection is up, the event is encoded at
once (so an unencodable term raises in the sender) and the frame is appended to the peer's outgoing
list, which its writer task flushes in batches; if not, the event waits in the peer's pending list and
a connect task is started (connect on first use). Hooks never block.

Each connection runs three tasks: a reader (bytes -> sans-I/O :class:`Connection` -> events -> the
runtime's entry points ``deliver``, ``link_remote``, ``exit_signal``, ``monitor_remote``, ...), a
writer, and a ticker. On plain TCP the reader reads the socket directly (``_read_socket``: every
frame of a chunk is handled before the next read, a short read is followed by a short busy-poll,
``busy_wait``, then a wait for readability); with TLS it reads the ``SSLStream`` (``_read_stream``).
Every ``net_ticktime / 4`` seconds the ticker sends a tick if nothing was written
in that period, and declares the peer dead if nothing was read in the last four periods (OTP's rule).
When a connection ends for any reason the peer is forgotten, the runtime's ``node_down`` fires
``noconnection`` to every link and monitor across it, and processes that called ``monitor_node`` get
``(nodedown, Node)``. The next signal to that node connects again.

Handshakes (:mod:`philipjose.node.handshake`) run under ``handshake_timeout``. Two nodes that connect
to each other at the same time are resolved as OTP does: the acceptor whose name is greater answers
``nok`` (its own attempt wins), the other answers ``ok_simultaneous`` and drops its own attempt; a
connection attempt from a node that is already connected gets ``alive``.

TLS (``tls=``, :mod:`philipjose.node.tls`): every connection, accepted or made, is wrapped in a
``trio.SSLStream`` and the TLS handshake (under ``handshake_timeout`` too) comes before anything else,
as in OTP's ``inet_tls_dist``; the distribution handshake then runs inside TLS with 4-byte message
lengths. A peer that does not speak TLS, or whose certificate does not verify, is refused and logged.
Direct non-blocking writes (see ``_queue``) and reads go to the raw socket, so they are off with TLS.

Back-pressure (OTP's ``dist_buf_busy_limit``): each connection counts the bytes queued for it (the
writer's list plus the batch it is writing). A message send that leaves more than
``dist_buf_busy_limit`` bytes queued makes the connection *busy*: the message is queued all the same,
and ``send`` returns an event (``_Peer.busy``) that the runtime holds the sending process on until
the writer has drained the queue to half the limit (or the connection is gone). A sender that was
held and sends again while more than ``_HARD_FACTOR`` times the limit is queued gets ``Busy`` instead,
so a loop of sends that never awaits cannot grow the queue without bound. Ticks and control signals
(links, exits, monitors, spawn requests and replies) are counted but never held or refused. Signals
queued while the connection is being set up are not counted (they wait at most ``handshake_timeout``).

Bad input: anything a peer does wrong (a malformed handshake, a wrong cookie, an oversized or
undecodable frame, silence) closes that peer's connection and is logged; the node keeps serving.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, Final

import trio

from philipjose.actors import Busy, Runtime
from philipjose.epmd import EpmdError, port_please
from philipjose.node import control as c
from philipjose.node.connection import Connection
from philipjose.node.errors import AuthenticationError, HandshakeRefused, ProtocolError
from philipjose.node.flags import ADVERTISED, DFLAG_ALIAS, flag_names, missing_mandatory
from philipjose.node.framing import DEFAULT_MAX_FRAME_SIZE, TICK_BYTES, Tick
from philipjose.node.handshake import (
    Challenge,
    Handshake,
    HandshakeEvent,
    SendName,
    Status,
    split_node_name,
)
from philipjose.node.sentinels import NEED_DATA
from philipjose.node.tls import TLSConfig
from philipjose.term import Atom, EncodeError, Pid, Reference

__all__ = [
    "DEFAULT_BUSY_WAIT",
    "DEFAULT_DIST_BUF_BUSY_LIMIT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_NET_TICKTIME",
    "Node",
    "decide_status",
]

log: Final = logging.getLogger("philipjose.node")

DEFAULT_NET_TICKTIME: Final = 60.0
DEFAULT_HANDSHAKE_TIMEOUT: Final = 7.0  # OTP's net_setuptime
DEFAULT_BUSY_WAIT: Final = 0.0002  # seconds a plain-TCP reader polls after its socket runs dry
DEFAULT_DIST_BUF_BUSY_LIMIT: Final = 1 << 20  # bytes queued on a connection before it is busy (OTP's)
_HARD_FACTOR: Final = 64  # a held sender that sends on past this many limits queued gets Busy

_RECV_SIZE: Final = 1 << 16  # under glibc's mmap threshold (128 KiB), above which each read would mmap
_DIRECT_WRITES: Final = 8  # direct (task-switch-free) writes allowed per chunk read
_READ_BUDGET: Final = 8  # full reads in a row before the plain-TCP reader yields to other tasks
_NODEDOWN: Final = Atom("nodedown")
_TLS_HANDSHAKE_RECORD: Final = b"\x16\x03"  # how a TLS ClientHello starts (record type, version)
_SPAWN_REPLY: Final = Atom("spawn_reply")
_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_NOTSUP: Final = Atom("notsup")


_CONNECT_ERRORS: Final = (
    OSError,
    EpmdError,
    ProtocolError,
    ValueError,
    trio.TooSlowError,
    trio.BrokenResourceError,
)


class _TLSFailed(ConnectionError):
    """The TLS handshake of an outgoing connection failed (no TLS there, or a certificate refused)."""


def _cause(exc: BaseException) -> str:
    """What an error from ``trio.SSLStream`` is about (trio wraps the ``ssl`` error it caught)."""
    inner = exc.__cause__ or exc.__context__
    if isinstance(exc, trio.TooSlowError):
        return "too slow"
    return str(inner or exc) or type(inner or exc).__name__


def _peername(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except (OSError, ValueError):
        return "an unknown address"
    return f"{host}:{port}"


def decide_status(ours: str, theirs: str, state: str | None) -> str:
    """The status an acceptor answers to a name message from ``theirs`` (pure; OTP's rules).

    ``state`` is what we have with that node: ``"up"`` (a live connection), ``"outgoing"`` (our own
    attempt is under way), ``"incoming"`` (another accepted attempt is under way) or ``None``.
    """
    if state == "up":
        return "alive"
    if state == "incoming":
        return "nok"
    if state == "outgoing":
        # Simultaneous connect: the greater name's own attempt wins (names compared as bytes).
        return "nok" if ours.encode() > theirs.encode() else "ok_simultaneous"
    return "ok"


class _Peer:
    """Everything the node keeps about one remote node."""

    __slots__ = (
        "busy",
        "conn",
        "direct",
        "done",
        "flags",
        "held",
        "incoming",
        "node",
        "out",
        "outgoing",
        "pending",
        "queued",
        "raw",
        "reads",
        "scope",
        "sending",
        "stream",
        "unlink_id",
        "up",
        "wake",
        "writes",
    )

    def __init__(self, node: Atom) -> None:
        self.node = node
        self.up = False
        self.flags = 0
        self.conn: Connection | None = None
        self.stream: trio.abc.Stream | None = None
        self.pending: list[c.ControlEvent] = []
        self.out: list[bytes] = []
        self.wake = trio.Event()
        self.outgoing: trio.CancelScope | None = None
        self.incoming = False
        self.done = trio.Event()
        self.scope: trio.CancelScope | None = None
        self.reads = 0
        self.writes = 0
        self.unlink_id = 0
        self.raw: socket.socket | None = None  # a dup of the socket, for direct non-blocking writes
        self.direct = 0  # direct writes left before the next read (then the writer task batches)
        self.sending = False  # the writer task is inside send_all
        self.queued = 0  # bytes in ``out`` and in the batch the writer is sending
        self.busy: trio.Event | None = None  # while busy: set when drained (back-pressure)
        self.held: set[Pid] = set()  # senders held back since the connection became busy

    def state(self) -> str | None:
        if self.up:
            return "up"
        if self.incoming:
            return "incoming"
        if self.outgoing is not None:
            return "outgoing"
        return None


SpawnHandler = Callable[["Node", Atom, c.SpawnRequest], None]
SpawnReplyHandler = Callable[["Node", Atom, c.SpawnReply], bool]
DemonitorHandler = Callable[["Node", Atom, c.DemonitorP], None]


class Node:
    """A distributed node inside one runtime. Made by :func:`philipjose.node.start`.

    Attributes: ``name`` (Atom), ``cookie`` (bytes), ``creation``, ``port`` (the listening port),
    ``net_ticktime``, ``handshake_timeout``, ``max_frame_size``, ``epmd_port`` (None: default),
    ``peer_ports`` (node name -> port, consulted before EPMD when connecting), ``spawn_handler``
    (called for SPAWN_REQUEST; the default answers ``notsup``), ``spawn_reply_handler`` (called
    for SPAWN_REPLY; returns True when it handled it, else the reply is delivered to its process
    as ``(spawn_reply, ReqId, ok | error, Result)``) and ``demonitor_handler`` (told of every
    DEMONITOR_P after the runtime handled it). ``philipjose.rpc`` sets these three. ``tls`` (a
    :class:`~philipjose.node.tls.TLSConfig`, or None for plain TCP): with it the node accepts and
    makes only TLS connections. ``busy_wait`` (seconds, default 0.0002; 0 turns it off): how long
    a plain-TCP connection's reader keeps polling after its socket runs dry (see ``_read_socket``).
    ``dist_buf_busy_limit`` (bytes, default 1 MiB as OTP's): how many bytes may be queued on one
    connection before a process sending to it is held back (see *Back-pressure* above).
    """

    def __init__(
        self,
        rt: Runtime,
        name: str,
        cookie: bytes,
        creation: int,
        *,
        net_ticktime: float = DEFAULT_NET_TICKTIME,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        epmd_port: int | None = None,
        peer_ports: dict[str, int] | None = None,
        tls: TLSConfig | None = None,
        busy_wait: float = DEFAULT_BUSY_WAIT,
        dist_buf_busy_limit: int = DEFAULT_DIST_BUF_BUSY_LIMIT,
    ) -> None:
        self.rt = rt
        self.busy_wait = busy_wait
        self.dist_buf_busy_limit = dist_buf_busy_limit
        self.tls = tls
        self._length_size = 2 if tls is None else 4  # handshake length prefix (OTP: packet 2 / 4)
        self.name = Atom(name)
        self.cookie = cookie
        self.creation = creation
        self.port = 0
        self.net_ticktime = net_ticktime
        self.handshake_timeout = handshake_timeout
        self.max_frame_size = max_frame_size
        self.epmd_port = epmd_port
        self.peer_ports = dict(peer_ports or {})
        self.spawn_handler: SpawnHandler | None = None
        self.spawn_reply_handler: SpawnReplyHandler | None = None
        self.demonitor_handler: DemonitorHandler | None = None
        self.peers: dict[Atom, _Peer] = {}
        self.node_monitors: dict[Atom, list[Pid]] = {}
        self._handlers: dict[type, Callable[[_Peer, Any], None]] = {
            c.Link: self._on_link,
            c.Exit: self._on_exit,
            c.Exit2: self._on_exit2,
            c.UnlinkId: self._on_unlink_id,
            c.UnlinkIdAck: self._on_nothing,
            c.Unlink: self._on_unlink,
            c.MonitorP: self._on_monitor,
            c.DemonitorP: self._on_demonitor,
            c.MonitorPExit: self._on_monitor_exit,
            c.AliasSend: self._on_alias_send,
            c.SpawnRequest: self._on_spawn_request,
            c.SpawnReply: self._on_spawn_reply,
            c.GroupLeader: self._on_nothing,
            c.UnknownControl: self._on_unknown,
        }

    def __repr__(self) -> str:
        return f"<Node {self.name} port={self.port} peers={sorted(self.nodes())}>"

    # ------------------------------------------------------------------ queries

    def nodes(self) -> list[Atom]:
        """The nodes with a live connection."""
        return [node for node, peer in self.peers.items() if peer.up]

    # ------------------------------------------------------------------ DistributionHooks

    def send(self, sender: Pid, to: Pid | tuple[Atom, Atom] | Reference, msg: Any) -> trio.Event | None:
        """Send ``msg`` to a remote pid, ``(name, node)`` or alias (connects on first use).

        Returns None, or, when the connection is busy, the event to hold the sender on (set when the
        connection has drained to half of ``dist_buf_busy_limit``, or is gone). Raises :class:`Busy`
        (nothing sent) when ``sender`` was already held and the connection holds more than
        ``_HARD_FACTOR`` times the limit.
        """
        event: c.ControlEvent
        if type(to) is Pid:
            node = to.node
            event = c.Send(to, msg, sender)
        elif type(to) is tuple:
            node = Atom(to[1])
            event = c.RegSend(sender, Atom(to[0]), msg)
        else:
            assert isinstance(to, Reference)
            node = to.node
            event = c.AliasSend(sender, to, msg)
        peer = self.peers.get(node)
        if peer is None or not peer.up:
            self._emit(node, event)
            return None
        busy = peer.busy
        limit = self.dist_buf_busy_limit
        if busy is not None and sender in peer.held and peer.queued > limit * _HARD_FACTOR:
            raise Busy(
                f"the connection to {node} is busy ({peer.queued} bytes queued, over {_HARD_FACTOR} x "
                f"dist_buf_busy_limit) and this sender keeps sending without waiting: use "
                "'await pj.send_wait(...)', or await pj.receive between sends",
                node,
            )
        frame = self._encode(peer, event)
        if frame is not None:
            self._queue(peer, frame)
        if busy is None:
            if peer.queued <= limit:
                return None
            busy = peer.busy = trio.Event()
            log.debug("the connection to %s is busy (%d bytes queued)", node, peer.queued)
        peer.held.add(sender)
        return busy

    def busy(self, node: Atom) -> bool:
        """True when the connection to ``node`` is busy (see *Back-pressure* in the module doc)."""
        peer = self.peers.get(node)
        return peer is not None and peer.busy is not None

    @staticmethod
    def _resume(peer: _Peer) -> None:
        """The connection to ``peer`` has drained (or is gone): let the senders it held go on."""
        busy = peer.busy
        if busy is not None:
            peer.busy = None
            peer.held.clear()
            busy.set()

    def link(self, local: Pid, remote: Pid) -> None:
        self._emit(remote.node, c.Link(local, remote))

    def unlink(self, local: Pid, remote: Pid) -> None:
        peer = self.peers.get(remote.node)
        if peer is None:  # no connection: no link can exist across it
            return
        peer.unlink_id += 1
        self._emit(remote.node, c.UnlinkId(peer.unlink_id, local, remote))

    def exit(self, sender: Pid, to: Pid, reason: Any, *, link: bool) -> None:
        event: c.ControlEvent = c.Exit(sender, to, reason) if link else c.Exit2(sender, to, reason)
        if link and to.node not in self.peers:
            return  # the connection is gone: the remote side already got noconnection
        self._emit(to.node, event)

    def monitor(self, watcher: Pid, target: Pid | tuple[Atom, Atom], ref: Reference) -> None:
        if type(target) is Pid:
            self._emit(target.node, c.MonitorP(watcher, target, ref))
        else:
            assert isinstance(target, tuple)
            self._emit(Atom(target[1]), c.MonitorP(watcher, Atom(target[0]), ref))

    def demonitor(self, watcher: Pid, target: Pid | tuple[Atom, Atom], ref: Reference) -> None:
        item: Pid | Atom
        if isinstance(target, Pid):
            node, item = target.node, target
        else:
            node, item = Atom(target[1]), Atom(target[0])
        if node in self.peers:
            self._emit(node, c.DemonitorP(watcher, item, ref))

    def monitor_exit(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        if watcher.node not in self.peers:
            return
        self._emit(watcher.node, c.MonitorPExit(target, watcher, ref, reason))

    # ------------------------------------------------------------------ outgoing signals

    def _emit(self, node: Atom, event: c.ControlEvent) -> None:
        peer = self.peers.get(node)
        if peer is None:
            peer = self._new_peer(node)
            self._start_connect(peer)
        if peer.up:
            frame = self._encode(peer, event)
            if frame is not None:
                self._queue(peer, frame)
        else:
            peer.pending.append(event)

    @staticmethod
    def _queue(peer: _Peer, frame: bytes) -> None:
        """Send ``frame`` on ``peer``'s connection, in order, without blocking.

        Replies (a few frames per frame received) are written at once with a non-blocking send,
        which saves a task switch per message in request/reply traffic; everything else, and
        whatever a direct write could not take, goes to the writer task, which sends in batches.
        """
        raw = peer.raw
        if raw is not None and peer.direct > 0 and not peer.out and not peer.sending:
            peer.direct -= 1
            try:
                sent = raw.send(frame)
            except OSError:  # would block, or broken: the writer task sees the error for itself
                sent = 0
            if sent == len(frame):
                peer.writes += 1
                return
            frame = frame[sent:]
        peer.out.append(frame)
        peer.queued += len(frame)
        peer.wake.set()

    def _encode(self, peer: _Peer, event: c.ControlEvent) -> bytes | None:
        if type(event) is c.AliasSend and not peer.flags & DFLAG_ALIAS:
            log.debug("dropping an alias send to %s, which does not support aliases", peer.node)
            return None
        assert peer.conn is not None
        return peer.conn.send(event)

    def _new_peer(self, node: Atom) -> _Peer:
        peer = _Peer(node)
        self.peers[node] = peer
        return peer

    def _start_connect(self, peer: _Peer) -> None:
        self.rt.start_system_task(self._connect, peer)

    def ensure_connecting(self, node: Atom) -> _Peer:
        """The peer for ``node``, starting a connection attempt if there is none."""
        peer = self.peers.get(node)
        if peer is None:
            peer = self._new_peer(node)
            self._start_connect(peer)
        return peer

    def monitor_node(self, pid: Pid, node: Atom) -> None:
        """``pid`` gets ``(nodedown, node)`` when the connection to ``node`` goes down (or fails)."""
        self.node_monitors.setdefault(node, []).append(pid)
        self.ensure_connecting(node)

    def demonitor_node(self, pid: Pid, node: Atom) -> None:
        """Remove one ``monitor_node`` of ``node`` by ``pid``."""
        pids = self.node_monitors.get(node)
        if pids and pid in pids:
            pids.remove(pid)
            if not pids:
                del self.node_monitors[node]

    def disconnect(self, node: Atom) -> bool:
        """Close the connection to ``node``; True if there was one (``nodedown`` follows)."""
        peer = self.peers.get(node)
        if peer is None or not peer.up or peer.scope is None:
            return False
        peer.scope.cancel()
        return True

    # ------------------------------------------------------------------ connecting

    async def _open_stream(self, node: Atom) -> trio.abc.Stream:
        alive, host = split_node_name(str(node))
        port = self.peer_ports.get(str(node))
        if port is None:
            info = await port_please(alive, host, epmd_port=self.epmd_port, timeout=self.handshake_timeout)
            if info is None:
                raise ConnectionError(f"{node} is not registered with EPMD on {host}")
            if info.highest_version < 6:
                raise ConnectionError(f"{node} only speaks handshake version {info.highest_version}")
            port = info.port
        stream = await trio.open_tcp_stream(host, port)
        if self.tls is None:
            return stream
        tls_stream = trio.SSLStream(stream, self.tls.client, server_hostname=host)
        try:
            await tls_stream.do_handshake()
        except BaseException as exc:
            await trio.aclose_forcefully(tls_stream)
            if isinstance(exc, trio.BrokenResourceError):
                raise _TLSFailed(f"TLS handshake with {node} failed: {_cause(exc)}") from exc
            raise
        return tls_stream

    async def _connect(self, peer: _Peer) -> None:
        node = peer.node
        stream: trio.abc.Stream | None = None
        machine: Handshake | None = None
        refused = ""
        with trio.CancelScope() as scope:
            peer.outgoing = scope
            try:
                with trio.fail_after(self.handshake_timeout):
                    stream = await self._open_stream(node)
                    machine = await self._initiate(stream, node)
            except HandshakeRefused as exc:
                refused = exc.status
            except AuthenticationError:
                log.warning("connection to %s refused: the cookies differ", node)
            except _TLSFailed as exc:
                log.warning("cannot connect to %s: %s", node, exc)
            except (
                OSError,
                EpmdError,
                ProtocolError,
                ValueError,
                trio.TooSlowError,
                trio.BrokenResourceError,
            ) as exc:
                log.info("cannot connect to %s: %s", node, exc)
        peer.outgoing = None
        if machine is not None and stream is not None and self.peers.get(node) is peer and not peer.up:
            await self._run_connection(peer, stream, machine)
            return
        if machine is not None:  # another connection to that node won meanwhile
            log.info("dropping a duplicate connection to %s", node)
        if stream is not None:
            await trio.aclose_forcefully(stream)
        if refused == "nok":
            # The other node's own attempt wins: wait for it to arrive as an incoming connection.
            with trio.move_on_after(self.handshake_timeout):
                await peer.done.wait()
        if not peer.up and not peer.incoming:
            self._give_up(peer)

    async def _initiate(self, stream: trio.abc.Stream, node: Atom) -> Handshake:
        machine = Handshake(initiator=True, cookie=self.cookie, length_size=self._length_size)
        await stream.send_all(machine.send(SendName(str(self.name), ADVERTISED, self.creation)))
        status = await self._hs_event(stream, machine)
        assert isinstance(status, Status)
        if status.status == "alive":
            # We have no connection to it (or we would not connect): the old one is dead.
            await stream.send_all(machine.send(Status("true")))
        elif status.status not in ("ok", "ok_simultaneous"):
            raise HandshakeRefused(status.status)
        challenge = await self._hs_event(stream, machine)
        assert isinstance(challenge, Challenge)
        if challenge.name != str(node):
            raise ProtocolError(f"connected to {node} but it calls itself {challenge.name}")
        await stream.send_all(machine.send(machine.challenge_reply(secrets.randbits(32))))
        await self._hs_event(stream, machine)  # the ack (checked by the machine)
        return machine

    async def _hs_event(self, stream: trio.abc.Stream, machine: Handshake) -> HandshakeEvent:
        while True:
            event = machine.next_event()
            if event is not NEED_DATA:
                return event  # type: ignore[return-value]
            data = await stream.receive_some(4096)
            if not data:
                raise ProtocolError(f"the peer closed the connection during the handshake ({machine.state})")
            machine.receive_data(data)

    async def accept(self, stream: trio.SocketStream) -> None:
        """Serve one incoming TCP connection: the handshake, then the connection (never raises)."""
        try:
            if self.tls is None:
                await self._accept(stream)
            else:
                await self._accept_tls(stream)
        except Exception:  # the boundary: a bug in handling one peer must not stop the listener
            log.exception("error while serving an incoming connection")
        finally:
            await trio.aclose_forcefully(stream)

    async def _accept_tls(self, stream: trio.SocketStream) -> None:
        assert self.tls is not None
        tls_stream = trio.SSLStream(stream, self.tls.server, server_side=True)
        try:
            with trio.fail_after(self.handshake_timeout):
                await tls_stream.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            who = _peername(stream)
            log.warning("refused a connection from %s: TLS handshake failed: %s", who, _cause(exc))
            return
        try:
            await self._accept(tls_stream)
        finally:
            await trio.aclose_forcefully(tls_stream)

    async def _accept(self, stream: trio.abc.Stream) -> None:
        machine = Handshake(initiator=False, cookie=self.cookie, length_size=self._length_size)
        peer: _Peer | None = None
        who = "an unnamed peer"
        try:
            with trio.fail_after(self.handshake_timeout):
                name = await self._hs_event(stream, machine)
                assert isinstance(name, SendName)
                who = name.name
                missing = missing_mandatory(name.flags)
                if missing:
                    await stream.send_all(machine.send(Status("not_allowed")))
                    log.warning("refused %s: it lacks distribution flags %s", who, flag_names(missing))
                    return
                node = Atom(name.name)
                if node == self.name:
                    await stream.send_all(machine.send(Status("not_allowed")))
                    log.warning("refused a connection that claims to be this node (%s)", node)
                    return
                peer = self.peers.get(node)
                status = decide_status(str(self.name), name.name, None if peer is None else peer.state())
                if status == "nok":
                    await stream.send_all(machine.send(Status("nok")))
                    return
                await stream.send_all(machine.send(Status(status)))
                if status == "alive":
                    answer = await self._hs_event(stream, machine)
                    assert isinstance(answer, Status)
                    if answer.status != "true":
                        return
                    assert peer is not None
                    self._lose(peer)  # the peer says the old connection is dead
                    peer = None
                if status == "ok_simultaneous" and peer is not None and peer.outgoing is not None:
                    peer.outgoing.cancel()
                if peer is None:
                    peer = self._new_peer(node)
                peer.incoming = True
                challenge = Challenge(str(self.name), ADVERTISED, secrets.randbits(32), self.creation)
                await stream.send_all(machine.send(challenge))
                await self._hs_event(stream, machine)  # the reply (its digest checked by the machine)
                await stream.send_all(machine.send(machine.challenge_ack()))
        except AuthenticationError:
            log.warning("refused a connection from %s: wrong cookie", who)
            self._accept_failed(peer)
            return
        except (ProtocolError, trio.TooSlowError, trio.BrokenResourceError, OSError) as exc:
            if self.tls is None and machine.trailing_data.startswith(_TLS_HANDSHAKE_RECORD):
                log.warning("refused a TLS connection: this node does not use TLS (%s)", exc)
            else:
                log.warning("handshake with %s failed: %s", who, exc)
            self._accept_failed(peer)
            return
        if self.peers.get(peer.node) is not peer:  # pragma: no cover - replaced meanwhile
            return
        peer.incoming = False
        await self._run_connection(peer, stream, machine)

    def _accept_failed(self, peer: _Peer | None) -> None:
        if peer is None:
            return
        peer.incoming = False
        if not peer.up and peer.outgoing is None:
            self._give_up(peer)

    # ------------------------------------------------------------------ a live connection

    async def _run_connection(self, peer: _Peer, stream: trio.abc.Stream, machine: Handshake) -> None:
        conn = Connection(
            machine.flags, max_frame_size=self.max_frame_size, max_message_size=self.max_frame_size
        )
        conn.receive_data(machine.trailing_data)
        peer.conn = conn
        peer.flags = machine.flags
        peer.stream = stream
        if isinstance(stream, trio.SocketStream):  # not with TLS: the bytes must go through SSLStream
            raw = stream.socket
            peer.raw = socket.fromfd(raw.fileno(), raw.family, raw.type)
            peer.raw.setblocking(False)
        peer.up = True
        for event in peer.pending:
            try:
                frame = self._encode(peer, event)
            except (EncodeError, ValueError, TypeError) as exc:
                log.error("dropped a signal to %s queued before connecting: %s", peer.node, exc)
                continue
            if frame is not None:
                peer.out.append(frame)
                peer.queued += len(frame)
        peer.pending = []
        peer.done.set()
        log.info("connected to %s (flags %s)", peer.node, hex(peer.flags))
        try:
            async with trio.open_nursery() as nursery:
                peer.scope = nursery.cancel_scope
                nursery.start_soon(self._reader, peer, stream, conn, nursery.cancel_scope)
                nursery.start_soon(self._writer, peer, stream, nursery.cancel_scope)
                nursery.start_soon(self._ticker, peer, nursery.cancel_scope)
        finally:
            self._lose(peer)
            if peer.raw is not None:
                trio.lowlevel.notify_closing(peer.raw)
                peer.raw.close()
                peer.raw = None
            await trio.aclose_forcefully(stream)

    async def _reader(
        self, peer: _Peer, stream: trio.abc.Stream, conn: Connection, scope: trio.CancelScope
    ) -> None:
        try:
            if peer.raw is not None:
                await self._read_socket(peer, peer.raw, conn)
            else:
                await self._read_stream(peer, stream, conn)
        except ProtocolError as exc:
            log.warning("closing the connection to %s: %s", peer.node, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("connection to %s lost: %s", peer.node, exc)
        except Exception:  # a bug while handling this peer's signal: close only this connection
            log.exception("closing the connection to %s after an internal error", peer.node)
        scope.cancel()

    async def _read_stream(self, peer: _Peer, stream: trio.abc.Stream, conn: Connection) -> None:
        """The reader for any stream (TLS): receive a chunk, handle every event in it, repeat."""
        while True:
            data = await stream.receive_some(_RECV_SIZE)
            if not data:
                log.info("%s closed the connection", peer.node)
                return
            peer.reads += 1
            peer.direct = _DIRECT_WRITES
            conn.receive_data(data)
            self._dispatch(peer, conn)

    async def _read_socket(self, peer: _Peer, sock: socket.socket, conn: Connection) -> None:
        """The reader for plain TCP, straight from the (non-blocking) socket.

        Each chunk read is handled whole (every frame in it decoded and delivered) before the next
        read. After a full read it reads again at once, but yields to the other tasks (a Trio
        checkpoint) every ``_READ_BUDGET`` reads, like the BEAM's reductions, so a fast sender cannot
        starve the processes its messages are for. After a short read the socket is drained: the
        reader then busy-polls for up to ``busy_wait`` seconds (yielding to the other tasks between
        polls, so the processes it just woke run and reply meanwhile) before it waits for the socket
        to become readable. The answer to a request usually comes within that time, and picking it
        up at once spares the wake-up of an idle CPU, which costs more than the request itself on a
        virtual machine; the BEAM's schedulers busy-wait for the same reason. It costs CPU only while
        the connection is busy: at most ``busy_wait`` seconds after each chunk.
        """
        recv = sock.recv
        checkpoint = trio.lowlevel.checkpoint
        wait_readable = trio.lowlevel.wait_readable
        clock = time.perf_counter
        busy_wait = self.busy_wait
        fd = sock.fileno()
        budget = _READ_BUDGET
        polling = False  # busy-polling a drained socket
        deadline = 0.0
        while True:
            try:
                data = recv(_RECV_SIZE)
            except BlockingIOError:
                if polling and clock() < deadline:
                    await checkpoint()
                else:
                    polling = False
                    await wait_readable(fd)
                continue
            if not data:
                log.info("%s closed the connection", peer.node)
                return
            peer.reads += 1
            peer.direct = _DIRECT_WRITES
            conn.receive_data(data)
            self._dispatch(peer, conn)
            if len(data) == _RECV_SIZE:  # more is probably waiting
                budget -= 1
                if not budget:
                    budget = _READ_BUDGET
                    await checkpoint()
            else:
                budget = _READ_BUDGET
                if busy_wait:
                    polling = True
                    deadline = clock() + busy_wait
                    await checkpoint()
                else:
                    await wait_readable(fd)

    def _dispatch(self, peer: _Peer, conn: Connection) -> None:
        """Hand every complete event buffered in ``conn`` to the runtime (sends first: the hot path)."""
        deliver = self.rt.deliver
        handlers = self._handlers
        next_event = conn.next_event
        while True:
            event = next_event()
            kind = type(event)
            if kind is c.RegSend or kind is c.Send:
                deliver(event.to, event.message)  # type: ignore[union-attr]
            elif event is NEED_DATA:
                return
            elif kind is not Tick:
                handlers[kind](peer, event)

    async def _writer(self, peer: _Peer, stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
        try:
            while True:
                if not peer.out:
                    peer.wake = trio.Event()
                    await peer.wake.wait()
                    continue
                data = b"".join(peer.out)
                peer.out.clear()
                peer.writes += 1
                peer.sending = True
                await stream.send_all(data)
                peer.sending = False
                peer.queued -= len(data)
                if peer.busy is not None and peer.queued <= self.dist_buf_busy_limit // 2:
                    self._resume(peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("connection to %s lost while writing: %s", peer.node, exc)
        scope.cancel()

    async def _ticker(self, peer: _Peer, scope: trio.CancelScope) -> None:
        interval = self.net_ticktime / 4
        last_reads, last_writes, silent = peer.reads, peer.writes, 0
        while True:
            await trio.sleep(interval)
            if peer.reads == last_reads:
                silent += 1
                if silent >= 4:
                    log.warning(
                        "%s not responding for %s s: closing the connection", peer.node, self.net_ticktime
                    )
                    scope.cancel()
                    return
            else:
                silent = 0
            if peer.writes == last_writes and not peer.out:
                peer.out.append(TICK_BYTES)
                peer.queued += len(TICK_BYTES)
                peer.wake.set()
            last_reads, last_writes = peer.reads, peer.writes

    def _lose(self, peer: _Peer) -> None:
        """The connection to ``peer`` is gone (or replaced): forget it, tell the runtime and watchers."""
        was_up = peer.up
        peer.up = False
        self._resume(peer)  # what it held is lost with the connection (as in OTP): nothing to wait for
        if peer.scope is not None:
            peer.scope.cancel()
        if self.peers.get(peer.node) is peer:
            del self.peers[peer.node]
        if was_up:
            log.info("connection to %s closed", peer.node)
            self._node_down(peer.node)

    def _give_up(self, peer: _Peer) -> None:
        """No connection could be made: drop what waited and report the node down."""
        peer.pending = []
        peer.done.set()
        if self.peers.get(peer.node) is peer:
            del self.peers[peer.node]
            self._node_down(peer.node)

    def _node_down(self, node: Atom) -> None:
        self.rt.node_down(node)
        for pid in self.node_monitors.pop(node, []):
            self.rt.send(pid, (_NODEDOWN, node))

    # ------------------------------------------------------------------ incoming signals

    def _check_sender(self, peer: _Peer, pid: Pid) -> None:
        if pid.node != peer.node:
            raise ProtocolError(f"{peer.node} sent a signal on behalf of {pid!r}, a process of another node")

    def _emit_now(self, peer: _Peer, event: c.ControlEvent) -> None:
        frame = self._encode(peer, event)
        if frame is not None:
            self._queue(peer, frame)

    def _on_link(self, peer: _Peer, event: c.Link) -> None:
        self._check_sender(peer, event.sender)
        self.rt.link_remote(event.to, event.sender)

    def _on_unlink_id(self, peer: _Peer, event: c.UnlinkId) -> None:
        self._check_sender(peer, event.sender)
        self.rt.unlink_remote(event.to, event.sender)
        self._emit_now(peer, c.UnlinkIdAck(event.id, event.to, event.sender))

    def _on_unlink(self, peer: _Peer, event: c.Unlink) -> None:
        self._check_sender(peer, event.sender)
        self.rt.unlink_remote(event.to, event.sender)

    def _on_exit(self, peer: _Peer, event: c.Exit) -> None:
        self._check_sender(peer, event.sender)
        self.rt.exit_signal(event.sender, event.to, event.reason, link=True)

    def _on_exit2(self, peer: _Peer, event: c.Exit2) -> None:
        self._check_sender(peer, event.sender)
        self.rt.exit_signal(event.sender, event.to, event.reason, link=False)

    def _on_monitor(self, peer: _Peer, event: c.MonitorP) -> None:
        self._check_sender(peer, event.watcher)
        self.rt.monitor_remote(event.watcher, event.target, event.ref)

    def _on_demonitor(self, peer: _Peer, event: c.DemonitorP) -> None:
        self._check_sender(peer, event.watcher)
        self.rt.demonitor_remote(event.watcher, event.target, event.ref)
        if self.demonitor_handler is not None:
            self.demonitor_handler(self, peer.node, event)

    def _on_monitor_exit(self, peer: _Peer, event: c.MonitorPExit) -> None:
        target = event.target
        item: Any = target if type(target) is Pid else (target, peer.node)
        if type(target) is Pid:
            self._check_sender(peer, target)
        self.rt.monitor_down(event.watcher, event.ref, item, event.reason)

    def _on_alias_send(self, peer: _Peer, event: c.AliasSend) -> None:
        self.rt.deliver(event.alias, event.message)

    def _on_spawn_request(self, peer: _Peer, event: c.SpawnRequest) -> None:
        self._check_sender(peer, event.sender)
        if self.spawn_handler is not None:
            self.spawn_handler(self, peer.node, event)
        else:
            self._emit_now(peer, c.SpawnReply(event.req_id, event.sender, 0, _NOTSUP))

    def _on_spawn_reply(self, peer: _Peer, event: c.SpawnReply) -> None:
        if self.spawn_reply_handler is not None and self.spawn_reply_handler(self, peer.node, event):
            return
        ok = type(event.result) is Pid
        self.rt.deliver(event.to, (_SPAWN_REPLY, event.req_id, _OK if ok else _ERROR, event.result))

    def _on_unknown(self, peer: _Peer, event: c.UnknownControl) -> None:
        log.warning("ignoring an unknown control message from %s: %.200r", peer.node, event.control)

    def _on_nothing(self, peer: _Peer, event: Any) -> None:
        pass

    def reply_spawn(self, node: Atom, reply: c.SpawnReply) -> None:
        """Send a SPAWN_REPLY to ``node`` (for a ``spawn_handler``)."""
        self._emit(node, reply)

    def send_control(self, node: Atom, event: c.ControlEvent) -> None:
        """Send any control event to ``node``, connecting on first use (for services such as rpc)."""
        self._emit(node, event)
