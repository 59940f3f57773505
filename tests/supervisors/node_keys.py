"""Tests of a ``[node]`` key of ``philipjose run``'s tree: the tree file, and what the started node got."""

from __future__ import annotations

import secrets
import signal
from pathlib import Path

import trio

from tests.supervisors.test_cli import Lines, _env, _expect, _free_port, run_with_epmd
from tests.tools import require

_WORKER = """
import philipjose as pj

async def report():
    print("node-attribute", pj.node.current().{attribute}, flush=True)
    await pj.receive()

def start():
    return pj.spawn_link(report)
"""


def tree(tmp_path: Path, node_lines: str) -> Path:
    """A tree file with only a ``[node]`` table: its name and ``node_lines``."""
    path = tmp_path / "tree.toml"
    path.write_text(f'[node]\nname = "t@localhost"\n{node_lines}\n')
    return path


async def node_attribute_under_run(tmp_path: Path, attribute: str, node_lines: str, *args: str) -> str:
    """What ``pj.node.current().<attribute>`` is in the node ``philipjose run *args`` starts for a
    tree whose ``[node]`` table has ``node_lines`` (its one child prints it); the run is then stopped
    with SIGTERM and must exit 0."""
    require("epmd")
    env = dict(_env(), ERL_EPMD_PORT=str(_free_port()))
    (tmp_path / "attribute_worker.py").write_text(_WORKER.format(attribute=attribute))
    path = tmp_path / "node.toml"
    path.write_text(
        f'python_path = ["."]\n[node]\nname = "pjnk_{secrets.token_hex(4)}"\ncookie = "c"\n{node_lines}\n'
        '[[children]]\nid = "report"\nstart = "attribute_worker:start"\n'
    )
    async with run_with_epmd(path, env, *args) as run:
        assert run.stdout is not None
        seen = await _expect(Lines(run.stdout), "node-attribute ")
        run.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await run.wait() == 0
    return seen[-1].strip().split(maxsplit=1)[1]
