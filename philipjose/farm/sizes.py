"""Message size limits of a farm, and cutting batches of payloads to fit them. Pure: no I/O.

A farm has one ``max_message_size`` (default 1 GiB): the largest pickled task (function and
arguments) or outcome (result or exception) that may travel between the farmer and a worker. Each
node of the farm (the farmer's and every worker's) accepts distribution frames of up to
:func:`frame_limit` bytes: ``max_message_size`` plus room for the message around the payloads
(the control message, pids, task ids). Batches of tasks (``pj_run``) and of outcomes (``pj_done``)
are cut with :func:`split_by_size` so that no message carries more than ``max_message_size`` bytes
of payload. A frame's length is a 32-bit number, so ``max_message_size`` is at most
:data:`MAX_MESSAGE_SIZE_CEILING`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeVar

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FRAME_OVERHEAD",
    "ITEM_OVERHEAD",
    "MAX_MESSAGE_SIZE_CEILING",
    "check_max_message_size",
    "frame_limit",
    "split_by_size",
]

T = TypeVar("T")

DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 30
"""The default ``max_message_size``: 1 GiB."""

FRAME_OVERHEAD: Final = 1 << 20
"""Bytes a frame may hold beyond its payloads (control message, pids, tuples, task ids)."""

ITEM_OVERHEAD: Final = 64
"""What one ``(TaskId, Payload)`` item costs beyond its payload, counted by :func:`split_by_size`."""

MAX_MESSAGE_SIZE_CEILING: Final = (1 << 32) - 1 - FRAME_OVERHEAD
"""The largest ``max_message_size``: a frame's 4-byte length must still hold it."""


def check_max_message_size(size: object) -> int:
    """``size`` if it is a valid ``max_message_size`` (an int from 1 to the ceiling), else ValueError."""
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_MESSAGE_SIZE_CEILING:
        raise ValueError(
            f"max_message_size must be an integer from 1 to {MAX_MESSAGE_SIZE_CEILING} bytes, not {size!r}"
        )
    return size


def frame_limit(max_message_size: int) -> int:
    """The ``max_frame_size`` the farm's nodes need to carry messages of ``max_message_size``."""
    return max_message_size + FRAME_OVERHEAD


def split_by_size(items: Sequence[tuple[T, bytes]], limit: int) -> list[list[tuple[T, bytes]]]:
    """``items`` cut, in order, into batches of at most ``limit`` bytes (payloads plus
    :data:`ITEM_OVERHEAD` each); an item larger than that alone still gets a batch of its own."""
    batches: list[list[tuple[T, bytes]]] = []
    current: list[tuple[T, bytes]] = []
    used = 0
    for item in items:
        cost = len(item[1]) + ITEM_OVERHEAD
        if current and used + cost > limit:
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += cost
    if current:
        batches.append(current)
    return batches
