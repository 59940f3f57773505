"""A local worker's lane: its tasks and their outcomes over two pipes, beside its node.

Theory of operation
-------------------
A worker the farmer starts on its own host (a local machine, not over ssh or Slurm) gets two pipes
besides its distribution connection: the farmer writes the worker's tasks (``pj_run``, and the
initializer of ``pj_init``) to one, and the worker writes their outcomes (``pj_done``) to the other.
Everything else still goes over the distribution connection: the worker's ``pj_worker_up``,
revocations, ``pj_stop``, ticks, node monitoring. So the worker is a node like any other, and a farm
with lanes behaves as one without; only the tasks' bytes take the short way.

Why: a round trip over the node costs each end a pass through its Trio loop and the actor layer
(the frame read and decoded, a message delivered to a process, which wakes and hands the task to the
thread that runs it, and the same on the way back). The worker's end of a lane is one thread that
blocks on the task pipe, runs what it reads and writes the outcomes back: one wake-up and a few
system calls (see ``docs/benchmarks.md``, the farm's latency). The farmer's end stays on its loop: a
task is written straight to the pipe when the pipe has room (else queued for the lane's writer
task), and the reader task hands each batch of outcomes to the farm's report handler as it comes,
as if the node had delivered it as a ``pj_done``.

The pipes are made by the farmer and inherited by its child alone (``pass_fds``), so what comes
through them comes from the worker the farmer started: the lane carries pickled tasks without a
handshake, as a node's connection carries them only after one.

Wire format (both ways, big-endian): a frame is ``Length:32`` then ``Length`` bytes of items, each
``TaskId:64 (signed), Size:32, Payload:Size``. A frame is one batch: one ``pj_run`` or ``pj_done``.
:class:`LaneDecoder` is the sans-I/O reader: it refuses a frame over its limit before it buffers it,
and a frame whose items do not add up, with :class:`LaneError` (a ``ValueError``).
"""

from __future__ import annotations

import os
import select
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import trio

from philipjose.farm.errors import FarmError

__all__ = ["FarmerLane", "LaneDecoder", "LaneError", "WorkerLane", "encode_batch", "parse_lane_fds"]

Batch = list[tuple[int, bytes]]

_LENGTH: Final = struct.Struct(">I")
_ITEM: Final = struct.Struct(">qI")
_READ_SIZE: Final = 1 << 16


class LaneError(FarmError, ValueError):
    """A lane's bytes are not frames of the lane's format, or a frame is over the limit."""


def encode_batch(items: Iterable[tuple[int, bytes]]) -> bytes:
    """One frame holding ``items`` ((task id, payload) pairs, in order)."""
    parts = [b""]
    pack = _ITEM.pack
    for task_id, payload in items:
        parts.append(pack(task_id, len(payload)))
        parts.append(payload)
    body = sum(map(len, parts))
    parts[0] = _LENGTH.pack(body)
    return b"".join(parts)


def _decode_body(body: memoryview) -> Batch:
    items: Batch = []
    at, end = 0, len(body)
    head = _ITEM.size
    unpack = _ITEM.unpack_from
    while at < end:
        if end - at < head:
            raise LaneError(f"a lane frame ends inside an item's header ({end - at} of {head} bytes)")
        task_id, size = unpack(body, at)
        at += head
        if size > end - at:
            raise LaneError(f"a lane item says {size} bytes, its frame has {end - at} left")
        items.append((task_id, bytes(body[at : at + size])))
        at += size
    return items


class LaneDecoder:
    """Sans-I/O: ``receive_data(bytes)``, then ``next_batch()`` until it returns None (more needed).

    ``max_frame`` bounds a frame's length: a longer one raises :class:`LaneError` as soon as its
    header is in, before its bytes are buffered.
    """

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._at = 0

    def receive_data(self, data: bytes) -> None:
        if self._at:
            del self._buffer[: self._at]
            self._at = 0
        self._buffer += data

    def next_batch(self) -> Batch | None:
        """The next complete frame's items, or None until more bytes come."""
        buffer, at = self._buffer, self._at
        if len(buffer) - at < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(buffer, at)
        if length > self.max_frame:
            raise LaneError(f"a lane frame of {length} bytes is over the limit of {self.max_frame}")
        start = at + _LENGTH.size
        if len(buffer) - start < length:
            return None
        with memoryview(buffer) as view:
            items = _decode_body(view[start : start + length])
        self._at = start + length
        return items


def parse_lane_fds(text: str) -> tuple[int, int]:
    """``"R,W"`` (``philipjose worker --lane``): the task pipe's read end, the outcome pipe's write
    end; ``ValueError`` unless both are non-negative integers."""
    read, sep, write = text.partition(",")
    if not sep or not read.strip().isdigit() or not write.strip().isdigit():
        raise ValueError(f"--lane takes two file descriptors as R,W, not {text!r}")
    return int(read), int(write)


