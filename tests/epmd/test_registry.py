"""The pure registration table: refusal of live names, creations per name, forgetting."""

from __future__ import annotations

import itertools

from philipjose.epmd.protocol import NodeInfo
from philipjose.epmd.registry import Registry


def test_duplicate_live_name_refused_until_owner_leaves() -> None:
    registry = Registry()
    first = registry.register(NodeInfo("a", 1), owner=1, seed=100)
    assert first is not None
    assert registry.register(NodeInfo("a", 2), owner=2, seed=100) is None
    assert registry.lookup("a") == NodeInfo("a", 1)
    assert registry.unregister_owner(1) == first
    assert registry.lookup("a") is None
    assert registry.register(NodeInfo("a", 2), owner=2, seed=100) is not None


def test_creation_changes_on_each_registration_and_is_never_zero() -> None:
    registry = Registry()
    creations = []
    for owner in range(5):
        entry = registry.register(NodeInfo("a", 1), owner=owner, seed=0)
        assert entry is not None
        creations.append(entry.creation)
        registry.unregister_owner(owner)
    assert len(set(creations)) == len(creations)
    assert all(0 < c < 2**32 for c in creations)
    assert min(creations) >= 4


def test_creation_wraps_within_32_bits_and_skips_reserved_values() -> None:
    registry = Registry()
    entry = registry.register(NodeInfo("a", 1), owner=1, seed=2**32 - 1)
    assert entry is not None and entry.creation == 4  # wrapped past 0..3
    registry.unregister_owner(1)
    again = registry.register(NodeInfo("a", 1), owner=2, seed=0)
    assert again is not None and again.creation == 5


def test_version5_nodes_get_creations_1_to_3_that_change() -> None:
    registry = Registry()
    seen = []
    for owner in range(4):
        entry = registry.register(NodeInfo("a", 1, highest_version=5), owner=owner, seed=10)
        assert entry is not None
        seen.append(entry.creation)
        registry.unregister_owner(owner)
    assert all(1 <= c <= 3 for c in seen)
    assert all(x != y for x, y in itertools.pairwise(seen))


def test_names_too_long_and_second_name_per_owner_refused() -> None:
    registry = Registry()
    assert registry.register(NodeInfo("x" * 256, 1), owner=1, seed=0) is None
    assert registry.register(NodeInfo("x" * 255, 1), owner=1, seed=0) is not None
    assert registry.register(NodeInfo("y", 1), owner=1, seed=0) is None


def test_unregister_name_and_names_listing() -> None:
    registry = Registry()
    registry.register(NodeInfo("a", 10), owner="c1", seed=0)
    registry.register(NodeInfo("b", 20), owner="c2", seed=0)
    assert registry.names() == [("a", 10), ("b", 20)]
    entry = registry.unregister_name("a")
    assert entry is not None and entry.owner == "c1"
    assert registry.unregister_name("a") is None
    assert registry.names() == [("b", 20)]
    assert len(registry) == 1


def test_remembered_names_are_bounded() -> None:
    registry = Registry(max_remembered=3)
    for i in range(5):
        registry.register(NodeInfo(f"n{i}", 1), owner=i, seed=0)
        registry.unregister_owner(i)
    assert [name for name, _ in registry.remembered()] == ["n2", "n3", "n4"]
