"""The ``[node]`` table's ``hidden`` key and ``philipjose run --hidden``: a tree's node is visible by
default, like ``erl``, and hidden when asked (checked when the tree loads, handed to the node)."""

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
    print("hidden", pj.node.current().hidden, flush=True)
    await pj.receive()

def start():
    return pj.spawn_link(report)
"""


def _tree(tmp_path: Path, node_lines: str) -> Path:
    path = tmp_path / "tree.toml"
    path.write_text(f'[node]\nname = "t@localhost"\n{node_lines}\n')
    return path


def test_the_key_is_read_and_checked(tmp_path: Path) -> None:
    assert load_config(_tree(tmp_path, "hidden = true")).node.hidden is True  # type: ignore[union-attr]
    assert load_config(_tree(tmp_path, "")).node.hidden is False  # type: ignore[union-attr]
    for bad in ("1", '"yes"'):
        with pytest.raises(ConfigError) as info:
            load_config(_tree(tmp_path, f"hidden = {bad}"))
        assert info.value.key == "node.hidden"


@pytest.mark.interop
@pytest.mark.parametrize(
    ("line", "args", "expected"),
    [("", (), "False"), ("", ("--hidden",), "True"), ("hidden = true", (), "True")],
)
async def test_run_starts_a_visible_or_hidden_node(
    tmp_path: Path, line: str, args: tuple[str, ...], expected: str
) -> None:
    require("epmd")
    port = _free_port()
    env = dict(_env(), ERL_EPMD_PORT=str(port))
    (tmp_path / "hidden_worker.py").write_text(WORKER)
    tree = tmp_path / "node.toml"
    tree.write_text(
        f'python_path = ["."]\n[node]\nname = "pjhid_{secrets.token_hex(4)}"\ncookie = "c"\n{line}\n'
        '[[children]]\nid = "report"\nstart = "hidden_worker:start"\n'
    )
    async with run_with_epmd(tree, env, *args) as run:
        assert run.stdout is not None
        seen = await _expect(Lines(run.stdout), "hidden ")
        assert seen[-1].split() == ["hidden", expected]
        run.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await run.wait() == 0
