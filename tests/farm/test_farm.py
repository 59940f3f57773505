"""The farm with real worker processes: local (fork+exec) and over a real sshd."""

from __future__ import annotations

import concurrent.futures
import gc
import operator
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

import philipjose as pj
from philipjose import farm, supervisors
from philipjose.farm.policy import DOWN
from philipjose.farm.scheduler import Counters
from tests.farm.conftest import SshServer


def square(x: int) -> int:
    return x * x


def slow_square(x: int) -> int:
    time.sleep(0.02)  # the workload, not a wait
    return x * x


def die() -> None:
    os._exit(3)


class Watch:
    """A progress callback that sets an event when a condition on the counters holds."""

    def __init__(self) -> None:
        self.conditions: list[tuple[Any, trio.Event]] = []
        self.last = Counters()

    def __call__(self, counters: Counters) -> None:
        self.last = counters
        for condition, event in self.conditions:
            if condition(counters):
                event.set()

    async def until(self, condition: Any) -> None:
        event = trio.Event()
        self.conditions.append((condition, event))
        if condition(self.last):
            return
        with trio.fail_after(120):
            await event.wait()


async def test_submit_map_closures_and_errors() -> None:
    offset = 100
    async with farm.Farm(workers=2) as f:
        assert await f.submit(square, 7) == 49
        assert await f.submit(lambda: offset + 1) == 101
        assert await f.map(lambda x: x + offset, range(10)) == [x + offset for x in range(10)]
        assert await f.map(operator.mul, [1, 2, 3], [4, 5, 6], chunksize=2) == [4, 10, 18]
        assert sorted(await f.map(square, range(20), ordered=False)) == [x * x for x in range(20)]
        assert await f.reduce(operator.add, range(101)) == 5050
        assert await f.reduce(operator.add, [], initial=0) == 0
        assert await f.reduce(operator.add, [[1], [2], [3]], initial=[]) == [1, 2, 3]
        with pytest.raises(TypeError):
            await f.reduce(operator.add, [])
        with pytest.raises(farm.TaskError) as info:
            await f.submit(operator.truediv, 1, 0)
        assert info.value.remote_type == "builtins.ZeroDivisionError"
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        lock = threading.Lock()
        with pytest.raises(farm.UnpicklableTask):
            f.submit(lambda: lock)
        futures = [f.submit(square, i) for i in range(6)]
        done = [fut async for fut in f.as_completed(futures)]
        assert sorted(fut.result() for fut in done) == [i * i for i in range(6)]
        assert len(f.workers) == 2 and all(w.alive and w.os_pid for w in f.workers)
        assert sum(w.tasks_done for w in f.workers) == f.counters.resolved
        assert await f.ping() == 2


