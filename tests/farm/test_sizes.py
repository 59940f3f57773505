"""The farm's message size limits and cutting batches to fit (pure)."""

from __future__ import annotations

import pytest

from philipjose.farm.sizes import (
    DEFAULT_MAX_MESSAGE_SIZE,
    FRAME_OVERHEAD,
    ITEM_OVERHEAD,
    MAX_MESSAGE_SIZE_CEILING,
    check_max_message_size,
    frame_limit,
    split_by_size,
)


def test_limits() -> None:
    assert DEFAULT_MAX_MESSAGE_SIZE >= 1 << 30
    assert frame_limit(1000) == 1000 + FRAME_OVERHEAD
    assert frame_limit(MAX_MESSAGE_SIZE_CEILING) < 1 << 32  # a frame's length still fits 32 bits
    assert check_max_message_size(1) == 1
    for bad in (0, -1, MAX_MESSAGE_SIZE_CEILING + 1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="max_message_size"):
            check_max_message_size(bad)


def test_split_by_size_keeps_order_and_bounds_each_batch() -> None:
    items = [(i, b"x" * n) for i, n in enumerate([10, 500, 20, 900, 5, 5, 3000, 1])]
    limit = 1000 + 2 * ITEM_OVERHEAD
    batches = split_by_size(items, limit)
    assert [item for batch in batches for item in batch] == items
    for batch in batches:
        cost = sum(len(p) + ITEM_OVERHEAD for _, p in batch)
        assert cost <= limit or len(batch) == 1  # an oversized item travels alone
    assert [[i for i, _ in b] for b in batches] == [[0, 1, 2], [3, 4, 5], [6], [7]]
    assert split_by_size([], 10) == []
    assert split_by_size(items, 10**9) == [items]
