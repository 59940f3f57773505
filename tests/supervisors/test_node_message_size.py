"""The ``[node]`` table's ``max_message_size`` (issue 16): checked when the tree loads, and handed to
the node that ``philipjose run`` starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from philipjose.supervisors.config import load_config
from philipjose.supervisors.errors import ConfigError
from tests.supervisors.node_keys import node_attribute_under_run, tree


def test_the_size_is_read_and_checked(tmp_path: Path) -> None:
    node = load_config(tree(tmp_path, "max_message_size = 2000000")).node
    assert node is not None and node.max_message_size == 2_000_000
    node = load_config(tree(tmp_path, "")).node
    assert node is not None and node.max_message_size is None
    for bad in ("0", "-5", "1.5", '"1G"', "true", str(1 << 32)):
        with pytest.raises(ConfigError) as info:
            load_config(tree(tmp_path, f"max_message_size = {bad}"))
        assert info.value.key == "node.max_message_size"
        assert "positive integer" in info.value.reason


@pytest.mark.interop
async def test_run_starts_the_node_with_the_size(tmp_path: Path) -> None:
    assert (
        await node_attribute_under_run(tmp_path, "max_message_size", "max_message_size = 2000000")
        == "2000000"
    )
