"""The farm's dashboard in a real headless Chromium, and its JSON under 100,000 tasks."""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio

from philipjose.farm import Executor, Farm, Machine, TaskError
from philipjose.farm.history import TASKS_PER_WORKER
from tests.dashboard import _tasks
from tests.dashboard.browser import browser
from tests.dashboard.client import get, get_now
from tests.supervisors.test_cli import _env, _free_port
from tests.tools import require


async def test_the_farm_page_is_live_shows_replacements_and_tracebacks(tmp_path: Path) -> None:
    token = secrets.token_hex(4)
    async with browser(tmp_path) as page, Farm(workers=2, dashboard=0) as farm:
        assert farm.dashboard_url is not None and farm.dashboard_url.startswith("http://127.0.0.1:")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(farm.map, _tasks.slow, range(5000))  # ~50 s: cancelled when done here
            failing = farm.submit(_tasks.fails, token)
            await page.open(farm.dashboard_url)
            await page.script("window.notReloaded = true;")
            # every worker's node name, in its slot's row
            nodes = {info.node for info in farm.workers}
            assert len(nodes) == 2

            def rows() -> dict[str, str]:
                return page.js(
                    "const r = {}; document.querySelectorAll('#workers tbody tr').forEach(tr => "
                    "{ r[tr.dataset.slot] = tr.querySelector('.node').textContent; }); return r;"
                )

            await page.wait("both workers' node names", lambda: set(rows().values()) == nodes)
            # the done count increases on the same page (no reload)
            first = int((await page.text("#done")).replace(",", ""))
            await page.wait(
                "a larger done count",
                lambda: (
                    int(page.js("return document.getElementById('done').textContent").replace(",", ""))
                    > first
                ),
            )
            assert await page.script("return window.notReloaded === true;")
            # a failed task's remote traceback
            with pytest.raises(TaskError):
                await failing
            await page.wait(
                "the failed task's traceback",
                lambda: (
                    token
                    in page.js(
                        "return [...document.querySelectorAll('#failures pre.traceback')]"
                        ".map(e => e.textContent).join('\\n');"
                    )
                ),
            )
            tb = await page.text("#failures pre.traceback")
            assert "Traceback (most recent call last)" in tb and "in fails" in tb and token in tb
            # SIGKILL the worker of slot 0: its row shows the replacement
            victim = next(i for i in farm.workers if i.node.startswith("w0g"))
            assert victim.os_pid is not None
            os.kill(victim.os_pid, signal.SIGKILL)

            def replaced() -> bool:
                row = page.js(
                    "const tr = document.querySelector('#workers tr[data-slot=\"0\"]'); return tr && "
                    "[tr.querySelector('.node').textContent, tr.querySelector('.os-pid').textContent, "
                    "tr.querySelector('.state').textContent];"
                )
                if not row:
                    return False
                node, os_pid, state = row
                return (
                    node not in ("", victim.node)
                    and os_pid not in ("", str(victim.os_pid))
                    and state
                    in (
                        "up",
                        "busy",
                    )
                )

            await page.wait("slot 0's replacement worker", replaced)
            replacement = next(i for i in farm.workers if i.alive and i.node.startswith("w0g"))
            assert replacement.node != victim.node
            assert str(replacement.node) in await page.text('#workers tr[data-slot="0"] .node')
            assert await page.script("return window.notReloaded === true;")
            await page.screenshot(tmp_path / "farm.png")
            # the farmer's node page: its workers' supervisor as a tree, its connections to them
            await page.open(farm.dashboard_url + "node")
            await page.wait(
                "the workers' supervision tree",
                lambda: page.js("return document.querySelectorAll('#trees .tree-node').length") >= 3,
            )
            connections = await page.text("#connections")
            assert replacement.node in connections
            await page.screenshot(tmp_path / "farm-node.png")
            nursery.cancel_scope.cancel()  # the map's tasks are cancelled with it


