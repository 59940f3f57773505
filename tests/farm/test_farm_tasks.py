"""Tasks meeting the faults real jobs meet, with real worker processes (local and over a real sshd):
cancelling a running task, a race's losers and broadcasts, huge arguments and results, outcomes that
do not unpickle, a task's own ``SystemExit``."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

import philipjose as pj
from philipjose import farm
from tests.farm.conftest import SshServer

_MB = 1_000_000


def started_at() -> float:
    """When this task started, on the machine's monotonic clock (the same clock in every process)."""
    return time.monotonic()


def pid_of_worker() -> int:
    return os.getpid()


def announce_then_sleep(fifo: str, seconds: float) -> str:
    with open(fifo, "w") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return "slept"


async def wait_running(fifo: Path) -> int:
    """The OS pid of the worker once the task writing to ``fifo`` is running (it blocks until then)."""

    def read() -> int:
        with open(fifo) as source:
            return int(source.readline())

    with trio.fail_after(60):
        return await trio.to_thread.run_sync(read)


def _sleeping(pid: int) -> bool:
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/wchan") as wchan:
            if "nanosleep" in wchan.read():
                return True
    return False


async def wait_sleeping(pid: int) -> None:
    """Wait until a thread of process ``pid`` is blocked in the kernel's nanosleep (a task in
    ``time.sleep``, where an interrupt cannot reach it): bounded polling of /proc, no other way."""
    with trio.fail_after(30):
        while not _sleeping(pid):
            await trio.sleep(0.01)


def make_fifo(tmp_path: Path, name: str = "fifo") -> Path:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    return fifo


# -- cancel ------------------------------------------------------------------------------------------


