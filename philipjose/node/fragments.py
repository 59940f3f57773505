"""Splitting a large outgoing message into distribution fragments, sans-I/O.

Theory of operation
-------------------
With ``DFLAG_FRAGMENTS`` negotiated, a message whose terms (control message and payload, without
version bytes) are longer than ``FRAGMENT_SIZE`` (64 KiB, as ERTS) travels as a *sequence* of frames
(erl_dist_protocol, "Distribution Data"):

- the first fragment: ``131 69``, the 64-bit sequence id, the 64-bit fragment id (the number of
  fragments), a zero atom-cache reference count, and the first ``FRAGMENT_SIZE`` bytes of the terms;
- each following one: ``131 70``, the sequence id, the fragment id (one less than the previous, down to
  1 for the last) and the next bytes.

:class:`Fragments` takes a whole frame made with a normal distribution header (``131 68 0``, what
:class:`~philipjose.node.control.ControlCodec` makes once fragments are negotiated) and hands its
fragments out one at a time (:meth:`Fragments.next_frame`), slicing the frame's bytes without copying
them whole, so the caller can send other frames between two fragments (see
:mod:`philipjose.node.outqueue`). The sequence id must be unique among this connection's open
sequences; the caller counts them, from 1: a real OTP 25 node dies of a segmentation fault on a
fragmented message whose sequence id is 0 (found by ``tests/interop/test_big_messages_erl.py``).
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["DIST_HEADER", "FRAGMENT_SIZE", "Fragments", "fragmentable"]

#: Bytes of the message's terms per fragment (ERTS's fragment size, 64 KiB).
FRAGMENT_SIZE: Final = 1 << 16
#: How a frame with a normal distribution header and no atom-cache references starts, after its length.
DIST_HEADER: Final = b"\x83D\x00"
_START: Final = 4 + len(DIST_HEADER)  # the terms start here in such a frame
_FIRST: Final = struct.Struct(">IBBQQB")  # length, 131, 69, sequence id, fragment id, 0 atom-cache refs
_NEXT: Final = struct.Struct(">IBBQQ")  # length, 131, 70, sequence id, fragment id


def fragmentable(frame: bytes | bytearray, fragment_size: int = FRAGMENT_SIZE) -> bool:
    """Whether ``frame`` (a whole frame) is a distribution-header message too long for one fragment."""
    return len(frame) - _START > fragment_size and frame[4:_START] == DIST_HEADER


class Fragments:
    """The fragments of one message (``frame``: a whole frame with a normal distribution header).

    ``count`` fragments in all; ``size`` is the sum of their frames' lengths (what they add to the
    bytes queued on the connection); ``left`` how many are still to be taken with :meth:`next_frame`.
    """

    __slots__ = ("_data", "_pos", "_step", "count", "left", "seq", "size")

    def __init__(self, frame: bytes | bytearray, seq: int, fragment_size: int = FRAGMENT_SIZE) -> None:
        if not fragmentable(frame, fragment_size):
            raise ValueError("not a distribution-header frame longer than one fragment")
        self._data = memoryview(frame)
        self._pos = _START
        self._step = fragment_size
        self.seq = seq
        terms = len(frame) - _START
        self.count = -(-terms // fragment_size)
        self.left = self.count
        self.size = terms + _FIRST.size + (self.count - 1) * _NEXT.size

    def next_frame(self) -> bytes:
        """The next fragment's whole frame (the first one first); ``IndexError`` once all are taken."""
        left = self.left
        if not left:
            raise IndexError("every fragment was taken")
        pos = self._pos
        chunk = self._data[pos : pos + self._step]
        self._pos = pos + len(chunk)
        self.left = left - 1
        if left == self.count:
            head = _FIRST.pack(_FIRST.size - 4 + len(chunk), 131, 69, self.seq, left, 0)
        else:
            head = _NEXT.pack(_NEXT.size - 4 + len(chunk), 131, 70, self.seq, left)
        frame = head + chunk
        if not self.left:
            self._data = memoryview(b"")  # let the message's bytes go
        return frame
