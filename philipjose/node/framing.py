"""Frames of an established distribution connection, sans-I/O.

Theory of operation
-------------------
After the handshake every frame is a 4-byte big-endian length and that many bytes. A frame of length
zero is a *tick* (a keep-alive). Any other frame starts with a header that says how the terms in it
are laid out:

- ``112`` (``'p'``, pass-through): a control message and, for sends and exits, a payload term, each
  with its own 131 version byte. Used when neither ``DFLAG_DIST_HDR_ATOM_CACHE`` nor
  ``DFLAG_FRAGMENTS`` was negotiated (ERTS then *requires* it).
- ``131 68`` (normal distribution header) with zero atom-cache references: the terms follow without
  version bytes. ERTS requires a distribution header as soon as ``DFLAG_FRAGMENTS`` is negotiated,
  so this is what OTP sends to philipjose and what philipjose sends to OTP (:func:`dist_header`).
  A header that uses the atom cache is refused (philipjose never negotiates the atom cache).
- ``131 69`` (first fragment: sequence id, fragment id, atom-cache reference count that must be 0)
  and ``131 70`` (following fragment: sequence id, fragment id): a large message split into
  fragments (``DFLAG_FRAGMENTS``). The fragment id counts down to 1, the last fragment; the bytes of
  all fragments of one sequence are joined into one message whose terms carry no version bytes.

:class:`FrameDecoder` turns received bytes into :class:`Tick`, :class:`DistMessage` and
:class:`OversizedMessage` events (``next_event()`` returns ``NEED_DATA`` when it needs more bytes);
:func:`dist_header`, :func:`pass_through` and :data:`TICK_BYTES` build what we send (the fragments of
a large message are made by :mod:`philipjose.node.fragments`).

A message's *size* is the length of its terms (control message and payload) as they travel, without
the frame and fragment headers. A message over ``max_message_size`` (default 1 GiB) is refused by
itself: the decoder reports it once as an :class:`OversizedMessage` and drops its bytes -- a frame
over the limit is skipped as it arrives, without being gathered, and once a fragmented message
passes the limit its bytes so far are freed and its later fragments are skipped -- while the
connection goes on.

Limits that close the connection (each violation raises a :class:`ProtocolError` subclass): a frame
is at most ``max_frame_size`` bytes (default 128 MiB); the bytes held for the connection -- the frame
being gathered plus every open fragment sequence, each sequence charged ``SEQUENCE_OVERHEAD`` (256)
bytes more -- are at most ``max_buffered`` (default: twice ``max_frame_size``, 256 MiB), so any
number of sequences may be open but not more bytes. The oldest open sequence is not counted: it may
grow to ``max_message_size``, so one message of up to that size (1 GiB by default) gets in while
the budget still bounds what all other open sequences hold (a peer can make the connection hold at
most ``max_message_size + max_buffered`` bytes of incomplete messages); fragments must arrive in
order; a pass-through frame is refused when ``pass_through`` is False (the connection negotiated
``DFLAG_FRAGMENTS``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from philipjose.node.errors import FrameTooLarge, ProtocolError
from philipjose.node.sentinels import NEED_DATA, Sentinel

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PASS_THROUGH",
    "SEQUENCE_OVERHEAD",
    "TICK_BYTES",
    "DistMessage",
    "FrameDecoder",
    "FrameEvent",
    "OversizedMessage",
    "Tick",
    "dist_header",
    "frame",
    "pass_through",
]

DEFAULT_MAX_FRAME_SIZE: Final = 128 * 1024 * 1024
DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 30

PASS_THROUGH: Final = 112
_VERSION = 131
_DIST_HEADER = 68
_DIST_FRAG_HEADER = 69
_DIST_FRAG_CONT = 70

#: A tick as it travels: a frame of length zero.
TICK_BYTES: Final = b"\x00\x00\x00\x00"

_U32 = struct.Struct(">I")
_SEQ_FRAG = struct.Struct(">QQ")


@dataclass(frozen=True, slots=True)
class Tick:
    """A keep-alive: an empty frame."""


@dataclass(frozen=True, slots=True)
class DistMessage:
    """One whole distribution message: the control term, maybe followed by a payload term.

    ``data[offset:]`` holds the terms. ``versioned`` is True when each term starts with its 131 version
    byte (pass-through frames) and False when the version bytes are omitted (after a distribution
    header, fragmented or not). ``data`` is a ``bytearray`` for a reassembled fragmented message and
    for a frame of 1 MiB or more that came in several reads (handed on without a copy).
    """

    data: bytes | bytearray
    offset: int
    versioned: bool


@dataclass(frozen=True, slots=True)
class OversizedMessage:
    """A message over ``max_message_size``, refused: its bytes are dropped, the connection goes on.

    ``size``: the message's size when it was refused (for a fragmented message, the bytes received by
    then: it may be longer). ``head``: its first bytes (at most ``HEAD_SIZE``), which usually hold the
    whole control message, for the log line; ``versioned`` as in :class:`DistMessage`.
    """

    size: int
    limit: int
    head: bytes
    versioned: bool = False


FrameEvent = Tick | DistMessage | OversizedMessage

#: How many of an oversized message's first bytes :class:`OversizedMessage` keeps.
HEAD_SIZE: Final = 512
#: The longest header before a message's terms: a first fragment's (131 69, two ids, 0 references).
_MAX_HEADER: Final = 2 + 16 + 1

_TICK = Tick()


def frame(body: bytes) -> bytes:
    """``body`` with its 4-byte length."""
    return _U32.pack(len(body)) + body


def pass_through(control: bytes, payload: bytes | None = None) -> bytes:
    """A whole pass-through frame carrying the encoded ``control`` (and ``payload``) terms.

    Both are complete external terms, each starting with its 131 version byte.
    """
    length = 1 + len(control) + (len(payload) if payload is not None else 0)
    if payload is None:
        return b"".join((_U32.pack(length), b"p", control))
    return b"".join((_U32.pack(length), b"p", control, payload))


_HEADER = b"\x83D\x00"


def dist_header(control: bytes, payload: bytes | None = None) -> bytes:
    """A whole frame with a normal distribution header (no atom-cache references).

    ``control`` and ``payload`` are complete external terms with their 131 version byte, which this
    drops (terms after a distribution header have none).
    """
    if payload is None:
        return b"".join((_U32.pack(2 + len(control)), _HEADER, memoryview(control)[1:]))
    length = 1 + len(control) + len(payload)
    return b"".join((_U32.pack(length), _HEADER, memoryview(control)[1:], memoryview(payload)[1:]))


class _Sequence:
    __slots__ = ("data", "next_id")

    def __init__(self, next_id: int, first: bytearray | None) -> None:  # None: refused, skipped
        self.next_id = next_id
        self.data: bytearray | None = first


#: What an open fragment sequence is charged beyond its bytes (its objects and dict entry).
SEQUENCE_OVERHEAD: Final = 256
#: A frame at least this large that arrives over several reads is handed on as the ``bytearray``
#: it was gathered in, without a copy (the decoder, off the event loop, makes it ``bytes``).
_BIG_FRAME: Final = 1 << 20


class FrameDecoder:
    """Splits the received byte stream into ticks and whole distribution messages.

    Received chunks are kept as they are (immutable ``bytes``) and frames are sliced out of them, so
    a chunk holding many whole frames is parsed without copying it. Only a frame split across chunks
    is gathered in a ``bytearray`` (amortised appends, so feeding a large frame byte by byte stays
    linear) until it is complete; its length is checked against ``max_frame_size`` and the input
    budget as soon as its 4-byte header is there. A frame of 1 MiB or more gathered that way is
    handed on in that ``bytearray`` (no copy on the event loop), and so is a reassembled fragmented
    message: a message's ``data`` is ``bytes`` or ``bytearray``.

    ``max_buffered`` is this connection's input budget: the bytes of the frame being gathered plus
    the bytes of every open fragment sequence but the oldest (each charged ``SEQUENCE_OVERHEAD``
    more). A frame
    whose length would take the total over it is refused from its length alone. ``pass_through``
    False refuses pass-through frames (ERTS refuses them once ``DFLAG_FRAGMENTS`` or the atom
    cache is negotiated).
    """

    def __init__(
        self,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_buffered: int | None = None,
        pass_through: bool = True,
    ) -> None:
        self.max_frame_size = max_frame_size
        self.max_message_size = max_message_size
        if max_buffered is None:
            max_buffered = 2 * max_frame_size
        self.max_buffered = max_buffered
        self.pass_through = pass_through
        self._buffer = b""  # the current chunk; frames are parsed from _pos on
        self._pos = 0
        self._partial: bytearray | None = None  # an incomplete frame being gathered, else None
        self._big: bytearray | None = None  # a complete big frame's body, handed on before _buffer
        self._sequences: dict[int, _Sequence] = {}
        self._held = 0  # bytes charged for open fragment sequences
        self._limit = min(max_frame_size, self.max_buffered)  # largest frame acceptable now
        self._skip_over = max_message_size + _MAX_HEADER  # a frame this long is skipped unread
        self._skip = 0  # bytes of a refused frame still to drop as they arrive

    @property
    def buffered(self) -> int:
        """How many received bytes are not yet part of an event (open fragment sequences included)."""
        partial = self._partial
        big = self._big
        return (
            len(self._buffer)
            - self._pos
            + (0 if partial is None else len(partial))
            + (0 if big is None else len(big))
            + self._held
        )

    def receive_data(self, data: bytes | bytearray) -> None:
        """Append bytes received from the peer."""
        skip = self._skip
        if skip:  # the rest of a refused frame: dropped, never buffered
            if len(data) <= skip:
                self._skip = skip - len(data)
                return
            self._skip = 0
            data = data[skip:]
        partial = self._partial
        if partial is None:
            buffer = self._buffer
            pos = self._pos
            rest = len(buffer) - pos
            if not rest:  # everything before was parsed: take the chunk as it is
                self._buffer = bytes(data)
                self._pos = 0
                return
            if rest >= 4:
                (length,) = _U32.unpack_from(buffer, pos)
                if rest + len(data) >= 4 + length or length > self._limit or length > self._skip_over:
                    self._buffer = buffer[pos:] + data  # this chunk completes the frame: one copy
                    self._pos = 0
                    return
            partial = self._partial = bytearray(buffer[pos:])
            self._buffer = b""
            self._pos = 0
        partial += data
        if len(partial) >= 4:
            (length,) = _U32.unpack_from(partial)
            if self._skip_over < length <= self.max_frame_size:
                self._buffer = bytes(partial)  # next_event skips it (a chunk at most is kept)
                self._partial = None
            elif length > self._limit:
                self._buffer = bytes(partial[:4])  # next_event refuses it from its length
                self._partial = None
            elif len(partial) >= 4 + length:
                self._partial = None
                if length >= _BIG_FRAME and self._big is None:
                    end = 4 + length
                    self._buffer = bytes(partial[end:])  # the start of the next frames
                    del partial[end:]
                    del partial[:4]  # O(1) for a bytearray
                    self._big = partial
                else:
                    self._buffer = bytes(partial)  # a whole frame is there

    def next_event(self) -> FrameEvent | Sentinel:
        """The next :class:`Tick`, :class:`DistMessage` or :class:`OversizedMessage`, or ``NEED_DATA``."""
        frame = self.next_frame()
        if type(frame) is tuple:
            return DistMessage(*frame)
        return frame  # type: ignore[return-value]

    def next_frame(self) -> tuple[bytes | bytearray, int, bool] | Tick | OversizedMessage | Sentinel:
        """Like :meth:`next_event`, but a message comes as the tuple ``(data, offset, versioned)``
        of :class:`DistMessage`'s fields (the connection's hot path makes no event object)."""
        big = self._big
        if big is not None:
            self._big = None
            message = self._open(big)
            if message is not None:
                return message
        buffer = self._buffer
        while True:
            pos = self._pos
            if len(buffer) - pos < 4:
                return NEED_DATA
            (length,) = _U32.unpack_from(buffer, pos)
            if self._skip_over < length <= self.max_frame_size:
                skipped = self._skip_frame(buffer, pos, length)
                buffer = self._buffer
                if skipped is None:
                    continue
                return skipped
            if length > self._limit:
                raise self._too_large(length)
            end = pos + 4 + length
            if len(buffer) < end:
                return NEED_DATA
            self._pos = end
            if not length:
                return _TICK
            # The common case first: a normal distribution header without atom-cache references.
            if length >= 3 and buffer[pos + 4] == _VERSION and buffer[pos + 5] == _DIST_HEADER:
                if buffer[pos + 6] != 0:
                    raise ProtocolError("distribution header with atom cache references (not negotiated)")
                if length - 3 > self.max_message_size:
                    return self._oversized(length - 3, buffer[pos + 7 : pos + 7 + HEAD_SIZE])
                return buffer[pos + 4 : end], 3, False
            message = self._open(buffer[pos + 4 : end])
            if message is not None:
                return message

    def _oversized(self, size: int, head: bytes | bytearray, versioned: bool = False) -> OversizedMessage:
        return OversizedMessage(size, self.max_message_size, bytes(head[:HEAD_SIZE]), versioned)

    def _skip_frame(
        self, buffer: bytes, pos: int, length: int
    ) -> tuple[bytes | bytearray, int, bool] | OversizedMessage | Sentinel | None:
        """Refuse the frame at ``pos`` (over ``max_message_size`` whatever its header) from its first
        bytes, and drop the rest of it as it arrives."""
        start = pos + 4
        if len(buffer) - start < _MAX_HEADER:
            return NEED_DATA
        head = buffer[start : start + _MAX_HEADER + HEAD_SIZE]
        if len(buffer) - start >= length:
            self._pos = start + length
        else:
            self._skip = length - (len(buffer) - start)
            self._buffer = b""
            self._pos = 0
        return self._open(head, length)

    def _too_large(self, length: int) -> FrameTooLarge:
        if length > self.max_frame_size:
            return FrameTooLarge(f"frame of {length} bytes (limit {self.max_frame_size})")
        return FrameTooLarge(
            f"frame of {length} bytes while {self._held} bytes are held in {len(self._sequences)} open "
            f"fragmented messages: over this connection's input budget of {self.max_buffered} bytes"
        )

    def _charge(self, amount: int) -> None:
        """Add ``amount`` to the bytes held, once ``_sequences`` shows the change (the oldest open
        sequence's bytes are not charged to the budget)."""
        held = self._held + amount
        self._held = held
        charged = held
        if self._sequences:
            oldest = next(iter(self._sequences.values())).data
            if oldest is not None:
                charged -= len(oldest)
        if charged > self.max_buffered:
            raise FrameTooLarge(
                f"{len(self._sequences)} open fragmented messages hold {held} bytes: over this "
                f"connection's input budget of {self.max_buffered} bytes (the oldest not counted)"
            )
        self._limit = min(self.max_frame_size, self.max_buffered - charged)

    def _open(
        self, body: bytes | bytearray, length: int = -1
    ) -> tuple[bytes | bytearray, int, bool] | OversizedMessage | None:
        """The message a frame's ``body`` completes (or None, or its refusal). ``length``: the frame's
        length when ``body`` holds only the first bytes of a frame being skipped."""
        whole = length < 0
        if whole:
            length = len(body)
        first = body[0]
        if first == PASS_THROUGH:
            if not self.pass_through:
                raise ProtocolError(
                    "pass-through frame on a connection that negotiated DFLAG_FRAGMENTS "
                    "(a distribution header is required, as ERTS requires it)"
                )
            if length - 1 > self.max_message_size:
                return self._oversized(length - 1, body[1:], versioned=True)
            return body, 1, True
        if first != _VERSION or len(body) < 2:
            raise ProtocolError(f"unknown frame header {bytes(body[:2])!r}")
        kind = body[1]
        if kind == _DIST_HEADER:
            if len(body) < 3:
                raise ProtocolError("truncated distribution header")
            if body[2] != 0:
                raise ProtocolError("distribution header with atom cache references (not negotiated)")
            if length - 3 > self.max_message_size:
                return self._oversized(length - 3, body[3:])
            return body, 3, False
        if kind == _DIST_FRAG_HEADER:
            if len(body) < 2 + _SEQ_FRAG.size + 1:
                raise ProtocolError("truncated first-fragment header")
            seq, frag = _SEQ_FRAG.unpack_from(body, 2)
            if body[2 + _SEQ_FRAG.size] != 0:
                raise ProtocolError("fragment header with atom cache references (not negotiated)")
            start = 2 + _SEQ_FRAG.size + 1
            if frag == 0:
                raise ProtocolError("fragment id 0")
            size = length - start
            if frag == 1:
                if size > self.max_message_size:
                    return self._oversized(size, body[start:])
                return body, start, False
            if seq in self._sequences:
                raise ProtocolError(f"fragment sequence {seq} started twice")
            if size > self.max_message_size or not whole:
                self._sequences[seq] = _Sequence(frag - 1, None)
                self._charge(SEQUENCE_OVERHEAD)
                return self._oversized(size, body[start:])
            if type(body) is bytearray:
                del body[:start]
                data = body
            else:
                data = bytearray(memoryview(body)[start:])
            self._sequences[seq] = _Sequence(frag - 1, data)
            self._charge(size + SEQUENCE_OVERHEAD)
            return None
        if kind == _DIST_FRAG_CONT:
            if len(body) < 2 + _SEQ_FRAG.size:
                raise ProtocolError("truncated fragment header")
            seq, frag = _SEQ_FRAG.unpack_from(body, 2)
            sequence = self._sequences.get(seq)
            if sequence is None:
                raise ProtocolError(f"fragment of unknown sequence {seq}")
            if frag != sequence.next_id:
                raise ProtocolError(f"fragment {frag} of sequence {seq} out of order")
            start = 2 + _SEQ_FRAG.size
            size = length - start
            held = sequence.data
            refused: OversizedMessage | None = None
            if held is not None:
                total = len(held) + size
                if total > self.max_message_size or not whole:
                    refused = self._oversized(total, held)  # drop what it holds, skip the rest
                    sequence.data = None
                    self._charge(-len(held))
                    held = None
                else:
                    held += memoryview(body)[start:]
                    self._charge(size)
            if frag > 1:
                sequence.next_id = frag - 1
                return refused
            del self._sequences[seq]
            if held is None:
                self._charge(-SEQUENCE_OVERHEAD)
                return refused
            self._charge(-len(held) - SEQUENCE_OVERHEAD)
            return held, 0, False
        raise ProtocolError(f"unknown distribution header kind {kind}")
