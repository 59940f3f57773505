"""The farm keeps going through the faults real jobs meet (issue 14): poison tasks, kill storms, an
unreachable machine, a stopped worker, Ctrl-C. Real worker processes; the unreachable machine is a
real ``ssh`` client refused by a loopback port nobody listens on."""

from __future__ import annotations

import functools
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import trio

from philipjose import farm
from philipjose.farm.policy import DOWN, UP
from philipjose.farm.scheduler import Counters
from tests.farm._tasks import (
    brief_square,
    poison_every_20th,
    slow_square,
    square,
    stubborn,
    stubborn_once_started,
    when_started,
)
from tests.farm.conftest import SshServer, _free_port
from tests.farm.test_farm import Watch
from tests.tools import require


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_poison_tasks_fail_alone_and_the_farm_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with farm.Farm(workers=4) as f:
        futures = [f.submit(poison_every_20th, i) for i in range(200)]
        for future in futures:
            await future.wait()
        lost = [i for i, fut in enumerate(futures) if isinstance(fut.exception(), farm.WorkerLost)]
        assert lost == list(range(0, 200, 20))
        ok = [i for i, fut in enumerate(futures) if fut.exception() is None]
        assert len(ok) == 190 and all(futures[i].result() == i * i for i in ok)
        for i in lost:
            error = futures[i].exception()
            assert isinstance(error, farm.WorkerLost) and len(error.workers) == 3
            assert error.causes == ("exited with status 3",) * 3, str(error)
            assert str(error).count("(exited with status 3)") == 3
        # the deaths were charged to the 10 tasks: the machine is fine and the farm serves. A death
        # is charged to every task its worker held, so one worker that held two poison tasks at
        # once (a deep pipeline) died for both: the workers lost are the ones the errors name
        dead = {name for i in lost for name in futures[i].exception().workers}  # type: ignore[union-attr]
        assert [(m.state, m.failures) for m in f.machines] == [(UP, 0)]
        assert 15 <= len(dead) <= 30
        assert f.counters.workers_lost == len(dead) and f.counters.machines_down == 0
        assert await f.map(square, range(10)) == [x * x for x in range(10)]
    assert _errors(caplog) == []


async def test_a_kill_storm_during_a_map_loses_no_result() -> None:
    kills: list[int] = []
    async with farm.Farm(workers=3) as f:

        async def storm() -> None:
            rng = random.Random(14)
            while True:
                await trio.sleep(0.4)  # the storm's own cadence, not a wait for an event
                alive = [w.os_pid for w in f.workers if w.alive and w.os_pid is not None]
                if alive:
                    victim = rng.choice(alive)
                    kills.append(victim)
                    os.kill(victim, signal.SIGKILL)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(storm)
            results = await f.map(brief_square, range(600))
            nursery.cancel_scope.cancel()
        assert results == [x * x for x in range(600)]
        assert len(kills) >= 3 and f.counters.workers_lost >= 3
        assert f.machines[0].state is UP, f.machines
        assert await f.submit(square, 12) == 144


async def test_an_unreachable_machine_is_down_and_the_farm_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require("ssh")
    caplog.set_level(logging.INFO)
    refused = farm.Machine("127.0.0.1", 2, ssh_options=(f"Port={_free_port()}",))
    watch = Watch()
    start = time.monotonic()
    machines = [farm.Machine("localhost", 2), refused]
    options = {"farmer_host": "127.0.0.1", "max_launch_failures": 3, "progress": watch}
    async with farm.Farm(machines=machines, **options) as f:
        assert await f.map(square, range(100)) == [x * x for x in range(100)]
        await watch.until(lambda c: c.machines_down == 1)
        local, bad = f.machines
        assert local.state is UP and local.workers == 2
        assert bad.state is DOWN and bad.workers == 0 and bad.last_error is not None
        assert "Connection refused" in bad.last_error and "3 launches failed in a row" in bad.last_error
        down = [r for r in caplog.records if "is down" in r.getMessage()]
        assert len(down) == 1 and down[0].levelno == logging.WARNING
        assert down[0].getMessage().startswith("machine 127.0.0.1 is down: ")
        assert "Connection refused" in down[0].getMessage()
        rounds = 0
        while time.monotonic() - start < 15:  # still serving, well after the machine went down
            assert await f.map(square, range(20)) == [x * x for x in range(20)]
            rounds += 1
        assert rounds >= 1 and f.counters.workers == 2
        assert all(w.machine == "localhost" for w in f.workers)
    assert _errors(caplog) == []