async def test_the_json_answers_quickly_throughout_100000_tasks() -> None:
    """100,000 tiny tasks in one map, in chunks of 250 (the farm's fast path: 400 farm tasks, so the
    test takes a second or two; single tasks take several, and their answers stay under 200 ms too
    now that ``map`` lets the loop run while it queues them: docs/benchmarks.md). Without lanes,
    so that the tasks cross the node connections whose byte counts it checks."""
    async with Farm(workers=2, dashboard=0, lanes=False) as farm:
        url = farm.dashboard_url
        assert url is not None
        done = threading.Event()
        times: list[float] = []
        seen: list[int] = []

        def poll() -> None:  # as a few pages would: each JSON every 20 ms
            while not done.wait(0.02):
                for path in ("api/farm", "api/node"):
                    start = time.perf_counter()
                    data = get_now(url + path)
                    times.append(time.perf_counter() - start)
                    if path == "api/farm":
                        seen.append(data["counters"]["resolved"])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, poll)
            try:
                results = await farm.map(_tasks.tiny, range(100_000), chunksize=250)
            finally:
                done.set()
        assert results[:3] == [1, 2, 3] and len(results) == 100_000
        with trio.fail_after(30):  # a snapshot is served again for up to MAX_AGE seconds
            final = await get(url + "api/farm")
            while final["counters"]["resolved"] < 400:
                final = await get(url + "api/farm")
        assert final["counters"]["submitted"] == final["counters"]["completed"] == 400
        assert sum(len(w["tasks"]) for w in final["timeline"]["workers"]) <= 2 * TASKS_PER_WORKER
        assert len(times) >= 10 and len({n for n in seen if 0 < n < 400}) >= 2  # answers while it ran
        # the 400 tasks went out and their results came back: more than 50 bytes each, each way (a
        # snapshot is served again for up to MAX_AGE seconds: the first may be from the map's start)
        with trio.fail_after(30):
            while True:
                node = await get(url + "api/node")
                links = {c["node"]: c for c in node["connections"]}
                if sum(link["bytes_in"] for link in links.values()) > 400 * 50:
                    break
        assert set(links) == {w.node for w in farm.workers}
        assert sum(link["bytes_out"] for link in links.values()) > 400 * 50
        for link in links.values():
            assert link["state"] == "up" and not link["tls"] and link["hidden"]
            assert link["bytes_out"] > 0 and link["bytes_in"] > 0 and link["queued"] >= 0
        worst = max(times)
        assert worst < 0.2, f"the slowest of {len(times)} answers took {worst * 1000:.0f} ms"


def test_an_executor_serves_the_farm_page() -> None:
    with Executor(max_workers=1, dashboard=0) as executor:
        url = executor.dashboard_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        assert executor.submit(_tasks.tiny, 41).result(timeout=60) == 42
        deadline = time.monotonic() + 30  # a snapshot is served again for up to MAX_AGE seconds
        data = get_now(url + "api/farm")
        while data["counters"]["completed"] < 1 and time.monotonic() < deadline:
            data = get_now(url + "api/farm")
        assert data["counters"]["completed"] == 1
        assert [w["node"] for w in data["workers"]] == [w.node for w in executor.farm.workers]


_SCRIPT = """
import json
import urllib.request

import trio


def fetch(url):
    with urllib.request.urlopen(url) as answer:
        return json.load(answer)


async def main(farm):
    data = await trio.to_thread.run_sync(fetch, farm.dashboard_url + "api/farm")
    return f"workers on the page: {len(data['workers'])}"
"""


def test_farm_run_serves_the_page_and_prints_its_url(tmp_path: Path) -> None:
    script = tmp_path / "look.py"
    script.write_text(_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "run", "--workers=2", "--dashboard=0", str(script)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done
    assert done.stdout == "workers on the page: 2\n"
    assert re.search(r"^dashboard: http://127\.0\.0\.1:\d+/$", done.stderr, re.MULTILINE), done.stderr


async def test_the_page_refuses_other_host_names_on_loopback() -> None:
    """A page elsewhere cannot read a loopback dashboard through DNS rebinding: its Host is refused."""
    async with Farm(workers=1, dashboard=0) as farm:
        assert farm.dashboard_url is not None
        port = int(farm.dashboard_url.rsplit(":", 1)[1].strip("/"))

        def status(host: str) -> int:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("GET", "/api/farm", headers={"Host": host})
                return connection.getresponse().status
            finally:
                connection.close()

        assert await trio.to_thread.run_sync(status, f"127.0.0.1:{port}") == 200
        assert await trio.to_thread.run_sync(status, f"localhost:{port}") == 200
        assert await trio.to_thread.run_sync(status, "attacker.example") == 400


async def test_a_failing_machine_shows_as_retrying_and_its_slot_as_backing_off() -> None:
    require("ssh")
    refused = Machine("127.0.0.1", 1, ssh_options=(f"Port={_free_port()}",))
    machines = [Machine("localhost", 1), refused]
    # 4 launches a machine may fail: it retries after 1, 2 and 4 s (less 25% at worst) before it is down
    async with Farm(machines=machines, farmer_host="127.0.0.1", max_launch_failures=4, dashboard=0) as farm:
        url = farm.dashboard_url
        assert url is not None
        with trio.fail_after(60):
            while True:
                data = await get(url + "api/farm")
                local, machine = data["machines"]
                if machine["state"] != "up":
                    break
        assert (machine["host"], machine["state"], machine["workers"]) == ("127.0.0.1", "retrying", 0)
        assert "Connection refused" in machine["last_error"] and machine["retry_in"] >= 0
        assert (local["host"], local["state"], local["workers"]) == ("localhost", "up", 1)
        assert [(w["machine"], w["state"]) for w in data["workers"]] == [
            ("localhost", "up"),
            ("127.0.0.1", "backing off"),
        ]