async def test_leaving_as_completed_early_leaves_nothing_behind() -> None:
    """``break`` out of ``as_completed`` (``race`` leaves it on the first success) leaves no unfinished
    async generator behind for Trio to warn about when it is collected (a ``ResourceWarning``)."""
    async with farm.Farm(workers=1) as f:
        futures = [f.submit(square, i) for i in range(3)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = None
            async for future in f.as_completed(futures):
                first = future
                break
            gc.collect()
            await trio.sleep(0)  # Trio finalizes collected async generators in a task of its own
            assert await f.race(lambda: square(4), lambda: square(5)) in (16, 25)
            gc.collect()
            await trio.sleep(0)
        assert first is not None and first.result() in (0, 1, 4)
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_broadcast_reaches_each_worker_once() -> None:
    async with farm.Farm(workers=3) as f:
        pids = await f.broadcast(os.getpid)
        assert sorted(pids) == sorted(w.os_pid or 0 for w in f.workers)
        assert len(set(pids)) == 3


async def test_race_stops_a_running_loser(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = str(fifo)

    def loser() -> str:
        with open(path, "w") as out:
            out.write(f"{os.getpid()}\n")
        time.sleep(1000)
        return "loser"

    def winner() -> tuple[str, int]:
        with open(path) as source:  # blocks until the loser is running
            return ("winner", int(source.readline()))

    watch = Watch()
    async with farm.Farm(workers=2, progress=watch) as f:
        name, loser_pid = await f.race(loser, winner)
        assert name == "winner"
        # a replacement starts only after the keeper has reaped the killed worker
        await watch.until(lambda c: c.workers_lost >= 1 and c.workers == 2)
        assert not psutil.pid_exists(loser_pid)
        assert loser_pid not in [w.os_pid for w in f.workers]
        assert await f.submit(square, 3) == 9


def nap(seconds: float) -> str:
    time.sleep(seconds)  # the workload, not a wait
    return "woke"


async def test_race_competitors_do_not_queue_behind_each_other() -> None:
    """With one worker idle and the other busy for a second, the first competitor takes the idle
    worker; the second must wait for the busy one, not be pipelined behind the first (it was, and the
    slow competitor won)."""
    async with farm.Farm(workers=2) as f:
        short, long = f.submit(nap, 0.05), f.submit(nap, 1.0)  # one on each worker
        await short
        assert await f.race(lambda: nap(60), lambda: square(5)) == 25
        assert await long == "woke"


async def test_race_all_failing_raises() -> None:
    async with farm.Farm(workers=1) as f:
        with pytest.raises(farm.TaskError):
            await f.race(lambda: 1 / 0)


async def test_sigkill_during_map_loses_nothing() -> None:
    watch = Watch()
    async with farm.Farm(workers=2, progress=watch) as f:
        victim = f.workers[0].os_pid
        assert victim is not None

        def kill_midway(c: Counters) -> bool:
            if c.resolved >= 5 and not kill_midway.done:  # type: ignore[attr-defined]
                kill_midway.done = True  # type: ignore[attr-defined]
                os.kill(victim, signal.SIGKILL)
            return False

        kill_midway.done = False  # type: ignore[attr-defined]
        watch.conditions.append((kill_midway, trio.Event()))
        results = await f.map(slow_square, range(60))
        assert results == [x * x for x in range(60)]
        assert f.counters.workers_lost == 1
        await watch.until(lambda c: c.workers == 2)
        assert victim not in [w.os_pid for w in f.workers]
        assert [w.alive for w in f.workers] == [True, True]


async def test_poison_task_fails_with_worker_lost() -> None:
    async with farm.Farm(workers=2, max_deaths=3) as f:
        poison = f.submit(die)
        good = [f.submit(square, i) for i in range(10)]
        with pytest.raises(farm.WorkerLost) as info:
            await poison
        assert len(info.value.workers) == 3
        assert "die" in str(info.value)
        assert [await g for g in good] == [i * i for i in range(10)]
        assert f.counters.workers_lost == 3


async def test_task_timeout_kills_and_replaces_the_worker() -> None:
    watch = Watch()
    async with farm.Farm(workers=1, progress=watch) as f:
        with pytest.raises(farm.TaskTimeout):
            await f.options(timeout=1).submit(time.sleep, 1000)
        await watch.until(lambda c: c.workers == 1 and c.workers_lost == 1)
        assert await f.submit(square, 4) == 16


async def test_cancel_a_queued_task() -> None:
    async with farm.Farm(workers=1, max_in_flight=1) as f:
        first = f.submit(slow_square, 2)
        second = f.submit(square, 3)
        assert second.cancel()
        assert not second.cancel()
        assert await first == 4
        with pytest.raises(concurrent.futures.CancelledError):
            await second
        assert second.cancelled()


async def test_an_error_in_the_body_propagates_as_itself() -> None:
    with pytest.raises(KeyError):
        async with farm.Farm(workers=1):
            raise KeyError("mine")


async def test_closed_farm_refuses_work() -> None:
    async with farm.Farm(workers=1) as f:
        pass
    with pytest.raises(farm.FarmError, match="closed"):
        f.submit(square, 1)


async def test_a_machine_that_cannot_launch_is_down_and_the_farm_gives_up(tmp_path: Path) -> None:
    broken = farm.Machine("localhost", 2, python=str(tmp_path / "no-such-python"))
    with trio.fail_after(120), pytest.raises(farm.FarmError) as info:
        async with farm.Farm(machines=[broken], max_launch_failures=2):
            pass
    assert "no machine can run a worker; the farm gave up (localhost: 2 launches failed" in str(info.value)
    assert "no-such-python" in str(info.value)


def _down_of(ref: Any) -> Any:
    def match(message: Any) -> bool:
        return (
            type(message) is tuple
            and len(message) == 5
            and message[0] == pj.Atom("DOWN")
            and message[1] == ref
        )

    return match


def _slot_of(node: str) -> str:
    """The supervisor child id keeping a worker: ``w<N>`` from its node ``w<N>g<G>-...``."""
    return node.partition("g")[0]


def test_workers_are_children_of_a_real_supervisor() -> None:
    async def main() -> None:
        async with farm.Farm(workers=2, restart_intensity=4, restart_period=30) as f:
            sup = f.supervisor
            assert sup is not None
            children = await supervisors.which_children(sup)
            assert [c.id for c in children] == ["w0", "w1"]
            assert all(isinstance(c.pid, pj.Pid) and c.type == "worker" for c in children)
            assert sorted(_slot_of(w.node) for w in f.workers) == ["w0", "w1"]
            assert await supervisors.count_children(sup) == {
                "specs": 2,
                "active": 2,
                "supervisors": 0,
                "workers": 2,
            }
            ref = pj.monitor(sup)
            worker_pids = [w.os_pid for w in f.workers]
        # closing the farm stops the supervisor (shutdown), whose children killed their workers
        down = await pj.receive(match=_down_of(ref), timeout=0)
        assert down[4] == pj.Atom("shutdown")
        assert not any(p is not None and psutil.pid_exists(p) for p in worker_pids)

    pj.run(main)


def test_a_sigkilled_worker_is_replaced_by_its_keeper_and_its_tasks_rerun() -> None:
    async def main() -> None:
        watch = Watch()
        async with farm.Farm(workers=2, progress=watch) as f:
            assert f.supervisor is not None
            before = {c.id: c.pid for c in await supervisors.which_children(f.supervisor)}
            victim = next(w for w in f.workers if _slot_of(w.node) == "w0")
            assert victim.os_pid is not None

            def kill_midway(c: Counters) -> bool:
                if c.resolved >= 5 and not kill_midway.done:  # type: ignore[attr-defined]
                    kill_midway.done = True  # type: ignore[attr-defined]
                    os.kill(victim.os_pid, signal.SIGKILL)  # type: ignore[arg-type]
                return False

            kill_midway.done = False  # type: ignore[attr-defined]
            watch.conditions.append((kill_midway, trio.Event()))
            assert await f.map(slow_square, range(60)) == [x * x for x in range(60)]
            assert f.counters.retries >= 1  # the dead worker's tasks ran again
            await watch.until(lambda c: c.workers == 2)
            assert victim.cause == "killed by SIGKILL" and not victim.alive
            # a death charged to its tasks is no crash: the same keeper starts the next worker, the
            # supervisor restarts nothing
            after = {c.id: c.pid for c in await supervisors.which_children(f.supervisor)}
            assert after == before
            replacement = next(w for w in f.workers if w.alive and _slot_of(w.node) == "w0")
            assert replacement.os_pid != victim.os_pid and replacement.node != victim.node
            assert await f.submit(square, 6) == 36

    pj.run(main)


def test_a_lost_connection_is_detected_by_nodedown() -> None:
    async def main() -> None:
        watch = Watch()
        async with farm.Farm(workers=1, progress=watch) as f:
            (worker,) = f.workers
            assert worker.os_pid is not None
            os.kill(worker.os_pid, signal.SIGSTOP)  # it cannot exit: only the nodedown can tell
            pj.node.disconnect(worker.node)
            await watch.until(lambda c: c.workers == 1 and c.workers_lost == 1)
            assert worker.cause is not None and worker.cause.startswith("its connection was lost")
            assert not psutil.pid_exists(worker.os_pid)  # its keeper killed and reaped it
            assert await f.submit(square, 5) == 25

    pj.run(main)


async def test_idle_crashes_past_the_intensity_take_the_machine_down() -> None:
    watch = Watch()
    async with farm.Farm(workers=1, restart_intensity=1, restart_period=60, progress=watch) as f:
        for lost in (1, 2):  # idle workers killed from outside: crashes with no task to blame
            (worker,) = [w for w in f.workers if w.alive]
            assert worker.os_pid is not None
            os.kill(worker.os_pid, signal.SIGKILL)
            await watch.until(lambda c, lost=lost: c.workers_lost == lost)
            if lost == 1:
                await watch.until(lambda c: c.workers == 1)
        await watch.until(lambda c: c.machines_down == 1)
        (machine,) = f.machines
        assert machine.state is DOWN and machine.workers == 0
        assert machine.last_error is not None and "more than 1 times in 60 s" in machine.last_error
        assert "killed by SIGKILL" in machine.last_error
        with pytest.raises(farm.FarmError, match="no machine can run a worker"):
            f.submit(square, 1)
        assert not any(w.alive for w in f.workers)


def test_farm_inside_pj_run() -> None:
    async def main() -> int:
        async with farm.Farm(workers=1) as f:
            return int(await f.submit(square, 5))

    assert pj.run(main) == 25


def test_executor_is_a_concurrent_futures_executor() -> None:
    with farm.Executor(workers=2) as ex:
        assert isinstance(ex, concurrent.futures.Executor)
        assert list(ex.map(square, range(10))) == [x * x for x in range(10)]
        assert ex.submit(pow, 2, exp=10).result(timeout=60) == 1024
        failing = ex.submit(operator.truediv, 1, 0)
        with pytest.raises(ZeroDivisionError):  # re-raised as itself, as ProcessPoolExecutor does
            failing.result(timeout=60)
        futures = [ex.submit(slow_square, i) for i in range(8)]
        done, _ = concurrent.futures.wait(futures, timeout=60)
        assert len(done) == 8
    with pytest.raises(RuntimeError):
        ex.submit(square, 1)


def test_executor_shutdown_cancels_futures() -> None:
    ex = farm.Executor(workers=1, max_in_flight=1)
    futures = [ex.submit(slow_square, i) for i in range(30)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert any(f.cancelled() for f in futures)
    assert all(f.done() for f in futures)
    assert futures[0].result() == 0  # a started task is not cancelled (as ProcessPoolExecutor)


async def test_ssh_workers(sshd_server: SshServer) -> None:
    machine = sshd_server.machine(python=sys.executable, workers=2)
    async with farm.Farm(machines=[machine], farmer_host="127.0.0.1") as f:
        assert await f.map(lambda x: x * 3, range(10)) == [x * 3 for x in range(10)]
        assert len(f.workers) == 2
        assert len(set(await f.broadcast(os.getpid))) == 2
    assert sum("Accepted publickey" in line for line in sshd_server.log) >= 2


def test_farm_run_script(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n"
        "def cube(x):\n    return x ** 3\n"
        "async def main(farm):\n"
        "    n = int(sys.argv[1])\n"
        "    return sum(await farm.map(cube, range(n)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "run", str(script), "--workers", "2", "10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{sum(x**3 for x in range(10))}\n"
    assert "\r" not in done.stderr  # no progress bar when stderr is not a terminal


def test_workers_exit_when_the_farmer_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "farmer.py"
    script.write_text(
        "import os, trio\n"
        "from philipjose import farm\n"
        "async def main():\n"
        "    async with farm.Farm(workers=2) as f:\n"
        "        print(*(w.os_pid for w in f.workers), flush=True)\n"
        "        await trio.sleep_forever()\n"
        "trio.run(main)\n"
    )
    # the workers inherit the farmer's stderr: the pipe ends only when every one of them has exited
    farmer = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert farmer.stdout is not None and farmer.stderr is not None
    pids = [int(p) for p in farmer.stdout.readline().split()]
    assert len(pids) == 2
    farmer.kill()
    farmer.wait()
    farmer.stderr.read()  # end of file: no worker outlived its farmer
    farmer.stdout.close()
    farmer.stderr.close()
    # their files are closed, so they are exiting; give the kernel a moment to finish (or a zombie)
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=60)
    assert all(p.status() == psutil.STATUS_ZOMBIE for p in alive)