async def test_a_stopped_worker_is_found_out_within_net_ticktime_and_its_tasks_rerun() -> None:
    watch = Watch()
    async with farm.Farm(workers=2, net_ticktime=4, max_in_flight=2, progress=watch) as f:
        victim = f.workers[0]
        assert victim.os_pid is not None

        pid = victim.os_pid
        running = trio.Event()

        def stop_when_busy(c: Counters) -> bool:
            if c.running >= 4 and not running.is_set():
                os.kill(pid, signal.SIGSTOP)
                running.set()
            return False

        watch.conditions.append((stop_when_busy, trio.Event()))
        async with trio.open_nursery() as nursery:
            results: list[int] = []

            async def run_map() -> None:
                results.extend(await f.map(slow_square, range(200)))

            nursery.start_soon(run_map)
            with trio.fail_after(60):
                await running.wait()
            stopped_at = trio.current_time()
            await watch.until(lambda c: c.workers_lost == 1)
            detected = trio.current_time() - stopped_at
        assert detected < 8, f"a stopped worker was found out after {detected:.1f} s"
        assert results == [x * x for x in range(200)]
        assert victim.cause is not None and victim.cause.startswith("its connection was lost")
        assert not psutil.pid_exists(pid)
        assert f.counters.retries >= 1


JOB = """\
import sys, time
def slow(x):
    time.sleep(0.2)
    return x
async def main(farm):
    print(" ".join(str(w.os_pid) for w in farm.workers), file=sys.stderr, flush=True)
    return len(await farm.map(slow, range(200)))
"""

EXECUTOR_JOB = """\
import sys, time
from philipjose import farm
def slow(x):
    time.sleep(0.2)
    return x
if __name__ == "__main__":
    with farm.Executor(workers=2) as ex:
        print(" ".join(str(w.os_pid) for w in ex.farm.workers), file=sys.stderr, flush=True)
        print(sum(ex.map(slow, range(200))))
"""


def _interrupt(argv: list[str], signum: int) -> tuple[int, str, list[int], list[str]]:
    """Run ``argv`` in a session of its own, wait for it to print its workers' pids on stderr, let it
    work a moment, send ``signum`` to its whole process group (as a terminal's Ctrl-C does); its exit
    status, the rest of its stderr, the workers still alive afterwards, and a worker's command line."""
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stderr is not None
    try:
        pids = [int(p) for p in process.stderr.readline().split()]
        assert len(pids) == 2
        command = psutil.Process(pids[0]).cmdline()
        time.sleep(1.0)  # let it get into the map: the workload, not a wait for an event
        os.killpg(process.pid, signum)
        rest = process.stderr.read()
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    return status, rest, [p for p in pids if psutil.pid_exists(p)], command


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_of_farm_run_prints_one_line(tmp_path: Path, signum: int, status: int) -> None:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    argv = [
        sys.executable,
        "-m",
        "philipjose",
        "farm",
        "run",
        str(script),
        "--workers",
        "2",
        "--net-ticktime",
        "30",
    ]
    code, stderr, alive, command = _interrupt(argv, signum)
    assert code == status, stderr
    assert command[command.index("--net-ticktime") + 1] == "30"  # passed on to the workers
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("interrupted: ") and lines[0].endswith(" of 200 tasks done")
    assert alive == []


def test_ctrl_c_of_an_executor_raises_keyboard_interrupt_alone(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(EXECUTOR_JOB)
    code, stderr, alive, _ = _interrupt([sys.executable, str(script)], signal.SIGINT)
    assert code == -signal.SIGINT  # Python's own end on an uncaught KeyboardInterrupt
    assert stderr.count("Traceback") == 1 and stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    assert "sum(ex.map(slow" in stderr  # the main thread's traceback, no worker's
    assert alive == []


async def test_a_race_losers_replacement_is_info_not_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    watch = Watch()
    async with farm.Farm(workers=2, progress=watch) as f:
        # the winner returns only once the loser runs, and the loser refuses to stop: it is killed
        loser, winner = functools.partial(stubborn_once_started, fifo), functools.partial(when_started, fifo)
        assert await f.race(loser, winner) == "running"
        await watch.until(lambda c: c.workers_lost == 1 and c.workers == 2)
        with pytest.raises(farm.TaskTimeout):
            await f.options(timeout=1.5).submit(stubborn)
        await watch.until(lambda c: c.workers_lost == 2 and c.workers == 2)
    records = [r for r in caplog.records if "stopped by the farm" in r.getMessage()]
    messages = [(r.levelno, r.getMessage()) for r in records]
    assert [level for level, _ in messages] == [logging.INFO, logging.INFO]
    assert "(race)" in messages[0][1] and "(timeout)" in messages[1][1]
    assert _errors(caplog) == []
    assert not [r for r in caplog.records if r.name.startswith("philipjose.supervisors") and r.levelno > 20]


async def test_an_ssh_worker_lost_running_a_task_says_how_it_died(sshd_server: SshServer) -> None:
    machine = sshd_server.machine(python=sys.executable, workers=1)
    async with farm.Farm(machines=[machine], farmer_host="127.0.0.1", max_deaths=1) as f:
        with pytest.raises(farm.WorkerLost) as info:
            await f.submit(lambda: os._exit(3))  # a lambda travels by value: no tests package there
        assert info.value.causes == ("exited with status 3",)  # the remote status, through ssh
        assert await f.submit(lambda: 9 * 9) == 81  # a new worker over ssh
        (status,) = f.machines
        assert status.state is UP and status.failures == 0 and status.workers == 1