class FarmerLane:
    """The farmer's end of a worker's lane (on the farm's Trio thread): :meth:`send` tasks at once,
    :meth:`serve` delivers the outcomes until the worker closes its end.

    It owns both descriptors (``task_fd`` written, ``outcome_fd`` read) and closes them in
    :meth:`close`. Once the worker's end is gone (a broken pipe), what is sent is dropped: the
    worker's death reaches the farm through its node, and the farm gives its tasks to others.
    """

    def __init__(self, task_fd: int, outcome_fd: int, *, max_frame: int) -> None:
        self._task_fd, self._outcome_fd = task_fd, outcome_fd
        os.set_blocking(task_fd, False)
        os.set_blocking(outcome_fd, False)
        self._decoder = LaneDecoder(max_frame)
        self._backlog: deque[memoryview] = deque()
        self._more = trio.Event()
        self._broken = False
        self._closed = False
        self.frames_sent = self.frames_received = 0
        self.owner: Any = None  # the worker's pid, once it is up (the farm sets it)

    def send(self, items: Batch) -> None:
        """Write a batch of tasks (never blocks: what the pipe cannot take now, the writer sends)."""
        if self._broken or self._closed:
            return
        self.frames_sent += 1
        self._backlog.append(memoryview(encode_batch(items)))
        if len(self._backlog) == 1:
            self._flush()
        if self._backlog:
            self._more.set()

    def _flush(self) -> None:
        backlog = self._backlog
        while backlog:
            try:
                sent = os.write(self._task_fd, backlog[0])
            except BlockingIOError:
                return
            except OSError:  # the worker's end is closed: it is gone, or going
                self._broken = True
                backlog.clear()
                return
            if sent < len(backlog[0]):
                backlog[0] = backlog[0][sent:]
                return
            backlog.popleft()

    async def _write(self) -> None:
        while True:
            if not self._backlog:
                await self._more.wait()
                self._more = trio.Event()
                continue
            await trio.lowlevel.wait_writable(self._task_fd)
            self._flush()

    async def serve(self, deliver: Callable[[Batch], Awaitable[None]]) -> None:
        """Hand each batch of outcomes to ``deliver`` (in order) until the worker's end closes;
        raises :class:`LaneError` if it sends something else than frames within the limit."""
        error: LaneError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write)
            try:
                await self._read(deliver)
            except LaneError as exc:  # raised below, not as an exception group
                error = exc
            nursery.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _read(self, deliver: Callable[[Batch], Awaitable[None]]) -> None:
        fd, decoder = self._outcome_fd, self._decoder
        while True:
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fd)
                continue
            if not data:
                return
            decoder.receive_data(data)
            while (batch := decoder.next_batch()) is not None:
                self.frames_received += 1
                await deliver(batch)

    def close(self) -> None:
        """Close both descriptors (no task may be waiting on them: end :meth:`serve` first)."""
        if not self._closed:
            self._closed = True
            self._backlog.clear()
            for fd in (self._task_fd, self._outcome_fd):
                trio.lowlevel.notify_closing(fd)
                os.close(fd)


class WorkerLane:
    """The worker's end (blocking, for the one thread that runs its tasks): :meth:`receive` the
    batches of tasks that have come, :meth:`send` a batch of outcomes."""

    def __init__(self, task_fd: int, outcome_fd: int, *, max_frame: int) -> None:
        self._task_fd, self._outcome_fd = task_fd, outcome_fd
        os.set_blocking(task_fd, False)  # read what has come; block in poll() only when told to
        os.set_blocking(outcome_fd, True)
        self._decoder = LaneDecoder(max_frame)
        self._readable = select.poll()  # poll, not select: a descriptor may be over FD_SETSIZE
        self._readable.register(task_fd, select.POLLIN)

    def receive(self, *, block: bool) -> list[Batch] | None:
        """The batches read now (waiting for the first one if ``block``; an empty list if not and
        nothing has come); None once the farmer's end is closed."""
        batches: list[Batch] = []
        decoder = self._decoder
        while True:
            try:
                data = os.read(self._task_fd, _READ_SIZE)
            except BlockingIOError:
                if batches or not block:
                    return batches
                self._readable.poll()
                continue
            if not data:
                return batches or None
            decoder.receive_data(data)
            while (batch := decoder.next_batch()) is not None:
                batches.append(batch)

    def send(self, items: Batch) -> None:
        """Write one batch of outcomes, all of it (blocks while the farmer's end is full)."""
        frame = memoryview(encode_batch(items))
        while frame:
            sent = os.write(self._outcome_fd, frame)
            frame = frame[sent:]
