"""An established distribution connection, sans-I/O: frames in, events out; events in, bytes out.

Theory of operation: after the handshake (:mod:`philipjose.node.handshake`) both sides exchange
4-byte-length frames. :class:`Connection` feeds received bytes to a
:class:`~philipjose.node.framing.FrameDecoder`, which yields ticks and whole (reassembled) messages;
each message is decoded into a control event (:mod:`philipjose.node.control`). Sending is the
reverse, in pass-through frames, choosing the wire variant the negotiated ``flags`` allow. The object
holds no timers: the node layer sends :data:`TICK_BYTES` and watches for silence.

A message that does not decode raises :class:`~philipjose.node.errors.ProtocolError`; the node layer
then closes this connection (as OTP does) and keeps all others.
"""

from __future__ import annotations

from philipjose.node.control import ControlCodec, ControlEvent
from philipjose.node.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_SEQUENCES,
    TICK_BYTES,
    FrameDecoder,
    Tick,
)
from philipjose.node.sentinels import Sentinel

__all__ = ["TICK_BYTES", "Connection"]


class Connection:
    """One side of an established connection with negotiated ``flags``.

    Limits (see :mod:`philipjose.node.framing`): ``max_frame_size``, ``max_message_size``,
    ``max_sequences``.
    """

    def __init__(
        self,
        flags: int,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
    ) -> None:
        self.flags = flags
        self._codec = ControlCodec(flags)
        self._frames = FrameDecoder(
            max_frame_size=max_frame_size, max_message_size=max_message_size, max_sequences=max_sequences
        )

    def receive_data(self, data: bytes | bytearray) -> None:
        """Append bytes received from the peer."""
        self._frames.receive_data(data)

    def next_event(self) -> Tick | ControlEvent | Sentinel:
        """The next :class:`Tick` or control event, or ``NEED_DATA``."""
        frame = self._frames.next_frame()
        if type(frame) is tuple:
            return self._codec.decode_frame(*frame)
        return frame  # type: ignore[return-value]  # a Tick or NEED_DATA

    def send(self, event: ControlEvent) -> bytes:
        """The frame that carries ``event``."""
        return self._codec.encode(event)

    @staticmethod
    def tick() -> bytes:
        """The bytes of a tick."""
        return TICK_BYTES
