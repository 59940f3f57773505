"""The ``[node]`` table's ``dist_buf_busy_limit`` (issue 13, back-pressure): checked when the tree
loads, and handed to the node that ``philipjose run`` starts."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from philipjose.supervisors.config import load_config
from philipjose.supervisors.errors import ConfigError
from tests.supervisors.test_cli import Lines, _env, _expect, _free_port
from tests.tools import require

WORKER = '''
import philipjose as pj

async def report():
    print("limit", pj.node.current().dist_buf_busy_limit, flush=True)
    await pj.receive()

def start():
    return pj.spawn_link(report)
'''


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
    epmd_path = require("epmd")
    port = _free_port()
    env = dict(_env(), ERL_EPMD_PORT=str(port))
    (tmp_path / "bp_worker.py").write_text(WORKER)
    tree = tmp_path / "node.toml"
    tree.write_text(
        f'python_path = ["."]\n[node]\nname = "pjbp_{secrets.token_hex(4)}"\ncookie = "c"\n'
        "dist_buf_busy_limit = 123456\n"
        '[[children]]\nid = "report"\nstart = "bp_worker:start"\n'
    )
    epmd = await trio.lowlevel.open_process(
        [epmd_path, "-d", "-d", "-port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    run = None
    try:
        assert epmd.stdout is not None
        await _expect(Lines(epmd.stdout), "entering the main select() loop")
        run = await trio.lowlevel.open_process(
            [sys.executable, "-m", "philipjose", "run", str(tree)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert run.stdout is not None
        seen = await _expect(Lines(run.stdout), "limit ")
        assert seen[-1].split() == ["limit", "123456"]
        run.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await run.wait() == 0
    finally:
        for process in (run, epmd):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
