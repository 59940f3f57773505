"""The ``[node]`` table's ``dist_buf_busy_limit`` (issue 13, back-pressure): checked when the tree
loads, and handed to the node that ``philipjose run`` starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from philipjose.supervisors.config import load_config
from philipjose.supervisors.errors import ConfigError
from tests.supervisors.node_keys import node_attribute_under_run, tree


def test_the_limit_is_read_and_checked(tmp_path: Path) -> None:
    assert load_config(tree(tmp_path, "dist_buf_busy_limit = 4096")).node.dist_buf_busy_limit == 4096  # type: ignore[union-attr]
    assert load_config(tree(tmp_path, "")).node.dist_buf_busy_limit is None  # type: ignore[union-attr]
    for bad in ("0", "-5", "1.5", '"1M"', "true"):
        with pytest.raises(ConfigError) as info:
            load_config(tree(tmp_path, f"dist_buf_busy_limit = {bad}"))
        assert info.value.key == "node.dist_buf_busy_limit"
        assert "positive integer" in info.value.reason


@pytest.mark.interop
async def test_run_starts_the_node_with_the_limit(tmp_path: Path) -> None:
    assert (
        await node_attribute_under_run(tmp_path, "dist_buf_busy_limit", "dist_buf_busy_limit = 123456")
        == "123456"
    )