async def test_cancel_of_a_running_task_frees_its_slot_within_2_s(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    async with farm.Farm(workers=1) as f:
        sleeper = f.submit(announce_then_sleep, str(fifo), 30)
        sleeper_pid = await wait_running(fifo)
        await wait_sleeping(sleeper_pid)
        cancelled_at = time.monotonic()
        assert sleeper.cancel()
        assert not sleeper.cancel()
        start = await f.submit(started_at)
        assert start - cancelled_at < 2.0, f"the next task started {start - cancelled_at:.2f} s after cancel"
        with pytest.raises(concurrent.futures.CancelledError):
            await sleeper
        assert sleeper.cancelled()
        # time.sleep cannot be interrupted: its worker was killed (and reaped) after the grace period
        assert not psutil.pid_exists(sleeper_pid)
        assert await f.submit(pid_of_worker) != sleeper_pid
        c = f.counters
        assert (c.cancelled, c.retries, c.running, c.pending) == (1, 0, 0, 0)  # never run again


def test_executor_cancel_of_a_running_task_stops_it(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    with farm.Executor(workers=1) as ex:
        sleeper = ex.submit(announce_then_sleep, str(fifo), 30)
        trio.run(wait_sleeping, trio.run(wait_running, fifo))
        cancelled_at = time.monotonic()
        assert sleeper.cancel()
        start = ex.submit(started_at).result(timeout=60)
        assert start - cancelled_at < 2.0, f"the next task started {start - cancelled_at:.2f} s after cancel"
        assert sleeper.cancelled()


# -- race losers and broadcast -------------------------------------------------------------------------


def note_pid(path: str) -> int:
    with open(path, "a") as out:
        out.write(f"{os.getpid()}\n")
    return os.getpid()


async def test_broadcast_right_after_a_race_reaches_every_live_worker_once(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    path = str(fifo)
    notes = tmp_path / "broadcast.txt"

    def loser() -> str:
        return announce_then_sleep(path, 1000)

    def winner() -> tuple[str, int]:
        with open(path) as source:  # blocks until the loser is running
            pid = int(source.readline())
        deadline = time.monotonic() + 30
        while not _sleeping(pid) and time.monotonic() < deadline:  # and in time.sleep: it gets killed
            time.sleep(0.01)
        return ("winner", pid)

    async with farm.Farm(workers=2) as f:
        name, loser_pid = await f.race(loser, winner)
        assert name == "winner"
        pids = await f.broadcast(note_pid, str(notes))  # at once: the loser's worker is being killed
        assert len(pids) == 2 and len(set(pids)) == 2
        assert loser_pid not in pids
        assert sorted(int(line) for line in notes.read_text().split()) == sorted(pids)  # once each
        assert sorted(pids) == sorted(w.os_pid for w in f.workers if w.alive)
        assert f.counters.failed == 0


async def test_a_broadcast_queued_behind_a_cancelled_task_runs_on_the_replacement(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    async with farm.Farm(workers=1) as f:
        sleeper = f.submit(announce_then_sleep, str(fifo), 30)
        old_pid = await wait_running(fifo)
        await wait_sleeping(old_pid)
        got: list[list[int]] = []
        async with trio.open_nursery() as nursery:

            async def broadcast() -> None:
                got.append(await f.broadcast(pid_of_worker))

            nursery.start_soon(broadcast)
            with trio.fail_after(10):
                while f.counters.submitted < 2:  # the broadcast's task is queued behind the sleeper
                    await trio.sleep(0.01)
            sleeper.cancel()
        assert len(got[0]) == 1 and got[0][0] != old_pid
        assert got[0] == [w.os_pid for w in f.workers if w.alive]


# -- sizes ---------------------------------------------------------------------------------------------


def big_result(size: int) -> bytes:
    return b"r" * size


async def test_200_mb_arguments_and_results_arrive_on_local_workers() -> None:
    async with farm.Farm(workers=1) as f:
        result = await f.submit(big_result, 200 * _MB)
        assert len(result) == 200 * _MB and result[:1] == b"r" and result[-1:] == b"r"
        del result
        assert await f.submit(len, b"a" * (200 * _MB)) == 200 * _MB
        assert f.counters.workers_lost == 0


async def test_a_2_gib_result_over_a_1_gib_limit_fails_and_no_worker_dies() -> None:
    async with farm.Farm(workers=1, max_message_size=1 << 30) as f:
        before = await f.submit(pid_of_worker)
        with pytest.raises(farm.ResultTooLarge) as info:
            await f.submit(big_result, 2 << 30)
        error = info.value
        assert isinstance(error, farm.TaskError)
        assert error.limit == 1 << 30 and error.size > 2 << 30
        assert f"{error.size} bytes" in str(error) and f"{1 << 30} bytes" in str(error)
        assert "big_result" in str(error)  # it names the task as the farmer knows it
        assert await f.submit(pid_of_worker) == before
        assert f.counters.workers_lost == 0


async def test_arguments_over_the_limit_raise_at_submit_and_nothing_is_sent() -> None:
    async with farm.Farm(workers=1, max_message_size=100_000) as f:
        with pytest.raises(farm.ArgumentsTooLarge) as info:
            f.submit(len, b"a" * 200_000)
        assert isinstance(info.value, farm.TaskError) and isinstance(info.value, ValueError)
        assert info.value.limit == 100_000 and info.value.size > 200_000
        with pytest.raises(farm.ArgumentsTooLarge):
            await f.map(len, [b"a", b"b" * 200_000])
        assert f.counters.submitted == f.counters.resolved  # the map's first chunk was cancelled
        assert await f.submit(len, b"a" * 90_000) == 90_000
        with pytest.raises(ValueError, match="max_message_size"):
            farm.Farm(workers=1, max_message_size=0)


async def test_sizes_on_ssh_workers(sshd_server: SshServer) -> None:
    machine = sshd_server.machine(python=sys.executable, workers=1)
    async with farm.Farm(machines=[machine], farmer_host="127.0.0.1", max_message_size=300 * _MB) as f:
        result = await f.submit(lambda n: b"s" * n, 200 * _MB)
        assert len(result) == 200 * _MB
        del result
        with pytest.raises(farm.ResultTooLarge) as info:  # the worker measured it against its limit
            await f.submit(lambda n: b"s" * n, 301 * _MB)
        assert info.value.limit == 300 * _MB
        assert await f.submit(lambda: 7) == 7
        assert f.counters.workers_lost == 0


# -- the result path -----------------------------------------------------------------------------------


class ExitsWhenUnpickled:
    def __reduce__(self) -> tuple[Any, ...]:
        return sys.exit, (5,)


def exits_when_unpickled() -> ExitsWhenUnpickled:
    return ExitsWhenUnpickled()


def exit_with(code: int) -> None:
    raise SystemExit(code)


def interrupt() -> None:
    raise KeyboardInterrupt


async def test_outcomes_that_raise_when_unpickled_and_tasks_that_exit_are_task_errors() -> None:
    async with farm.Farm(workers=1) as f:
        worker = await f.submit(pid_of_worker)
        with pytest.raises(farm.TaskError) as info:
            await f.submit(exits_when_unpickled)
        assert info.value.remote_type == "builtins.SystemExit"
        assert "could not be unpickled" in info.value.message
        with pytest.raises(farm.TaskError) as info:
            await f.submit(exit_with, 2)
        assert info.value.remote_type == "builtins.SystemExit" and info.value.message == "2"
        assert isinstance(info.value.__cause__, SystemExit) and info.value.__cause__.code == 2
        with pytest.raises(farm.TaskError) as info:
            await f.submit(interrupt)
        assert info.value.remote_type == "builtins.KeyboardInterrupt"
        assert await f.submit(pid_of_worker) == worker  # the same worker: none died
        assert f.counters.workers_lost == 0


def announce_then_spin(fifo: str) -> None:
    with open(fifo, "w") as out:
        out.write(f"{os.getpid()}\n")
    while True:  # pure Python: the interrupt stops it
        pass


def spin() -> None:
    while True:
        pass


def swallow_everything(fifo: str) -> str:
    end = time.monotonic() + 30
    announced = False
    while time.monotonic() < end:
        try:  # a task that will not be interrupted, from before it says it runs: its worker is killed
            if not announced:
                announced = True
                with open(fifo, "w") as out:
                    out.write(f"{os.getpid()}\n")
            while True:
                pass
        except BaseException:
            continue
    return "survived"


async def test_cancel_interrupts_a_running_python_loop_and_the_worker_lives_on(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    async with farm.Farm(workers=1) as f:
        spinner = f.submit(announce_then_spin, str(fifo))
        worker = await wait_running(fifo)
        assert spinner.cancel()
        assert await f.submit(pid_of_worker) == worker  # the same worker: stopped, not killed
        assert f.counters.workers_lost == 0
        with pytest.raises(farm.TaskTimeout):
            await f.options(timeout=0.5).submit(spin)
        assert await f.submit(pid_of_worker) == worker
        assert f.counters.workers_lost == 0


async def test_a_task_that_swallows_the_interrupt_has_its_worker_killed(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    async with farm.Farm(workers=1) as f:
        stubborn = f.submit(swallow_everything, str(fifo))
        worker = await wait_running(fifo)
        cancelled_at = time.monotonic()
        stubborn.cancel()
        start = await f.submit(started_at)
        assert start - cancelled_at < 2.0, f"the next task started {start - cancelled_at:.2f} s after cancel"
        assert await f.submit(pid_of_worker) != worker
        assert f.counters.workers_lost == 1


async def test_a_held_broadcast_fails_when_the_replacement_does_not_come_up(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    once = tmp_path / "launched"
    python = tmp_path / "python-once"
    python.write_text(  # a python that starts the first worker only
        f'#!/bin/sh\nif [ -e "{once}" ]; then echo "no more workers" >&2; exit 1; fi\n'
        f'touch "{once}"\nexec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    machine = farm.Machine("localhost", 1, python=str(python))
    async with farm.Farm(machines=[machine]) as f:
        sleeper = f.submit(announce_then_sleep, str(fifo), 30)
        await wait_sleeping(await wait_running(fifo))
        outcome: list[BaseException] = []
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def broadcast() -> None:
                    try:
                        await f.broadcast(pid_of_worker)
                    except farm.FarmError as exc:
                        outcome.append(exc)

                nursery.start_soon(broadcast)
                with trio.fail_after(10):
                    while f.counters.submitted < 2:
                        await trio.sleep(0.01)
                sleeper.cancel()  # its worker is killed; the broadcast waits for a replacement that fails
        assert len(outcome) == 1 and isinstance(outcome[0], farm.WorkerLost), outcome


def test_inside_a_running_node_its_max_message_size_bounds_the_limit() -> None:
    async def main() -> tuple[int, int]:
        async with farm.Farm(workers=1) as f:
            with pytest.raises(farm.ArgumentsTooLarge) as too_many:
                f.submit(len, b"a" * (3 * _MB))
            with pytest.raises(farm.ResultTooLarge) as too_much:  # the worker got the same limit
                await f.submit(big_result, 3 * _MB)
            assert await f.submit(len, b"a" * _MB) == _MB
            return too_many.value.limit, too_much.value.limit

    limit = 3 * _MB - (1 << 20)  # the node's max_message_size less the farm's message overhead
    node = "farmtasks-limit@127.0.0.1"
    assert pj.run(main, node=node, epmd=False, max_message_size=3 * _MB) == (limit, limit)
