"""An established distribution connection, sans-I/O: frames in, events out; events in, bytes out.

Theory of operation: after the handshake (:mod:`philipjose.node.handshake`) both sides exchange
4-byte-length frames. :class:`Connection` feeds received bytes to a
:class:`~philipjose.node.framing.FrameDecoder`, which yields ticks and whole (reassembled) messages;
each message is decoded into a control event (:mod:`philipjose.node.control`). Sending is the
reverse, choosing the wire variant the negotiated ``flags`` allow. The object holds no timers: the
node layer sends :data:`TICK_BYTES` and watches for silence.

Large messages need not be decoded here: :meth:`Connection.next_event_or_large` hands a message of
``LARGE_MESSAGE`` bytes or more back undecoded, as a :class:`~philipjose.node.framing.DistMessage`,
and the caller decodes it with :meth:`Connection.decode` where it likes (the node does it in a
worker thread, so that the event loop keeps serving other connections meanwhile). Small messages
are decoded at once: they cannot take long.

Memory: see :mod:`philipjose.node.framing` for what is buffered (``max_buffered``); a decoded
message may build at most one container per ``CONTAINER_RATIO`` bytes of its encoding (plus about a million),
and a compressed term in a pass-through frame may inflate to at most ``MAX_INFLATED`` bytes.

A node's :class:`~philipjose.term.styles.TermStyle` (``style``, default: none) is applied here, to
the user terms of each event decoded (in the thread that decodes it) and sent.

A message that does not decode raises :class:`~philipjose.node.errors.ProtocolError`; the node layer
then closes this connection (as OTP does) and keeps all others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from philipjose.node import control as c
from philipjose.node.control import ControlCodec, ControlEvent, encode_event
from philipjose.node.flags import DFLAG_DIST_HDR_ATOM_CACHE, DFLAG_FRAGMENTS
from philipjose.node.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    TICK_BYTES,
    DistMessage,
    FrameDecoder,
    OversizedMessage,
    Tick,
)
from philipjose.node.sentinels import Sentinel
from philipjose.node.terms import CONTAINER_RATIO, MAX_INFLATED
from philipjose.term.styles import DEFAULT_STYLE, TermStyle

__all__ = ["CONTAINER_RATIO", "LARGE_MESSAGE", "MAX_INFLATED", "TICK_BYTES", "Connection"]

#: Messages of at least this many bytes are returned undecoded by ``next_event`` (64 KiB: the
#: slowest such message to decode, a 64 KiB deep nest, takes some 20 ms).
LARGE_MESSAGE: Final = 1 << 16
#: How a compressed term starts: a pass-through frame holding these bytes may inflate to
#: ``MAX_INFLATED`` bytes, so it counts as large.
_COMPRESSED: Final = b"\x83P"


class Connection:
    """One side of an established connection with negotiated ``flags``.

    Limits (see :mod:`philipjose.node.framing`): ``max_frame_size``, ``max_message_size`` and
    ``max_buffered`` (None: twice the larger size). Pass-through frames are refused when the flags
    include ``DFLAG_FRAGMENTS`` or the atom cache, as ERTS refuses them.
    """

    def __init__(
        self,
        flags: int,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_buffered: int | None = None,
        style: TermStyle = DEFAULT_STYLE,
    ) -> None:
        self.flags = flags
        self._codec = ControlCodec(flags)
        self._decoded = style.decoded if style.converts_input else None
        self._encoding = style.encoding if style.converts_output else None
        self._large_codec = ControlCodec(flags)  # for decode(), which may run in a thread meanwhile
        self._frames = FrameDecoder(
            max_frame_size=max_frame_size,
            max_message_size=max_message_size,
            max_buffered=max_buffered,
            pass_through=not flags & (DFLAG_FRAGMENTS | DFLAG_DIST_HDR_ATOM_CACHE),
        )

    @property
    def buffered(self) -> int:
        """Received bytes not yet handed on (open fragment sequences included)."""
        return self._frames.buffered

    def receive_data(self, data: bytes | bytearray) -> None:
        """Append bytes received from the peer."""
        self._frames.receive_data(data)

    def next_event(self) -> Tick | ControlEvent | OversizedMessage | Sentinel:
        """The next :class:`Tick`, control event or :class:`~philipjose.node.framing.OversizedMessage`
        (a message over ``max_message_size``, refused), or ``NEED_DATA`` (every message decoded here)."""
        event = self.next_event_or_large()
        if type(event) is DistMessage:
            return self.decode(event)
        return event  # type: ignore[return-value]

    def next_event_or_large(self) -> Tick | ControlEvent | DistMessage | OversizedMessage | Sentinel:
        """Like :meth:`next_event`, but a message of ``LARGE_MESSAGE`` bytes or more (or a pass-through
        one that may hold a compressed term) comes back undecoded, as a :class:`DistMessage`, for the
        caller to :meth:`decode` where it likes."""
        frame = self._frames.next_frame()
        if type(frame) is tuple:
            data = frame[0]
            if len(data) < LARGE_MESSAGE and type(data) is bytes and not (frame[2] and _COMPRESSED in data):
                event = self._codec.decode_frame(data, frame[1], frame[2])
                return event if self._decoded is None else restyled(event, self._decoded)
            return DistMessage(*frame)  # large, or a pass-through frame that may hold a compressed term
        return frame  # type: ignore[return-value]  # a Tick or NEED_DATA

    def decode(self, message: DistMessage) -> ControlEvent:
        """Decode a message :meth:`next_event` handed back (safe to call from another thread while
        the connection sends and receives; not while another message of it is decoded)."""
        data = message.data
        if type(data) is not bytes:
            gathered = data
            data = bytes(gathered)
            gathered.clear()  # type: ignore[union-attr]  # free it now, not when the message goes
        event = self._large_codec.decode_frame(data, message.offset, message.versioned)
        return event if self._decoded is None else restyled(event, self._decoded)

    def send(self, event: ControlEvent) -> bytes:
        """The frame that carries ``event``."""
        if self._encoding is not None:
            event = restyled(event, self._encoding)
        return self._codec.encode(event)

    def encode_large(self, event: ControlEvent) -> bytes:
        """Like :meth:`send`, without the codec's caches: safe to call from a worker thread (for a
        large message) while the connection sends and receives."""
        if self._encoding is not None:
            event = restyled(event, self._encoding)
        return encode_event(event, self.flags)

    @staticmethod
    def tick() -> bytes:
        """The bytes of a tick."""
        return TICK_BYTES


_MESSAGE: Final = (c.Send, c.RegSend, c.AliasSend)
_REASON: Final = (c.Exit, c.Exit2, c.MonitorPExit)


def restyled(event: ControlEvent, convert: Callable[[Any], Any]) -> ControlEvent:
    """``event`` with its user terms (a message, an exit reason, spawn arguments) passed through
    ``convert`` (a :class:`~philipjose.term.styles.TermStyle` method); other events unchanged."""
    if isinstance(event, _MESSAGE):
        return replace(event, message=convert(event.message))
    if isinstance(event, _REASON):
        return replace(event, reason=convert(event.reason))
    if isinstance(event, c.SpawnRequest):
        return replace(event, args=convert(event.args))
    return event
