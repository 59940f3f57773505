"""The ``[node]`` table's ``hidden`` key and ``philipjose run --hidden``: a tree's node is visible by
default, like ``erl``, and hidden when asked (checked when the tree loads, handed to the node)."""

from __future__ import annotations

from pathlib import Path

import pytest

from philipjose.supervisors.config import load_config
from philipjose.supervisors.errors import ConfigError
from tests.supervisors.node_keys import node_attribute_under_run, tree


def test_the_key_is_read_and_checked(tmp_path: Path) -> None:
    assert load_config(tree(tmp_path, "hidden = true")).node.hidden is True  # type: ignore[union-attr]
    assert load_config(tree(tmp_path, "")).node.hidden is False  # type: ignore[union-attr]
    for bad in ("1", '"yes"'):
        with pytest.raises(ConfigError) as info:
            load_config(tree(tmp_path, f"hidden = {bad}"))
        assert info.value.key == "node.hidden"


@pytest.mark.interop
@pytest.mark.parametrize(
    ("line", "args", "expected"),
    [("", (), "False"), ("", ("--hidden",), "True"), ("hidden = true", (), "True")],
)
async def test_run_starts_a_visible_or_hidden_node(
    tmp_path: Path, line: str, args: tuple[str, ...], expected: str
) -> None:
    assert await node_attribute_under_run(tmp_path, "hidden", line, *args) == expected
