"""Mixed farms against real ``erl`` nodes: Erlang workers beside Python ones (private EPMD, loopback).

The Erlang tasks are ``tests/interop/erl/pj_farm_tasks.erl``, compiled with the real ``erlc``; the
farm starts its own node (named on ``localhost``, like the ``-sname`` erl nodes) with the peers'
cookie.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

from philipjose import Atom, farm
from tests.farm.test_farm import Watch
from tests.node.support import unique
from tests.tools import Otp, require

from .dist_support import COOKIE, Peer, private_epmd, start_peer

pytestmark = pytest.mark.interop

TASKS_SOURCE = Path(__file__).parent / "erl" / "pj_farm_tasks.erl"
TASKS = "pj_farm_tasks"


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    out = tmp_path_factory.mktemp(f"farm-tasks-{otp}")
    subprocess.run([require("erlc", otp), "-o", str(out), str(TASKS_SOURCE)], check=True)
    return out


class Setting:
    """A private EPMD (the farm's node registers there) and the erl nodes started on it."""

    def __init__(self, stack: AsyncExitStack, epmd: int, beam_dir: Path) -> None:
        self.stack, self.epmd, self.beam_dir = stack, epmd, beam_dir

    async def erl(self, name: str | None = None) -> Peer:
        """A running erl node (a fresh name, or ``name`` again) with the tasks' module on its path."""
        name = name or unique("erlw")
        argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(self.beam_dir)]
        peer = await self.stack.enter_async_context(
            start_peer([*argv, "-eval", 'io:format("READY~n")'], self.epmd, name)
        )
        await peer.line("READY")
        return peer


@asynccontextmanager
async def mixed_setting(
    beam_dir: Path, monkeypatch: pytest.MonkeyPatch, erl_nodes: int
) -> AsyncIterator[list[Peer]]:
    """A private EPMD and ``erl_nodes`` running erl nodes (its ``Setting`` last)."""
    async with AsyncExitStack() as stack:
        epmd = await stack.enter_async_context(private_epmd())
        monkeypatch.setenv("ERL_EPMD_PORT", str(epmd))
        setting = Setting(stack, epmd, beam_dir)
        yield [*[await setting.erl() for _ in range(erl_nodes)], setting]  # type: ignore[list-item]


def where(x: int) -> tuple[int, int]:
    return os.getpid(), x


