"""The ``[node]`` table's ``max_message_size`` (issue 16): checked when the tree loads, and handed to
the node that ``philipjose run`` starts."""

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
    print("size", pj.node.current().max_message_size, flush=True)
    await pj.receive()

def start():
    return pj.spawn_link(report)
"""


def _tree(tmp_path: Path, node_lines: str) -> Path:
    path = tmp_path / "tree.toml"
    path.write_text(f'[node]\nname = "t@localhost"\n{node_lines}\n')
    return path


def test_the_size_is_read_and_checked(tmp_path: Path) -> None:
    node = load_config(_tree(tmp_path, "max_message_size = 2000000")).node
    assert node is not None and node.max_message_size == 2_000_000
    node = load_config(_tree(tmp_path, "")).node
    assert node is not None and node.max_message_size is None
    for bad in ("0", "-5", "1.5", '"1G"', "true", str(1 << 32)):
        with pytest.raises(ConfigError) as info:
            load_config(_tree(tmp_path, f"max_message_size = {bad}"))
        assert info.value.key == "node.max_message_size"
        assert "positive integer" in info.value.reason


@pytest.mark.interop
async def test_run_starts_the_node_with_the_size(tmp_path: Path) -> None:
    require("epmd")
    port = _free_port()
    env = dict(_env(), ERL_EPMD_PORT=str(port))
    (tmp_path / "size_worker.py").write_text(WORKER)
    tree = tmp_path / "node.toml"
    tree.write_text(
        f'python_path = ["."]\n[node]\nname = "pjsz_{secrets.token_hex(4)}"\ncookie = "c"\n'
        "max_message_size = 2000000\n"
        '[[children]]\nid = "report"\nstart = "size_worker:start"\n'
    )
    async with run_with_epmd(tree, env) as run:
        assert run.stdout is not None
        seen = await _expect(Lines(run.stdout), "size ")
        assert seen[-1].split() == ["size", "2000000"]
        run.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await run.wait() == 0
