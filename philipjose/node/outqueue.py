"""What a connection's writer sends next: small frames in order, large messages as interleaved fragments.

Theory of operation
-------------------
Frames are queued with the *sender* they come from (a pid, or None for the node's own traffic such
as ticks and replies). A frame is written as it is, after the frames queued before it, unless it is a
large message (see :func:`~philipjose.node.fragments.fragmentable`) on a connection that negotiated
``DFLAG_FRAGMENTS``: then it opens a *lane* of its sender, and goes out one fragment at a time.

Every later frame of a sender that has a lane joins the end of that lane, so a process's messages
(and its other signals) reach the peer in the order it sent them; frames of every other sender
go on being written while the large message goes out. :meth:`OutQueue.take` makes the writer's next
batch: every frame queued outside lanes, then one fragment (and the small frames that follow it) of
each lane in turn, round and round, until the batch holds ``batch_size`` bytes. A small message or a
tick therefore waits at most for one batch, however large the messages in progress are (OTP lets
other messages in between the fragments of one message in the same way).

A place in a lane can be reserved for a message whose bytes are not known yet
(:meth:`OutQueue.reserve`, then :meth:`OutQueue.fill`): the node encodes a large term in a worker
thread, and the sender's later frames wait behind it. A reserved place not yet filled holds its
lane back, and only its lane.

``queued`` counts the bytes queued and not yet taken: each frame's length, and for a fragmented
message the sum of its fragments' frames. Pure: no I/O, no trio.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from philipjose.node.fragments import FRAGMENT_SIZE, Fragments, fragmentable

__all__ = ["BATCH_SIZE", "OutQueue", "Reserved"]

#: How many bytes :meth:`OutQueue.take` gathers at most once lanes are open (four fragments).
BATCH_SIZE: Final = 4 * FRAGMENT_SIZE


class Reserved:
    """A place in a lane for a message encoded elsewhere (see :meth:`OutQueue.reserve`)."""

    __slots__ = ("filled", "frame")

    def __init__(self) -> None:
        self.filled = False
        self.frame: bytes | None = None


_Item = bytes | Fragments | Reserved


class OutQueue:
    """The frames waiting to be written on one connection (see the module docstring).

    ``fragments``: whether the peer negotiated ``DFLAG_FRAGMENTS`` (without it, every frame is written
    whole and in order). ``fragment_size`` and ``batch_size`` are for tests.
    """

    __slots__ = ("_batch_size", "_fragment_size", "_fragments", "_lanes", "_next_seq", "_plain", "queued")

    def __init__(
        self, *, fragments: bool, fragment_size: int = FRAGMENT_SIZE, batch_size: int = BATCH_SIZE
    ) -> None:
        self._fragments = fragments
        self._fragment_size = fragment_size
        self._batch_size = batch_size
        self._plain: list[bytes] = []  # frames outside lanes, in order
        self._lanes: dict[Any, deque[_Item]] = {}  # sender -> its frames, the first one in progress
        self._next_seq = 1  # sequence ids 1 .. 2^64 - 1 (see _item)
        self.queued = 0

    def __bool__(self) -> bool:
        """True when something is queued (ready to be taken or not)."""
        return bool(self._plain or self._lanes)

    @property
    def plain(self) -> bool:
        """True when frames wait outside lanes (a frame written directly now would overtake them)."""
        return bool(self._plain)

    @property
    def lanes(self) -> int:
        """How many senders have a large message in progress (or reserved)."""
        return len(self._lanes)

    def in_lane(self, sender: Any) -> bool:
        """Whether ``sender``'s next frame must wait in its lane."""
        return sender in self._lanes

    def ready(self) -> bool:
        """True when :meth:`take` would return something."""
        if self._plain:
            return True
        for lane in self._lanes.values():
            head = lane[0]
            if type(head) is not Reserved or head.filled:
                return True
        return False

    def push(self, frame: bytes, sender: Any = None) -> int:
        """Queue ``frame`` from ``sender``; returns what it adds to ``queued``."""
        lane = self._lanes.get(sender)
        if lane is not None:
            item = self._item(frame)
            lane.append(item)
            size = item.size if type(item) is Fragments else len(frame)
        elif self._fragments and fragmentable(frame, self._fragment_size):
            item = self._item(frame)
            assert type(item) is Fragments
            self._lanes[sender] = deque((item,))
            size = item.size
        else:
            self._plain.append(frame)
            size = len(frame)
        self.queued += size
        return size

    def push_plain(self, frame: bytes) -> int:
        """Queue ``frame`` outside every lane, after the frames already there (for the rest of a
        frame partly written: nothing may come before it); returns what it adds to ``queued``."""
        self._plain.append(frame)
        self.queued += len(frame)
        return len(frame)

    def reserve(self, sender: Any = None) -> Reserved:
        """A place for ``sender``'s next message, to :meth:`fill` once it is encoded."""
        place = Reserved()
        lane = self._lanes.get(sender)
        if lane is None:
            self._lanes[sender] = deque((place,))
        else:
            lane.append(place)
        return place

    def fill(self, place: Reserved, frame: bytes | None) -> int:
        """Put the encoded ``frame`` (None: nothing, the message was dropped) in its reserved place;
        returns what it adds to ``queued``."""
        place.filled = True
        if frame is None:
            return 0
        place.frame = frame
        size = len(frame)
        if self._fragments and fragmentable(frame, self._fragment_size):
            size = Fragments(frame, 0, self._fragment_size).size
        self.queued += size
        return size

    def _item(self, frame: bytes) -> bytes | Fragments:
        if self._fragments and fragmentable(frame, self._fragment_size):
            seq = self._next_seq
            self._next_seq = seq % 0xFFFFFFFFFFFFFFFF + 1  # never 0: OTP 25's beam.smp crashes on it
            return Fragments(frame, seq, self._fragment_size)
        return frame

    def take(self) -> list[bytes]:
        """The next frames to write, in order (empty when nothing is ready); see the module doc."""
        batch = self._plain
        self._plain = []
        taken = sum(map(len, batch))
        lanes = self._lanes
        if lanes:
            limit = self._batch_size
            while taken < limit:
                progress = 0
                for sender in list(lanes):
                    lane = lanes[sender]
                    progress += self._take_lane(lane, batch)
                    if not lane:
                        del lanes[sender]
                if not progress:
                    break
                taken += progress
        self.queued -= taken
        return batch

    def _take_lane(self, lane: deque[_Item], batch: list[bytes]) -> int:
        """Take from ``lane`` up to one fragment (and the small frames before it); the bytes taken."""
        taken = 0
        while lane and taken < self._fragment_size:
            head = lane[0]
            kind = type(head)
            if kind is bytes:
                lane.popleft()
                batch.append(head)  # type: ignore[arg-type]
                taken += len(head)  # type: ignore[arg-type]
            elif kind is Fragments:
                frame = head.next_frame()  # type: ignore[union-attr]
                if not head.left:  # type: ignore[union-attr]
                    lane.popleft()
                batch.append(frame)
                return taken + len(frame)
            else:
                assert isinstance(head, Reserved)
                if not head.filled:
                    return taken
                frame = head.frame
                if frame is None:
                    lane.popleft()
                else:
                    lane[0] = self._item(frame)
        return taken