def python_loser(path: str) -> str:
    """Says it runs (its OS pid in ``path``, written whole), then sleeps in C: only a kill stops it."""
    Path(path + ".tmp").write_text(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(1000)
    return "python lost"


def python_winner(path: str) -> str:
    """Wins once the Erlang loser is running (it writes ``path``)."""
    while not os.path.exists(path):
        time.sleep(0.01)  # polls the Erlang side's file: the task's own work, not a test's wait
    return "python won"


async def test_two_python_and_two_erlang_workers_map_concurrently(
    beam_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        mixed_setting(beam_dir, monkeypatch, 2) as (a, b, _),
        farm.Farm(workers=2, erlang_nodes=[a.name, b.name], cookie=COOKIE) as f,
    ):
        got: dict[str, list[Any]] = {}

        async def erlang_side() -> None:
            got["erl"] = await f.map(farm.erl(TASKS, "where"), range(200))

        async def python_side() -> None:
            got["py"] = await f.map(where, range(200))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(erlang_side)
            nursery.start_soon(python_side)
        kinds = {w.node: w for w in f.workers}
        # chunks, reductions, broadcasts and errors of Erlang tasks
        sums = await f.map(farm.erl("lists", "sum"), [[1, 2], [3, 4, 5]], chunksize=2)
        total = await f.reduce(farm.erl("erlang", "+"), range(1, 101), chunks=3)
        joined = await f.reduce(farm.erl("lists", "append"), [[1], [2], [3], [4]], initial=[0])
        nodes = await f.broadcast(farm.erl("erlang", "node"))
        with pytest.raises(farm.TaskError) as raised:
            await f.submit(farm.erl("erlang", "list_to_integer"), [120, 121])
    assert [x for _, x in got["erl"]] == list(range(200))
    assert {n for n, _ in got["erl"]} == {Atom(a.name), Atom(b.name)}
    assert [x for _, x in got["py"]] == list(range(200))
    python_pids = {p for p, _ in got["py"]}
    assert len(python_pids) == 2 and os.getpid() not in python_pids
    assert set(kinds) >= {a.name, b.name} and len(kinds) == 4
    assert kinds[a.name].tasks_done + kinds[b.name].tasks_done >= 200
    assert sums == [3, 12] and total == 5050 and joined == [0, 1, 2, 3, 4]
    assert sorted(nodes) == sorted([Atom(a.name), Atom(b.name)])
    assert raised.value.remote_type == "erlang.error" and raised.value.message == "badarg"
    assert raised.value.__cause__ is not None and raised.value.__cause__.reason == Atom("badarg")


async def test_killing_an_erl_worker_mid_map_reruns_its_tasks_on_the_other(
    beam_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Watch()
    async with (
        mixed_setting(beam_dir, monkeypatch, 2) as (a, b, setting),
        farm.Farm(erlang_nodes=[a.name, b.name], cookie=COOKIE, progress=watch) as f,
    ):

        async def kill_a() -> None:
            await watch.until(lambda c: c.completed >= 20)
            a.kill()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(kill_a)
            results = await f.map(farm.erl(TASKS, "busy_where"), range(200))
        lost = {w.node: w for w in f.workers}[a.name]
        counters = f.counters
        # the farm reconnects under the policy's backoff: the node is back once it answers again
        await setting.erl(a.name)
        await watch.until(lambda c: c.workers == 2)
        back = sorted(await f.broadcast(farm.erl("erlang", "node")))
    assert [x for _, x in results] == list(range(200))
    ran_on = {n for n, _ in results}
    assert Atom(b.name) in ran_on
    assert not lost.alive and lost.cause == "its connection was lost"
    assert counters.retries >= 1 and counters.workers_lost >= 1
    assert back == sorted([Atom(a.name), Atom(b.name)])


async def test_race_between_erlang_and_python_kills_the_loser_on_each_side(
    beam_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    watch = Watch()
    async with (
        mixed_setting(beam_dir, monkeypatch, 1) as (e, _),
        farm.Farm(workers=2, erlang_nodes=[e.name], cookie=COOKIE, progress=watch) as f,
    ):
        # the Erlang task wins once the Python one runs: that worker is killed and replaced
        started = str(tmp_path / "python-started")
        won = await f.race(lambda: python_loser(started), farm.Erl(TASKS, "wait_file", [started]))
        loser_pid = int(won)
        await watch.until(lambda c: c.workers_lost >= 1 and c.workers == 3)
        python_workers = [w.os_pid for w in f.workers if w.alive and w.node != e.name]
        # the Python task wins once the Erlang one runs: its process is killed
        parked = str(tmp_path / "erlang-started")
        loser = farm.Erl(TASKS, "parked", [Atom("race_loser"), parked])
        assert await f.race(loser, lambda: python_winner(parked)) == "python won"
        race_reason = await f.submit(farm.Erl(TASKS, "gone", [parked]))
        # a cancelled and a timed-out Erlang task are killed the same way
        cancelled_path = str(tmp_path / "cancelled")
        future = f.submit(farm.Erl(TASKS, "parked", [Atom("cancelled"), cancelled_path]))
        await f.submit(python_winner, cancelled_path)
        assert future.cancel()
        cancel_reason = await f.submit(farm.Erl(TASKS, "gone", [cancelled_path]))
        timed_path = str(tmp_path / "timed")
        with pytest.raises(farm.TaskTimeout):
            await f.options(timeout=0.5).submit(farm.Erl(TASKS, "parked", [Atom("timed"), timed_path]))
        timeout_reason = await f.submit(farm.Erl(TASKS, "gone", [timed_path]))
        assert await f.submit(farm.erl("erlang", "whereis"), Atom("race_loser")) == Atom("undefined")
        # a farm that closes kills the Erlang tasks it still runs (a node given two places at once)
        closing = str(tmp_path / "closing")
        async with farm.Farm(erlang_nodes=[farm.Machine(e.name, 2, kind="erlang")], cookie=COOKIE) as g:
            g.submit(farm.Erl(TASKS, "parked", [Atom("at_close"), closing]))
            await g.submit(farm.Erl(TASKS, "wait_file", [closing]))
            infos = {w.node: w for w in g.workers}
        close_reason = await f.submit(farm.Erl(TASKS, "gone", [closing]))
    assert not psutil.pid_exists(loser_pid) and loser_pid not in python_workers and len(python_workers) == 2
    assert race_reason == cancel_reason == timeout_reason == close_reason == Atom("killed")
    assert infos[e.name].alive is False and infos[e.name].cause == "the farm stopped it"


async def test_journal_speculation_and_executor_take_erlang_tasks(
    beam_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite"
    straggler = str(tmp_path / "straggler")
    async with mixed_setting(beam_dir, monkeypatch, 2) as (a, b, _):
        nodes = [a.name, b.name]
        async with farm.Farm(erlang_nodes=nodes, cookie=COOKIE, journal=journal) as f:
            first = await f.map(farm.erl(TASKS, "where"), range(10))
        async with farm.Farm(erlang_nodes=nodes, cookie=COOKIE, journal=journal) as f:
            again = await f.map(farm.erl(TASKS, "where"), range(10))
            replayed = f.counters.replayed
        policy = farm.Speculation(min_runtime=0.2)
        async with farm.Farm(erlang_nodes=nodes, cookie=COOKIE, speculation=policy) as f:
            with trio.fail_after(20):  # the straggler alone would take 30 s
                spread = await f.map(farm.erl(TASKS, "once_slow"), [straggler] * 20, range(20))
            speculated = f.counters

        def executor() -> tuple[Any, list[int]]:
            with farm.Executor(erlang_nodes=[a.name], cookie=COOKIE) as ex:
                return ex.submit(farm.Erl("erlang", "node")).result(), list(
                    ex.map(farm.erl("erlang", "abs"), [-1, 2])
                )

        from_executor = await trio.to_thread.run_sync(executor)
    assert again == first and replayed == 10  # from the journal: not run again
    assert [x for _, x in spread] == list(range(20))
    assert speculated.duplicates_started >= 1 and speculated.duplicates_won >= 1
    assert from_executor == (Atom(a.name), [1, 2])


async def test_erlang_tasks_fail_when_no_erlang_worker_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    async with private_epmd() as epmd:
        monkeypatch.setenv("ERL_EPMD_PORT", str(epmd))
        nobody = unique("nobody")
        async with farm.Farm(workers=1, erlang_nodes=[nobody], cookie=COOKIE, max_launch_failures=1) as f:
            with pytest.raises(farm.FarmError, match=f"no machine can run erlang workers.*{nobody}"):
                f.submit(farm.Erl("erlang", "node"))
            assert await f.submit(where, 1) == (f.workers[0].os_pid, 1)  # the Python side goes on
        with pytest.raises(farm.FarmError, match=f"no machine can run a worker.*{nobody}"):
            async with farm.Farm(erlang_nodes=[nobody], cookie=COOKIE, max_launch_failures=1):
                pass  # an Erlang-only farm none of whose nodes answers does not start
        async with farm.Farm(workers=1) as f:
            with pytest.raises(farm.FarmError, match="no Erlang workers"):
                f.submit(farm.erl("erlang", "node"))
            with pytest.raises(TypeError, match="whole task"):
                await f.map(farm.Erl("erlang", "node"), [1])
