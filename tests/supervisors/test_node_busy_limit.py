"""The ``[node]`` table's ``dist_buf_busy_limit`` (issue 13, back-pressure): checked when the tree
loads, and handed to the node that ``philipjose run`` starts."""

from __future__ import annotations

import secrets
import signal
from pathlib import Path

import pytest
import trio

from philipjose.supervisors.config import load_config
from philipjose.supervisors.errors import ConfigError
from tests.supervisors.test_cli import Lines, _env, _expect, _free_port, run_with_epmd
from tests.tools import require

WORKER = """
import philipjose as pj

async def report():
    print("limit", pj.node.current().dist_buf_busy_limit, flush=True)
    await pj.receive()

def start():
    return pj.spawn_link(report)
"""


def _tree(tmp_path: Path, node_lines: str) -> Path:
    path = tmp_path / "tree.toml"
    path.write_text(f'[node]\nname = "t@localhost"\n{node_lines}\n')
    return path


def test_the_limit_is_read_and_checked(tmp_path: Path) -> None:
    assert load_config(_tree(tmp_path, "dist_buf_busy_limit = 4096")).node.dist_buf_busy_limit == 4096  # type: ignore[union-attr]
    assert load_config(_tree(tmp_path, "")).node.dist_buf_busy_limit is None  # type: ignore[union-attr]
    for bad in ("0", "-5", "1.5", '"1M"', "true"):
        with pytest.raises(ConfigError) as info:
            load_config(_tree(tmp_path, f"dist_buf_busy_limit = {bad}"))
        assert info.value.key == "node.dist_buf_busy_limit"
        assert "positive integer" in info.value.reason


@pytest.mark.interop
async def test_run_starts_the_node_with_the_limit(tmp_path: Path) -> None:
    require("epmd")
    port = _free_port()
    env = dict(_env(), ERL_EPMD_PORT=str(port))
    (tmp_path / "bp_worker.py").write_text(WORKER)
    tree = tmp_path / "node.toml"
    tree.write_text(
        f'python_path = ["."]\n[node]\nname = "pjbp_{secrets.token_hex(4)}"\ncookie = "c"\n'
        "dist_buf_busy_limit = 123456\n"
        '[[children]]\nid = "report"\nstart = "bp_worker:start"\n'
    )
    async with run_with_epmd(tree, env) as run:
        assert run.stdout is not None
        seen = await _expect(Lines(run.stdout), "limit ")
        assert seen[-1].split() == ["limit", "123456"]
        run.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await run.wait() == 0
