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

Handshakes (:mod:`philipjose.node.handshake`) run under ``handshake_timeout``; who wins when
attempts concern one node name is decided by the pure functions of :mod:`philipjose.node.arbiter`
(OTP's rules): simultaneous connects by name order (``nok`` / ``ok_simultaneous``), a node already
connected gets ``alive``. An accepted attempt touches nothing the node has -- the connection, our own
attempt, the signals queued for that node -- until its peer has proved the cookie: only then may it
replace the old connection or take over from our own attempt. So a peer without the cookie cannot
disconnect, lock out or drop the signals of the node whose name it claims.

Log lines about a peer name its address; a name is "claimed" until the cookie is proved. Repeated
warnings about one host are rate limited (:class:`~philipjose.node.ratelimit.RateLimiter`: 5 per
minute per host and kind, with a count of those held back).

TLS (``tls=``, :mod:`philipjose.node.tls`): every connection, accepted or made, is wrapped in a
``trio.SSLStream`` and the TLS handshake (under ``handshake_timeout`` too) comes before anything else,
as in OTP's ``inet_tls_dist``; the distribution handshake then runs inside TLS with 4-byte message
lengths. A peer that does not speak TLS, or whose certificate does not verify, is refused and logged.
Direct non-blocking writes (see ``_queue``) and reads go to the raw socket, so they are off with TLS.

Back-pressure (OTP's ``dist_buf_busy_limit``): each connection counts the bytes queued for it (the
writer's list plus the batch it is writing). A message send that leaves more than
``dist_buf_busy_limit`` bytes queued makes the connection *busy*: the message is queued all the same,
and ``send`` returns an event (``_Peer.busy``) that the runtime holds the sending process on until
the writer has drained the queue to half the limit (or the connection is gone). A process that was
held and, before it waits, sends more than ``_HARD_FACTOR`` times the limit in further messages
smaller than the limit gets ``Busy`` instead, so a loop of sends that never waits cannot grow the
queue without bound; a message of at least the limit is always queued (its size is the sender's own
data, and OTP too queues the message that makes a connection busy), and tasks that are not
processes are never refused (they are the runtime's own machinery, with their own flow control, or
code that waits with ``send_wait``). Ticks and control signals
(links, exits, monitors, spawn requests and replies) are counted but never held or refused. While a
connection is being set up, signals wait as events (their size is not known before the flags are):
once more than ``dist_buf_busy_limit // 256`` messages wait (4096 by default), a message send returns
``_Peer.done`` instead, so its sender is held until the connection is up or has failed.

Large messages: a message over 64 KiB goes out in fragments to a peer that negotiated
``DFLAG_FRAGMENTS``, interleaved with everything else on the connection: the writer's queue
(:mod:`philipjose.node.outqueue`) keeps a lane per sender with a large message in progress, so
ticks and other processes' messages never wait behind it and each sender's signals keep their
order. ``send`` encodes a message at once when a bounded walk (:func:`~.ordering.cheap_to_encode`)
finds it small; a larger one gets its place in its sender's lane and is encoded in a worker thread
by the connection's encoder task (one at a time, in order), and its sender is held at its next
``receive`` until then. Received messages of 64 KiB or more are decoded in a worker thread too,
per sender (``_decode_later``): the reader reads on and holds back only that sender's later events.
``max_message_size`` bounds a message both ways; over it the message
alone is refused (``MessageTooLarge`` from ``send``, or an exit signal ``system_limit`` to the
sender of a thread-encoded one; a received one is skipped and logged) and the connection goes on.

Bad input: anything a peer does wrong (a malformed handshake, a wrong cookie, an oversized or
undecodable frame, silence) closes that peer's connection and is logged; the node keeps serving.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import trio

from philipjose.actors import Busy, Runtime
from philipjose.epmd import EpmdError, port_please
from philipjose.node import control as c
from philipjose.node.arbiter import (
    INSTALL,
    REFUSE,
    REPLACE,
    decide_alive_reply,
    decide_outgoing_done,
    decide_proven,
    decide_status,
)
from philipjose.node.connection import Connection
from philipjose.node.errors import AuthenticationError, HandshakeRefused, MessageTooLarge, ProtocolError
from philipjose.node.flags import (
    ADVERTISED,
    DFLAG_ALIAS,
    DFLAG_FRAGMENTS,
    DFLAG_NAME_ME,
    DFLAG_PUBLISHED,
    flag_names,
    missing_mandatory,
)
from philipjose.node.fragments import FRAGMENT_SIZE
from philipjose.node.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    TICK_BYTES,
    DistMessage,
    OversizedMessage,
    Tick,
)
from philipjose.node.handshake import (
    RECV_CHALLENGE_ACK,
    Challenge,
    Handshake,
    HandshakeEvent,
    SendName,
    Status,
    split_node_name,
    waiting_for,
)
from philipjose.node.names import assign_dynamic_name, mixed_names_refusal
from philipjose.node.ordering import cheap_to_encode, control_sender, event_sender
from philipjose.node.outqueue import OutQueue, Reserved
from philipjose.node.ratelimit import RateLimiter
from philipjose.node.sentinels import NEED_DATA
from philipjose.node.terms import decode_term
from philipjose.node.tls import TLSConfig
from philipjose.term import Atom, EncodeError, Pid, Reference
from philipjose.term.styles import DEFAULT_STYLE, TermStyle

__all__ = [
    "DEFAULT_BUSY_WAIT",
    "DEFAULT_DIST_BUF_BUSY_LIMIT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_NET_TICKTIME",
    "NODE_KINDS",
    "Node",
    "decide_status",
]

log: Final = logging.getLogger("philipjose.node")

DEFAULT_NET_TICKTIME: Final = 60.0
DEFAULT_HANDSHAKE_TIMEOUT: Final = 7.0  # OTP's net_setuptime
DEFAULT_BUSY_WAIT: Final = 0.0002  # seconds a plain-TCP reader polls after its socket runs dry
DEFAULT_DIST_BUF_BUSY_LIMIT: Final = 1 << 20  # bytes queued on a connection before it is busy (OTP's)
_HARD_FACTOR: Final = 64  # a held process that sends on this many limits without waiting gets Busy

_RECV_SIZE: Final = 1 << 16  # under glibc's mmap threshold (128 KiB), above which each read would mmap
_DIRECT_WRITES: Final = 8  # direct (task-switch-free) writes allowed per chunk read
_READ_BUDGET: Final = 8  # full reads in a row before the plain-TCP reader yields to other tasks
_NODEDOWN: Final = Atom("nodedown")
_NODEUP: Final = Atom("nodeup")
NODE_KINDS: Final = ("visible", "hidden", "connected")
_TLS_HANDSHAKE_RECORD: Final = b"\x16\x03"  # how a TLS ClientHello starts (record type, version)
_SPAWN_REPLY: Final = Atom("spawn_reply")
_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_NOTSUP: Final = Atom("notsup")
_MAX_CONNECT_ERRORS: Final = 256  # failure reasons kept in Node.connect_errors
_SYSTEM_LIMIT: Final = Atom("system_limit")
_BADARG: Final = Atom("badarg")
_CONTROL_HEAD: Final = 4096  # bytes of a large message read on the loop for its control message
_UNKNOWN: Final = object()  # the ordering key of a large message whose control message is not at hand


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


class _CookieRefused(AuthenticationError):
    """The acceptor closed the connection after our challenge reply: it did not accept our cookie."""


def _cause(exc: BaseException) -> str:
    """What an error from ``trio.SSLStream`` is about (trio wraps the ``ssl`` error it caught)."""
    inner = exc.__cause__ or exc.__context__
    if isinstance(exc, trio.TooSlowError):
        return "too slow"
    return str(inner or exc) or type(inner or exc).__name__


def _peername(stream: trio.abc.Stream) -> str:
    """``host:port`` of the peer of a socket stream (or of the socket under a TLS stream)."""
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if not isinstance(stream, trio.SocketStream):
        return "an unknown address"
    try:
        host, port = stream.socket.getpeername()[:2]
    except (OSError, ValueError):
        return "an unknown address"
    return f"{host}:{port}"


def _host(address: str) -> str:
    """The host part of ``host:port`` (the key for rate limiting a peer's log lines)."""
    return address.rpartition(":")[0] or address


def _payload(event: c.ControlEvent) -> Any:
    """The part of a signal that may be large (None for signals without one)."""
    kind = type(event)
    if kind is c.Send or kind is c.RegSend or kind is c.AliasSend:
        return event.message  # type: ignore[union-attr]
    if kind is c.Exit or kind is c.Exit2 or kind is c.MonitorPExit:
        return event.reason  # type: ignore[union-attr]
    if kind is c.SpawnRequest:
        return event.args  # type: ignore[union-attr]
    return None


def _encode_in_thread(conn: Connection, event: c.ControlEvent) -> tuple[bytes | None, str]:
    """``event``'s frame, or None and why it does not encode (run in a worker thread)."""
    try:
        return conn.encode_large(event), ""
    except (EncodeError, ValueError, TypeError, RecursionError) as exc:
        return None, f"it does not encode: {exc}"


class _Peer:
    """Everything the node keeps about one remote node."""

    __slots__ = (
        "address",
        "busy",
        "bytes_in",
        "bytes_out",
        "conn",
        "decoding",
        "direct",
        "done",
        "encoder_wake",
        "encodes",
        "flags",
        "held",
        "held_pid",
        "held_spent",
        "in_drained",
        "in_waiting",
        "inlanes",
        "node",
        "nursery",
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
        self.out = OutQueue(fragments=False)  # replaced when the connection is up
        self.wake = trio.Event()
        self.nursery: trio.Nursery | None = None  # the connection's tasks, once up
        # Large messages to encode in a thread, in order: (place, event, sender, set when done).
        self.encodes: deque[tuple[Reserved, c.ControlEvent, Pid | None, trio.Event]] = deque()
        self.encoder_wake = trio.Event()
        # Received: per ordering key, the events waiting behind a large message being decoded.
        self.inlanes: dict[Any, deque[Any]] = {}
        self.in_waiting = 0  # bytes of large messages waiting in inlanes to be decoded
        self.in_drained = trio.Event()
        self.decoding = trio.CapacityLimiter(1)  # one decoding thread per connection
        self.outgoing: trio.CancelScope | None = None  # our own connection attempt, while it runs
        self.address = ""  # host:port of the connection's peer, once connected
        self.done = trio.Event()
        self.scope: trio.CancelScope | None = None
        self.reads = 0
        self.writes = 0
        self.bytes_in = 0  # bytes read and written on the connection (after the handshake; for views)
        self.bytes_out = 0
        self.unlink_id = 0
        self.raw: socket.socket | None = None  # a dup of the socket, for direct non-blocking writes
        self.direct = 0  # direct writes left before the next read (then the writer task batches)
        self.sending = False  # the writer task is inside send_all
        self.queued = 0  # bytes in ``out`` and in the batch the writer is sending
        self.busy: trio.Event | None = None  # while busy: set when drained (back-pressure)
        # Senders held since it became busy -> bytes sent since; the latest sender is kept apart (a Pid
        # hashes slowly, and a busy connection usually has one sender sending many messages).
        self.held: dict[Pid, int] = {}
        self.held_pid: Pid | None = None
        self.held_spent = -1

    def __str__(self) -> str:
        """The node's name and address, for log lines."""
        return f"{self.node} ({self.address})" if self.address else str(self.node)


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
    ``max_message_size`` (bytes, default 1 GiB): the largest message sent or received (see *Large
    messages* above). ``connect_errors``: node name -> why the last attempt to connect to it
    failed (removed when an attempt succeeds; the most recent 256 are kept). ``hidden``: the node
    was started hidden. ``allow_mixed_names`` (default False): when True the node connects to long
    and short names alike instead of refusing as OTP does (see ``docs/distribution.md``); the
    farm's workers set it, since their names are labels and they connect only to their farmer.
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
        hidden: bool = False,
        style: TermStyle = DEFAULT_STYLE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.rt = rt
        self.hidden = hidden
        self.allow_mixed_names = False  # True: connect to long and short names alike (farm workers)
        self.style = style
        self.flags = ADVERTISED if hidden else ADVERTISED | DFLAG_PUBLISHED  # what we advertise
        self.max_message_size = max_message_size
        self.busy_wait = busy_wait
        self.dist_buf_busy_limit = dist_buf_busy_limit
        self._pending_limit = max(64, dist_buf_busy_limit // 256)  # messages waiting for a connection
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
        self.node_watchers: list[tuple[Pid, str]] = []  # monitor_nodes: (pid, kind), in call order
        self.connect_errors: dict[Atom, str] = {}
        self._log_limiter = RateLimiter()
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
            c.GroupLeader: self._on_group_leader,
            c.UnknownControl: self._on_unknown,
            OversizedMessage: self._on_oversized,
        }

    def __repr__(self) -> str:
        return f"<Node {self.name} port={self.port} peers={sorted(self.nodes())}>"

    # ------------------------------------------------------------------ queries

    def nodes(self, kind: str = "connected") -> list[Atom]:
        """The nodes with a live connection: all of them (``"connected"``, the default), or only the
        ``"visible"`` or the ``"hidden"`` ones (OTP's ``nodes(visible | hidden | connected)``)."""
        if kind == "connected":
            return [node for node, peer in self.peers.items() if peer.up]
        if kind not in NODE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(NODE_KINDS)}, not {kind!r}")
        visible = kind == "visible"
        return [
            node for node, peer in self.peers.items() if peer.up and self._visible(peer) is visible
        ]

    def is_visible(self, node: Atom) -> bool:
        """True when ``node`` is connected and the connection is visible (see :meth:`_visible`)."""
        peer = self.peers.get(node)
        return peer is not None and peer.up and self._visible(peer)

    @staticmethod
    def _visible(peer: _Peer) -> bool:
        """OTP's rule (``dist_util:publish_type``): a connection is visible when both nodes publish
        themselves (``DFLAG_PUBLISHED``); ``peer.flags`` are the bits both sides set."""
        return bool(peer.flags & DFLAG_PUBLISHED)

    def monitor_nodes(self, pid: Pid, flag: bool, kind: str = "visible") -> None:
        """``net_kernel:monitor_nodes/2``: with ``flag``, ``pid`` gets ``(nodeup, Node)`` and
        ``(nodedown, Node)`` for every connection of ``kind`` (``"visible"``, ``"hidden"``,
        ``"connected"``) that comes up or goes down; each call adds one subscription (as in OTP, two
        calls mean two messages). Without ``flag`` one subscription of ``pid`` for ``kind`` goes."""
        if kind not in NODE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(NODE_KINDS)}, not {kind!r}")
        if flag:
            self.node_watchers.append((pid, kind))
        elif (pid, kind) in self.node_watchers:
            self.node_watchers.remove((pid, kind))

    def _tell_watchers(self, tag: Atom, peer: _Peer) -> None:
        if not self.node_watchers:
            return
        kind = "visible" if self._visible(peer) else "hidden"
        alive = self.rt.lookup
        self.node_watchers = [(pid, k) for pid, k in self.node_watchers if alive(pid)]
        for pid, wanted in self.node_watchers:
            if wanted == kind or wanted == "connected":
                self.rt.send(pid, (tag, peer.node))

    def connected(self, node: Atom) -> bool:
        """True when the connection to ``node`` is up (what OTP's ``noconnect`` sends check)."""
        peer = self.peers.get(node)
        return peer is not None and peer.up

    def _warn(self, host: str, template: str, *args: object) -> None:
        """Log a warning about a peer at ``host``, at most 5 of one ``template`` per host a minute."""
        allowed, held = self._log_limiter.allow((host, template), time.monotonic())
        if allowed:
            if held:
                template += " (%d more like this from %s not logged)"
                args = (*args, held, host)
            log.warning(template, *args)

    # ------------------------------------------------------------------ DistributionHooks

    def send(self, sender: Pid, to: Pid | tuple[Atom, Atom] | Reference, msg: Any) -> trio.Event | None:
        """Send ``msg`` to a remote pid, ``(name, node)`` or alias (connects on first use).

        Returns None, or, when the connection is busy, the event to hold the sender on (set when the
        connection has drained to half of ``dist_buf_busy_limit``, or is gone). Raises :class:`Busy`
        (nothing sent) when ``sender``, a process, was held and has sent more than ``_HARD_FACTOR``
        times the limit since, in messages smaller than the limit (see the module docstring).
        A large message is encoded in a worker thread: the event returned is then set once it is
        encoded. Raises :class:`MessageTooLarge` (nothing sent) when ``msg``, encoded on the spot,
        is over ``max_message_size`` (see *Large messages* in the module docstring).
        """
        event: c.ControlEvent
        if type(to) is Pid:
            node = to.node
            event = c.Send(to, msg, sender)
            event_type: type = c.Send
        elif type(to) is tuple:
            node = Atom(to[1])
            event = c.RegSend(sender, Atom(to[0]), msg)
            event_type = c.RegSend
        else:
            assert isinstance(to, Reference)
            node = to.node
            event = c.AliasSend(sender, to, msg)
            event_type = c.AliasSend
        peer = self.peers.get(node)
        if peer is None or not peer.up:
            self._emit(node, event)
            peer = self.peers.get(node)
            if peer is not None and not peer.up and len(peer.pending) > self._pending_limit:
                return peer.done  # set when the connection is up or has failed
            return None
        conn = peer.conn
        assert conn is not None  # up
        if not cheap_to_encode(msg):
            return self._encode_later(peer, event, sender)
        busy = peer.busy
        limit = self.dist_buf_busy_limit
        spent = -1
        if busy is not None:
            if sender is peer.held_pid:
                spent = peer.held_spent
            else:  # another sender: park the latest one's count in the dict, take this one's out
                if peer.held_pid is not None:
                    peer.held[peer.held_pid] = peer.held_spent
                spent = peer.held.pop(sender, -1)
                peer.held_pid = sender
                peer.held_spent = spent
            if spent > limit * _HARD_FACTOR and (sender.id or sender.serial):  # (0, 0): not a process
                raise self._refusal(peer)
        frame = conn.send(event) if event_type is not c.AliasSend else self._encode(peer, event)
        if frame is None:
            return None
        if len(frame) > FRAGMENT_SIZE and len(frame) - 7 > self.max_message_size:
            raise self._too_large(peer, len(frame) - 7, to)
        if busy is None:  # the common case: queue it, and see whether that made the connection busy
            self._queue(peer, frame, sender)
            if peer.queued <= limit:
                return None
            busy = peer.busy = trio.Event()
            log.debug("the connection to %s is busy (%d bytes queued)", node, peer.queued)
            peer.held_pid = sender
            peer.held_spent = 0
            return busy
        size = len(frame)  # busy: the writer is writing (or has ``out`` to write), so no wake-up
        peer.queued += peer.out.push(frame, sender)  # and no direct write
        if spent < 0:
            peer.held_spent = 0
        elif size < limit:
            peer.held_spent = spent + size
        else:
            peer.held_spent = spent
        return busy

    def _too_large(self, peer: _Peer, size: int, to: Any) -> MessageTooLarge:
        text = (
            f"a message of {size} bytes to {to!r} on {peer.node} is over max_message_size "
            f"({self.max_message_size} bytes): not sent"
        )
        log.error("refused to send %s", text.removesuffix(": not sent"))
        return MessageTooLarge(text, size, self.max_message_size)

    @staticmethod
    def _refusal(peer: _Peer) -> Busy:
        return Busy(
            f"the connection to {peer.node} is busy ({peer.queued} bytes queued) and this process has "
            f"sent over {_HARD_FACTOR} x dist_buf_busy_limit to it since it was held back, without "
            "waiting: use 'await pj.send_wait(...)', or await pj.receive between sends",
            peer.node,
        )

    def busy(self, node: Atom) -> bool:
        """True when the connection to ``node`` is busy (see *Back-pressure* in the module doc)."""
        peer = self.peers.get(node)
        if peer is None:
            return False
        return peer.busy is not None or (not peer.up and len(peer.pending) > self._pending_limit)

    @staticmethod
    def _resume(peer: _Peer) -> None:
        """The connection to ``peer`` has drained (or is gone): let the senders it held go on."""
        busy = peer.busy
        if busy is not None:
            peer.busy = None
            peer.held.clear()
            peer.held_pid = None
            peer.held_spent = -1
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

    def group_leader(self, leader: Pid, to: Pid) -> None:
        self._emit(to.node, c.GroupLeader(leader, to))

    # ------------------------------------------------------------------ outgoing signals

    def _emit(self, node: Atom, event: c.ControlEvent) -> None:
        peer = self.peers.get(node)
        if peer is None:
            peer = self._new_peer(node)
            self._start_connect(peer)
        if peer.up:
            self._submit(peer, event)
        else:
            peer.pending.append(event)

    def _submit(self, peer: _Peer, event: c.ControlEvent) -> None:
        """Encode and queue a signal on a live connection: here, or in a thread if it is large.

        A signal over ``max_message_size`` is dropped with a log line; for a message (one sent
        before the connection was up, so :meth:`send` could not raise) its sender also gets an
        exit signal ``system_limit``.
        """
        sender = event_sender(event)
        payload = _payload(event)
        if payload is not None and not cheap_to_encode(payload):
            self._encode_later(peer, event, sender)
            return
        frame = self._encode(peer, event)
        if frame is None:
            return
        if len(frame) > FRAGMENT_SIZE and len(frame) - 7 > self.max_message_size:
            limit = self.max_message_size
            error = f"a message of {len(frame) - 7} bytes is over max_message_size ({limit} bytes)"
            self._refuse_sent(peer, sender, event, error, _SYSTEM_LIMIT)
            return
        self._queue(peer, frame, sender)

    def _encode_later(self, peer: _Peer, event: c.ControlEvent, sender: Pid | None) -> trio.Event | None:
        """Reserve ``sender``'s place for ``event`` and have the encoder task encode it in a thread;
        returns the event set once it is encoded (the sender is held on it, as OTP's sender waits
        while its message is encoded)."""
        if type(event) is c.AliasSend and not peer.flags & DFLAG_ALIAS:
            log.debug("dropping an alias send to %s, which does not support aliases", peer.node)
            return None
        place = peer.out.reserve(sender)
        done = trio.Event()
        peer.encodes.append((place, event, sender, done))
        peer.encoder_wake.set()
        return done

    @staticmethod
    def _queue(peer: _Peer, frame: bytes, sender: Pid | None = None) -> None:
        """Send ``frame`` from ``sender`` on ``peer``'s connection, in order, without blocking.

        Replies (a few frames per frame received) are written at once with a non-blocking send,
        which saves a task switch per message in request/reply traffic; everything else, and
        whatever a direct write could not take, goes to the writer task, which sends in batches
        (a large message as fragments, see :mod:`philipjose.node.outqueue`).
        """
        raw = peer.raw
        out = peer.out
        if (
            raw is not None
            and peer.direct > 0
            and not peer.sending
            and not out.plain
            and len(frame) <= FRAGMENT_SIZE
            and not (out.lanes and out.in_lane(sender))
        ):
            peer.direct -= 1
            try:
                sent = raw.send(frame)
            except OSError:  # would block, or broken: the writer task sees the error for itself
                sent = 0
            peer.bytes_out += sent
            if sent == len(frame):
                peer.writes += 1
                return
            frame = frame[sent:]
            peer.queued += out.push_plain(frame)  # the rest goes first
        else:
            peer.queued += out.push(frame, sender)
        peer.wake.set()

    async def _encoder(self, peer: _Peer) -> None:
        """Encode large messages in a worker thread, one at a time, in the order they were sent.

        Each goes in the place reserved for it in its sender's lane, as fragments. One over
        ``max_message_size``, or one that does not encode, is dropped with a log line and its
        sender gets an exit signal (``system_limit`` or ``badarg``, what OTP's send raises), since
        the send has long returned.
        """
        conn = peer.conn
        assert conn is not None
        while True:
            if not peer.encodes:
                peer.encoder_wake = trio.Event()
                await peer.encoder_wake.wait()
                continue
            place, event, sender, done = peer.encodes[0]
            frame, error = await trio.to_thread.run_sync(
                _encode_in_thread, conn, event, abandon_on_cancel=True
            )
            peer.encodes.popleft()
            if frame is not None and len(frame) - 7 > self.max_message_size:
                limit = self.max_message_size
                error = f"a message of {len(frame) - 7} bytes is over max_message_size ({limit} bytes)"
                frame = None
                reason = _SYSTEM_LIMIT
            else:
                reason = _BADARG
            size = peer.out.fill(place, frame)
            if frame is None:
                if error:
                    self._refuse_sent(peer, sender, event, error, reason)
            else:
                peer.queued += size
                if peer.busy is None and peer.queued > self.dist_buf_busy_limit:
                    peer.busy = trio.Event()  # later senders are held until it drains
                peer.wake.set()
            done.set()

    def _refuse_sent(
        self, peer: _Peer, sender: Pid | None, event: c.ControlEvent, error: str, reason: Atom
    ) -> None:
        """A signal could not go: log it and, for a message, tell its sender with an exit signal."""
        log.error("dropped a %s from %r to %s: %s", type(event).__name__, sender, peer.node, error)
        kind = type(event)
        if kind is not c.Send and kind is not c.RegSend and kind is not c.AliasSend:
            return
        if sender is not None and (sender.id or sender.serial) and self.rt.is_local_node(sender.node):
            self.rt.exit(sender, sender, reason)

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
        refusal = None if self.allow_mixed_names else mixed_names_refusal(str(self.name), str(node))
        if refusal is not None:  # OTP's initiating side refuses it too (inet_tcp_dist:splitnode)
            log.error("cannot connect to %s: %s", node, refusal)
            raise ConnectionError(refusal)
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
        """Our own attempt to connect to ``peer.node`` (signals wait in ``peer.pending`` meanwhile)."""
        node = peer.node
        stream: trio.abc.Stream | None = None
        machine = Handshake(initiator=True, cookie=self.cookie, length_size=self._length_size)
        connected = False
        refused = ""
        failure = ""
        with trio.CancelScope() as scope:
            peer.outgoing = scope
            try:
                with trio.fail_after(self.handshake_timeout):
                    stream = await self._open_stream(node)
                    await self._initiate(stream, machine, peer)
                    connected = True
            except HandshakeRefused as exc:
                refused = exc.status
                failure = f"it answered {exc.status!r}"
            except _CookieRefused as exc:
                failure = str(exc)
            except AuthenticationError:
                failure = "its challenge ack has a wrong digest: the cookies differ"
                log.warning("connection to %s refused: %s", node, failure)
            except _TLSFailed as exc:
                failure = str(exc)
                log.warning("cannot connect to %s: %s", node, exc)
            except trio.TooSlowError:
                if stream is None:
                    failure = f"timed out after {self.handshake_timeout:g} s looking it up or connecting"
                else:
                    waited = waiting_for(machine.state)
                    failure = f"timed out after {self.handshake_timeout:g} s waiting for {waited}"
            except (OSError, EpmdError, ProtocolError, ValueError, trio.BrokenResourceError) as exc:
                failure = str(exc) or type(exc).__name__
        peer.outgoing = None
        if connected and stream is not None and self.peers.get(node) is peer:
            if decide_outgoing_done(up=peer.up) == INSTALL:
                self.connect_errors.pop(node, None)
                peer.address = _peername(stream)
                await self._run_connection(peer, stream, machine)
                return
            log.info("dropping a duplicate connection to %s: a connection to it came up meanwhile", node)
        if stream is not None:
            await trio.aclose_forcefully(stream)
        if refused == "nok":
            # The other node's own attempt wins (name order): wait for it to arrive (OTP's initiator
            # also waits after nok, until its setup timer ends).
            log.info("%s answered nok: its own attempt to connect wins (name order); waiting for it", node)
            with trio.move_on_after(self.handshake_timeout):
                await peer.done.wait()
            failure = "it answered 'nok' (its own attempt wins) and did not connect to us"
        if peer.up:  # an accepted attempt from it was proven meanwhile and took over
            self.connect_errors.pop(node, None)
            return
        if failure:
            log.info("cannot connect to %s: %s", node, failure)
            self.connect_errors.pop(node, None)
            self.connect_errors[node] = failure
            while len(self.connect_errors) > _MAX_CONNECT_ERRORS:
                del self.connect_errors[next(iter(self.connect_errors))]
        self._give_up(peer)

    async def _initiate(self, stream: trio.abc.Stream, machine: Handshake, peer: _Peer) -> None:
        await stream.send_all(machine.send(SendName(str(self.name), self.flags, self.creation)))
        status = await self._hs_event(stream, machine)
        assert isinstance(status, Status)
        if status.status == "alive":
            # It believes it is connected to us: answer true if we have no connection (OTP: is_pending).
            reply = decide_alive_reply(up=peer.up)
            await stream.send_all(machine.send(Status(reply)))
            if reply == "false":
                raise HandshakeRefused("alive")
        elif status.status not in ("ok", "ok_simultaneous"):
            raise HandshakeRefused(status.status)
        challenge = await self._hs_event(stream, machine)
        assert isinstance(challenge, Challenge)
        if challenge.name != str(peer.node):
            raise ProtocolError(f"connected to {peer.node} but it calls itself {challenge.name}")
        await stream.send_all(machine.send(machine.challenge_reply(secrets.randbits(32))))
        await self._hs_event(stream, machine)  # the ack (checked by the machine)

    async def _hs_event(self, stream: trio.abc.Stream, machine: Handshake) -> HandshakeEvent:
        while True:
            event = machine.next_event()
            if event is not NEED_DATA:
                return event  # type: ignore[return-value]
            data = await stream.receive_some(4096)
            if not data:
                if machine.initiator and machine.state is RECV_CHALLENGE_ACK:
                    # What an OTP (or philipjose) acceptor does with a wrong digest: close, say nothing.
                    raise _CookieRefused(
                        "it closed the connection after our challenge reply: it does not accept our cookie"
                    )
                raise ProtocolError(
                    f"the peer closed the connection during the handshake (we waited for "
                    f"{waiting_for(machine.state)})"
                )
            machine.receive_data(data)

    async def accept(self, stream: trio.SocketStream) -> None:
        """Serve one incoming TCP connection: the handshake, then the connection (never raises)."""
        address = _peername(stream)
        try:
            if self.tls is None:
                await self._accept(stream, address)
            else:
                await self._accept_tls(stream, address)
        except Exception:  # the boundary: a bug in handling one peer must not stop the listener
            log.exception("error while serving an incoming connection from %s", address)
        finally:
            await trio.aclose_forcefully(stream)

    async def _accept_tls(self, stream: trio.SocketStream, address: str) -> None:
        assert self.tls is not None
        tls_stream = trio.SSLStream(stream, self.tls.server, server_side=True)
        try:
            with trio.fail_after(self.handshake_timeout):
                await tls_stream.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            reason = _cause(exc)
            if isinstance(exc, trio.TooSlowError):
                reason = f"timed out after {self.handshake_timeout:g} s"
            self._warn(
                _host(address), "refused a connection from %s: TLS handshake failed: %s", address, reason
            )
            return
        try:
            await self._accept(tls_stream, address)
        finally:
            await trio.aclose_forcefully(tls_stream)

    async def _accept(self, stream: trio.abc.Stream, address: str) -> None:
        """The acceptor's handshake, after the rules of :mod:`philipjose.node.arbiter`.

        Until the peer's challenge reply proves the cookie, nothing the node has is touched: the
        connection to the node it claims to be, our own attempt to connect to it, the signals queued
        for it. A failed attempt therefore costs only its own socket.
        """
        machine = Handshake(initiator=False, cookie=self.cookie, length_size=self._length_size)
        host = _host(address)
        who = address  # then "ADDRESS (claims to be NAME)" until the cookie is proved
        node = Atom("")
        told = ""
        try:
            with trio.fail_after(self.handshake_timeout):
                name = await self._hs_event(stream, machine)
                assert isinstance(name, SendName)
                node = Atom(name.name)
                who = f"{address} (claims to be {node})"
                missing = missing_mandatory(name.flags)
                if missing:
                    await stream.send_all(machine.send(Status("not_allowed")))
                    self._warn(
                        host,
                        "refused a connection from %s: it lacks distribution flags %s",
                        who,
                        flag_names(missing),
                    )
                    return
                if name.flags & DFLAG_NAME_ME:  # a dynamic name (erl -sname undefined): we assign one
                    taken = {str(n) for n in self.peers} | {str(self.name)}
                    assigned = assign_dynamic_name(name.name, taken, lambda: secrets.randbelow(1 << 64) + 1)
                    creation = secrets.randbelow(0xFFFFFFFF - 4) + 4
                    node = Atom(assigned)
                    who = f"{address} (named {node})"
                    told = "named"
                    await stream.send_all(machine.send(Status("named", assigned, creation)))
                elif node == self.name:
                    await stream.send_all(machine.send(Status("not_allowed")))
                    self._warn(host, "refused a connection from %s: that is this node's own name", who)
                    return
                else:
                    peer = self.peers.get(node)
                    told = decide_status(
                        str(self.name),
                        name.name,
                        up=peer is not None and peer.up,
                        outgoing=peer is not None and peer.outgoing is not None,
                    )
                    await stream.send_all(machine.send(Status(told)))
                if told == "nok":
                    log.info("answered nok to %s: our own attempt to connect to it wins (name order)", who)
                    return
                if told == "alive":
                    answer = await self._hs_event(stream, machine)
                    assert isinstance(answer, Status)
                    if answer.status != "true":
                        log.info("closing a connection from %s: it says its old connection is alive", who)
                        return
                # A dynamic name's initiator checks that we kept DFLAG_NAME_ME (dist_util: do_setnode)
                flags = self.flags | (name.flags & DFLAG_NAME_ME)
                challenge = Challenge(str(self.name), flags, secrets.randbits(32), self.creation)
                await stream.send_all(machine.send(challenge))
                await self._hs_event(stream, machine)  # the reply: the machine checks its digest
                # The peer has proved the cookie: it is `node` from here on.
                if not self._may_install(node, told, address):
                    return
                await stream.send_all(machine.send(machine.challenge_ack()))
        except AuthenticationError:
            self._warn(host, "refused a connection from %s: wrong cookie", who)
            return
        except trio.TooSlowError:
            self._warn(
                host,
                "handshake with %s failed: timed out after %g s waiting for %s",
                who,
                self.handshake_timeout,
                waiting_for(machine.state),
            )
            return
        except (ProtocolError, trio.BrokenResourceError, OSError) as exc:
            if self.tls is None and machine.trailing_data.startswith(_TLS_HANDSHAKE_RECORD):
                self._warn(host, "refused a TLS connection from %s: this node does not use TLS", address)
            else:
                self._warn(host, "handshake with %s failed: %s", who, str(exc) or type(exc).__name__)
            return
        if not self._may_install(node, told, address):  # decided again: the ack's send let others run
            return
        peer = self.peers.get(node)
        if peer is not None and peer.up:  # REPLACE: the peer proved the cookie and said true to alive
            log.info("%s at %s reconnected: its old connection (%s) is replaced", node, address, peer.address)
            self._lose(peer)
            peer = self.peers.get(node)  # None, unless the nodedown made someone send to it at once
        if peer is None:
            peer = self._new_peer(node)
        elif peer.outgoing is not None:
            peer.outgoing.cancel()  # our own attempt gives way to the proven one (OTP: "remarked")
        peer.address = address
        self.connect_errors.pop(node, None)
        await self._run_connection(peer, stream, machine)

    def _may_install(self, node: Atom, told: str, address: str) -> bool:
        """Whether a proven accepted attempt may become the connection to ``node`` (the arbiter)."""
        peer = self.peers.get(node)
        verdict = decide_proven(told, up=peer is not None and peer.up)
        if verdict == REFUSE:
            log.info(
                "closing a new connection from %s at %s: a connection to it came up meanwhile", node, address
            )
            return False
        assert verdict in (INSTALL, REPLACE)
        return True

    # ------------------------------------------------------------------ a live connection

    async def _run_connection(self, peer: _Peer, stream: trio.abc.Stream, machine: Handshake) -> None:
        conn = Connection(
            machine.flags,
            max_frame_size=self.max_frame_size,
            max_message_size=self.max_message_size,
            style=self.style,
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
        peer.out = OutQueue(fragments=bool(peer.flags & DFLAG_FRAGMENTS))
        for event in peer.pending:
            try:
                self._submit(peer, event)
            except (EncodeError, ValueError, TypeError) as exc:
                log.error("dropped a signal to %s queued before connecting: %s", peer.node, exc)
        peer.pending = []
        peer.done.set()
        log.info("connected to %s (flags %s)", peer, hex(peer.flags))
        self._tell_watchers(_NODEUP, peer)
        try:
            async with trio.open_nursery() as nursery:
                peer.scope = nursery.cancel_scope
                peer.nursery = nursery
                nursery.start_soon(self._reader, peer, stream, conn, nursery.cancel_scope)
                nursery.start_soon(self._writer, peer, stream, nursery.cancel_scope)
                nursery.start_soon(self._ticker, peer, nursery.cancel_scope)
                nursery.start_soon(self._encoder, peer)
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
            self._warn(_host(peer.address), "closing the connection to %s: %s", peer, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("connection to %s lost: %s", peer, str(exc) or type(exc).__name__)
        except Exception:  # a bug while handling this peer's signal: close only this connection
            log.exception("closing the connection to %s after an internal error", peer)
        scope.cancel()

    async def _read_stream(self, peer: _Peer, stream: trio.abc.Stream, conn: Connection) -> None:
        """The reader for any stream (TLS): receive a chunk, handle every event in it, repeat."""
        while True:
            data = await stream.receive_some(_RECV_SIZE)
            if not data:
                log.info("%s closed the connection", peer)
                return
            peer.reads += 1
            peer.bytes_in += len(data)
            peer.direct = _DIRECT_WRITES
            conn.receive_data(data)
            large = self._dispatch(peer, conn)
            if large is not None or peer.in_waiting > self.max_frame_size:
                await self._large_input(peer, conn, large)

    async def _large_input(self, peer: _Peer, conn: Connection, large: DistMessage | None) -> None:
        """A reader's slow path after a chunk: decode the ``large`` messages off the loop, handling the
        frames after each, and stop reading while large messages pile up undelivered."""
        while large is not None:
            await self._decode_off_loop(peer, conn, large)
            large = self._dispatch(peer, conn)
        while peer.in_waiting > self.max_frame_size:
            peer.in_drained = trio.Event()
            await peer.in_drained.wait()

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
                log.info("%s closed the connection", peer)
                return
            peer.reads += 1
            peer.bytes_in += len(data)
            peer.direct = _DIRECT_WRITES
            conn.receive_data(data)
            large = self._dispatch(peer, conn)
            if large is not None or peer.in_waiting > self.max_frame_size:
                await self._large_input(peer, conn, large)
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

    def _dispatch(self, peer: _Peer, conn: Connection) -> DistMessage | None:
        """Hand every complete event buffered in ``conn`` to the runtime (sends first: the hot path).

        A large message, which ``conn`` hands back undecoded, goes to the lane of its sender (see
        :meth:`_decode_later`), and so does every later event of that sender while the lane is
        open. Stops at a large message whose sender cannot be told from its first bytes, and
        returns it (the reader decodes it before it reads on).
        """
        deliver = self.rt.deliver
        handlers = self._handlers
        next_event = conn.next_event_or_large
        lanes = peer.inlanes
        while True:
            event = next_event()
            kind = type(event)
            if kind is c.RegSend or kind is c.Send:
                if lanes and event.sender in lanes:  # type: ignore[union-attr]
                    lanes[event.sender].append(event)  # type: ignore[union-attr]
                else:
                    deliver(event.to, event.message)  # type: ignore[union-attr]
            elif event is NEED_DATA:
                return None
            elif kind is DistMessage:
                if not self._decode_later(peer, conn, event):  # type: ignore[arg-type]
                    return event  # type: ignore[return-value]
            elif kind is not Tick:
                if lanes:
                    key = event_sender(event)
                    if key in lanes:
                        lanes[key].append(event)
                        continue
                handlers[kind](peer, event)

    def _decode_later(self, peer: _Peer, conn: Connection, message: DistMessage) -> bool:
        """Put a large message in its sender's lane, to be decoded in a thread while the reader
        reads on; False when its sender cannot be told from its first bytes."""
        data = message.data
        try:
            head = bytes(data[message.offset : message.offset + _CONTROL_HEAD])
            control, _ = decode_term(head, 0, message.versioned)
        except ProtocolError:
            return False
        key = control_sender(control)
        lane = peer.inlanes.get(key)
        peer.in_waiting += len(data)
        if lane is None:
            peer.inlanes[key] = deque((message,))
            assert peer.nursery is not None
            peer.nursery.start_soon(self._drain_lane, peer, conn, key)
        else:
            lane.append(message)
        return True

    async def _drain_lane(self, peer: _Peer, conn: Connection, key: Any) -> None:
        """Decode the large messages of one sender's lane in a worker thread, one at a time, and
        hand on them and the events that queued behind them, in order; close the lane when empty."""
        lane = peer.inlanes[key]
        try:
            while lane:
                item = lane[0]
                if type(item) is DistMessage:
                    peer.in_waiting -= len(item.data)
                    peer.in_drained.set()
                    async with peer.decoding:
                        event = await trio.to_thread.run_sync(
                            conn.decode, item, abandon_on_cancel=True
                        )
                    peer.reads += 1  # the decode counts as hearing from the peer (it sent this message)
                else:
                    event = item
                lane.popleft()
                self._handle(peer, event)
        except ProtocolError as exc:
            self._warn(_host(peer.address), "closing the connection to %s: %s", peer, exc)
            self._close(peer)
        except Exception:  # a bug while handling this peer's signal: close only this connection
            log.exception("closing the connection to %s after an internal error", peer)
            self._close(peer)
        else:
            del peer.inlanes[key]

    @staticmethod
    def _close(peer: _Peer) -> None:
        if peer.scope is not None:
            peer.scope.cancel()

    def _handle(self, peer: _Peer, event: Any) -> None:
        kind = type(event)
        if kind is c.RegSend or kind is c.Send:
            self.rt.deliver(event.to, event.message)
        else:
            self._handlers[kind](peer, event)

    async def _decode_off_loop(self, peer: _Peer, conn: Connection, message: DistMessage) -> None:
        """Decode a large message in a worker thread and hand it on.

        The design: messages of ``LARGE_MESSAGE`` (64 KiB) or more are decoded by
        ``trio.to_thread.run_sync``. Each goes to the lane of its sender (the pid its control
        message names, read on the loop from its first 4 KiB): the lane's task decodes it and hands
        on, in order, the sender's events that came meanwhile, while the reader reads on, so the
        peer's other processes and its ticks are served during the decode. A large message whose
        control message is not in its first 4 KiB is decoded here by the reader itself, which reads
        nothing more meanwhile. The event loop goes on serving every other connection, the ticks and
        the processes. The decoder holds the GIL while it runs, but the term codec's C
        accelerator lets it go every 4,096 elements, and with the pure-Python codec CPython hands
        the GIL to a waiting thread every ``sys.getswitchinterval()`` (5 ms) and no C call of it
        works on more than about a million elements at once, so the event loop waits a few
        milliseconds at a time, not for the whole decode. (A budgeted incremental decoder on the
        loop was the alternative; measured by ``tests/node/test_hostile_input.py`` on a loaded
        2-core VM, the thread keeps
        the worst ping of an ``erl`` canary at about 0.2 s during a 10 MB frame of ten million
        empty lists (refused by the container budget after about 4.4 million) and about 0.4 s during
        two 10^6-deep nests, and leaves the small-message path as it was.)
        """
        async with peer.decoding:
            event = await trio.to_thread.run_sync(conn.decode, message, abandon_on_cancel=True)
        peer.reads += 1  # the decode counts as hearing from the peer (it sent this message)
        key = event_sender(event)
        lane = peer.inlanes.get(key)
        if lane is not None:
            lane.append(event)
        else:
            self._handle(peer, event)

    async def _writer(self, peer: _Peer, stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
        try:
            out = peer.out
            while True:
                if not out.ready():
                    peer.wake = trio.Event()
                    await peer.wake.wait()
                    continue
                data = b"".join(out.take())
                peer.writes += 1
                peer.sending = True
                await stream.send_all(data)
                peer.sending = False
                peer.bytes_out += len(data)
                peer.queued -= len(data)
                if peer.busy is not None and peer.queued <= self.dist_buf_busy_limit // 2:
                    self._resume(peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("connection to %s lost while writing: %s", peer, str(exc) or type(exc).__name__)
        scope.cancel()

    async def _ticker(self, peer: _Peer, scope: trio.CancelScope) -> None:
        interval = self.net_ticktime / 4
        last_reads, last_writes, silent = peer.reads, peer.writes, 0
        while True:
            await trio.sleep(interval)
            if peer.reads == last_reads:
                silent += 1
                if silent >= 4:
                    self._warn(
                        _host(peer.address),
                        "%s not responding for %g s: closing the connection",
                        peer,
                        self.net_ticktime,
                    )
                    scope.cancel()
                    return
            else:
                silent = 0
            if peer.writes == last_writes and not peer.out.ready():
                peer.queued += peer.out.push_plain(TICK_BYTES)
                peer.wake.set()
            last_reads, last_writes = peer.reads, peer.writes

    def _lose(self, peer: _Peer) -> None:
        """The connection to ``peer`` is gone (or replaced): forget it, tell the runtime and watchers."""
        was_up = peer.up
        peer.up = False
        self._resume(peer)  # what it held is lost with the connection (as in OTP): nothing to wait for
        for _place, _event, _sender, done in peer.encodes:
            done.set()
        peer.encodes.clear()
        if peer.scope is not None:
            peer.scope.cancel()
        if self.peers.get(peer.node) is peer:
            del self.peers[peer.node]
        if was_up:
            log.info("connection to %s closed", peer)
            self._node_down(peer.node)
            self._tell_watchers(_NODEDOWN, peer)

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
            self._queue(peer, frame, event_sender(event))

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

    def _on_group_leader(self, peer: _Peer, event: c.GroupLeader) -> None:
        # GROUP_LEADER {From, To}: From (a pid of any node) becomes the group leader of our To;
        # a dead or unknown To is ignored, as ERTS ignores it
        self.rt.set_group_leader(event.to, event.sender)

    def _on_unknown(self, peer: _Peer, event: c.UnknownControl) -> None:
        self._warn(
            _host(peer.address), "ignoring an unknown control message from %s: %.200r", peer, event.control
        )

    def _on_oversized(self, peer: _Peer, event: OversizedMessage) -> None:
        what = "a message"
        try:
            control, _ = decode_term(event.head, 0, event.versioned)
        except ProtocolError:
            pass
        else:
            to = control[2] if type(control) is tuple and len(control) > 2 else None
            if type(control) is tuple and control and control[0] in (c.DOP_REG_SEND, c.DOP_REG_SEND_TT):
                to = control[3] if len(control) > 3 else None
            sender = control_sender(control)
            what = f"a message from {sender!r} to {to!r}" if sender is not None else f"a message to {to!r}"
        self._warn(
            _host(peer.address),
            "refused %s from %s (%d bytes or more): over max_message_size (%d bytes); the connection goes on",
            what,
            peer,
            event.size,
            event.limit,
        )

    def _on_nothing(self, peer: _Peer, event: Any) -> None:
        pass

    def reply_spawn(self, node: Atom, reply: c.SpawnReply) -> None:
        """Send a SPAWN_REPLY to ``node`` (for a ``spawn_handler``)."""
        self._emit(node, reply)

    def send_control(self, node: Atom, event: c.ControlEvent) -> None:
        """Send any control event to ``node``, connecting on first use (for services such as rpc)."""
        self._emit(node, event)
