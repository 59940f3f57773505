"""The node page: ``philipjose run --dashboard`` (a real subprocess) in a real headless Chromium,
``[node] dashboard`` in a tree file, and ``pj.run(..., dashboard=...)``."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import dashboard, supervisors
from philipjose.supervisors.config import load_config
from philipjose.supervisors.errors import ConfigError
from tests.dashboard.browser import browser
from tests.dashboard.client import fetch, get
from tests.supervisors.node_keys import tree
from tests.supervisors.test_cli import REPO, Lines, _env, _expect, _free_port, run_with_epmd

_TREE_NAMES = {"example_top", "kv", "store", "workers", "ticker", "flaky", "janitor"}


def _labels(node: dict[str, Any]) -> set[str]:
    return {node["name"], node["id"]} | {x for child in node["children"] for x in _labels(child)}


async def test_the_node_page_of_philipjose_run_shows_the_tree_by_name(tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "philipjose",
            "--log-level",
            "WARNING",
            "run",
            "--dashboard",
            "0",
            "examples/tree.toml",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        lines = Lines(process.stdout)
        seen = await _expect(lines, "philipjose run: dashboard at ")
        url = seen[-1].split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        data = await get(url + "api/node")
        assert data["kind"] == "node" and not data["distributed"]
        assert {"example_top", "kv"} <= {p["name"] for p in data["processes"]}
        [top] = data["trees"]
        assert top["name"] == "example_top" and _TREE_NAMES - {"kv"} <= _labels(top)
        async with browser(tmp_path) as page:
            await page.open(url)

            def drawn() -> set[str]:
                return set(
                    page.js(
                        "return [...document.querySelectorAll('#trees .tree-node')]"
                        ".flatMap(g => [g.dataset.name, g.dataset.id]);"
                    )
                )

            await page.wait("the tree's processes by name", lambda: drawn() >= _TREE_NAMES)
            names = await page.script(
                "return [...document.querySelectorAll('#processes td.name')].map(td => td.textContent);"
            )
            assert {"example_top", "kv"} <= set(names)
            await page.screenshot(tmp_path / "node.png")
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_the_node_table_takes_a_dashboard_address(tmp_path: Path) -> None:
    for good, value in (("8050", 8050), ('"0.0.0.0:8050"', "0.0.0.0:8050"), ('"[::1]:0"', "[::1]:0")):
        node = load_config(tree(tmp_path, f"dashboard = {good}")).node
        assert node is not None and node.dashboard == value
    for bad in ("-1", "70000", '"x:y"', '":80"', "true", '"[nope]:80"'):
        with pytest.raises(ConfigError) as info:
            load_config(tree(tmp_path, f"dashboard = {bad}"))
        assert info.value.key == "node.dashboard"


@pytest.mark.interop
async def test_run_serves_the_node_page_of_the_node_table(tmp_path: Path) -> None:
    env = dict(_env(), ERL_EPMD_PORT=str(_free_port()))
    name = f"pjdash_{secrets.token_hex(4)}"
    path = tmp_path / "node.toml"
    path.write_text(f'[node]\nname = "{name}"\ncookie = "c"\ndashboard = 0\n')
    async with run_with_epmd(path, env) as run:
        assert run.stdout is not None
        seen = await _expect(Lines(run.stdout), "philipjose run: dashboard at ")
        data = await get(seen[-1].split(" at ", 1)[1].strip() + "api/node")
        assert data["distributed"] and data["node"].startswith(name + "@")
        assert "net_kernel" in {p["name"] for p in data["processes"]}
        run.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await run.wait() == 0


def test_pj_run_serves_the_node_page() -> None:
    async def worker() -> None:
        await pj.receive()

    async def main() -> dict[str, Any]:
        await supervisors.start_link(
            [{"id": "only", "start": (pj.spawn_link, worker)}], strategy="one_for_one", name="solo_top"
        )
        pj.register("lonely", pj.spawn(worker))
        url = dashboard.url()
        assert url is not None
        assert b'data-view="node"' in await fetch(url)  # the node page is the home page
        return await get(url + "api/node")  # type: ignore[no-any-return]

    data = pj.run(main, dashboard=0)
    procs = {p["name"]: p for p in data["processes"]}
    assert {"solo_top", "lonely", "pj_dashboard"} <= set(procs)
    assert procs["solo_top"]["trap_exit"] and procs["solo_top"]["link_count"] >= 2
    [top] = data["trees"]
    assert top["name"] == "solo_top" and [c["id"] for c in top["children"]] == ["only"]
    assert top["children"][0]["running"]
