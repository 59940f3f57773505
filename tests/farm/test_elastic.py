"""Workers that start on their own (issue 22): ``philipjose worker --join`` processes joining a farm
that accepts them, and ``philipjose worker --listen`` servers that farms connect to. Every worker and
server here is a real ``python -m philipjose`` process started by the test."""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from philipjose import farm
from philipjose.dashboard.farm_view import FarmView
from tests.farm._tasks import (
    gated_square,
    running_until_told,
    stubborn_from_the_start,
    when_started,
    write_file,
)
from tests.farm.conftest import _free_port
from tests.farm.test_farm import Watch

COOKIE = "elastic-test-cookie"
_WAIT = 60.0  # generous: the machine is shared and loaded


class Procs:
    """The processes a test started; each is killed and reaped at the end (by its own pid)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, secret: str = COOKIE) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "philipjose", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        proc.stdin.write(secret.encode() + b"\n")
        proc.stdin.flush()
        self.started.append(proc)
        return proc

    def join(self, node: str, secret: str = COOKIE) -> subprocess.Popen[bytes]:
        return self.start("worker", "--join", node, secret=secret)

    def server(self, port: int, slots: int = 1) -> subprocess.Popen[bytes]:
        return self.start(
            "--log-level", "INFO", "worker", "--listen", f"127.0.0.1:{port}", "--slots", str(slots)
        )

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def procs() -> Iterator[Procs]:
    started = Procs()
    try:
        yield started
    finally:
        started.close()


async def _exit_status(proc: subprocess.Popen[bytes], timeout: float = _WAIT) -> tuple[int, str]:
    """Wait (in a thread) for ``proc`` to exit: its status and its stderr."""
    _, err = await trio.to_thread.run_sync(functools.partial(proc.communicate, timeout=timeout))
    return proc.returncode, err.decode()


def _cli(*args: str, secret: str = COOKIE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "philipjose", *args],
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=_WAIT,
    )


async def _server_up(proc: subprocess.Popen[bytes]) -> None:
    """Wait until a ``--listen`` server said it serves (its first line on stderr)."""
    assert proc.stderr is not None
    stream = proc.stderr

    def first_line() -> bytes:
        while True:
            line = stream.readline()
            if not line or b"serving" in line:
                return line

    line = await trio.to_thread.run_sync(first_line)
    assert b"serving" in line, line


async def test_joined_workers_map_through_a_kill_and_a_new_join(procs: Procs, tmp_path: Path) -> None:
    flag = str(tmp_path / "go")
    watch = Watch()
    async with farm.Farm(
        workers=0, accept_workers=True, cookie=COOKIE, min_workers=2, farmer_host="127.0.0.1", progress=watch
    ) as f:
        assert f.cookie == COOKIE and f.node.startswith("farmer-") and f.workers == [] and f.port > 0
        futures = [f.submit(gated_square, flag, i) for i in range(200)]  # queued: no worker yet
        first = procs.join(f.node)
        await f.wait_for_workers(1, timeout=_WAIT)
        assert f.counters.running == 0  # min_workers=2: one worker up, nothing dispatched
        procs.join(f.node)
        await f.wait_for_workers(2, timeout=_WAIT)
        await watch.until(lambda c: c.completed >= 20)
        victim = next(w for w in f.workers if w.os_pid == first.pid)
        os.kill(first.pid, signal.SIGKILL)
        await watch.until(lambda c: c.workers_lost >= 1)
        third = procs.join(f.node)
        await f.wait_for_workers(2, timeout=_WAIT)  # one was left: the new one is up
        assert any(w.os_pid == third.pid and w.alive for w in f.workers)
        Path(flag).touch()
        results = [await future for future in futures]
        assert results == [x * x for x in range(200)]
        by_pid = {w.os_pid: w for w in f.workers}
        assert {w.came for w in f.workers} == {"joined"}
        assert not by_pid[first.pid].alive and by_pid[first.pid].cause == "lost its connection"
        assert victim.node == by_pid[first.pid].node
        assert by_pid[third.pid].alive and by_pid[third.pid].tasks_done > 0  # it got work at once
        rows = (await FarmView(f).collect())["workers"]  # the dashboard's workers table says so too
        assert [r["came"] for r in rows] == ["joined"] * 3
    status, _ = await _exit_status(third)
    assert status == 0  # told to stop when the farm closed


async def test_a_join_with_a_wrong_secret_is_refused_and_logged(
    procs: Procs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ran = tmp_path / "ran"
    async with farm.Farm(workers=0, accept_workers=True, cookie=COOKIE, farmer_host="127.0.0.1") as f:
        future = f.submit(write_file, str(ran))
        status, err = await _exit_status(procs.join(f.node, secret="not-the-cookie"))
        assert status == 1 and "does not accept our cookie" in err, err
        assert err.count("\n") == 1  # one line, no traceback
        assert f.workers == [] and not future.done() and not ran.exists()
        assert f.counters.running == 0
    refusals = [r.getMessage() for r in caplog.records if "wrong cookie" in r.getMessage()]
    assert refusals and "refused a connection from 127.0.0.1" in refusals[0]


async def test_a_joined_worker_that_will_not_stop_a_task_is_disconnected(
    procs: Procs, tmp_path: Path
) -> None:
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    async with farm.Farm(workers=0, accept_workers=True, cookie=COOKIE, farmer_host="127.0.0.1") as f:
        joiner = procs.join(f.node)
        future = f.submit(stubborn_from_the_start, fifo)
        assert await trio.to_thread.run_sync(when_started, fifo) == "running"
        assert future.cancel()
        status, _ = await _exit_status(joiner)  # the farm closed its connection: it exits
        assert status == 0 and future.cancelled()
        await f.wait_for_workers(0)
        assert [(w.alive, w.cause) for w in f.workers] == [(False, "was disconnected by the farm (cancel)")]
        assert f.counters.cancelled == 1


def test_a_cookie_file_others_can_read_is_refused(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie"
    cookie.write_text(COOKIE + "\n")
    cookie.chmod(0o644)
    out = _cli("worker", "--join", "farmer@127.0.0.1", "--cookie-file", str(cookie))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "readable or writable by others" in out.stderr, out.stderr


async def test_a_farm_over_two_servers_survives_a_restart(procs: Procs, tmp_path: Path) -> None:
    flag = str(tmp_path / "go")
    ports = [_free_port(), _free_port()]
    servers = [procs.server(port, slots=1) for port in ports]
    for server in servers:
        await _server_up(server)
    watch = Watch()
    addresses = [f"127.0.0.1:{port}" for port in ports]
    async with farm.Farm(servers=addresses, cookie=COOKIE, progress=watch) as f:
        await f.wait_for_workers(2, timeout=_WAIT)
        assert [s.state for s in f.servers] == ["serving", "serving"]
        futures = [f.submit(gated_square, flag, i) for i in range(200)]
        await watch.until(lambda c: c.completed >= 20)
        servers[0].kill()  # its worker's lifeline (stdin) closes: it exits too
        await watch.until(lambda c: c.workers_lost >= 1)
        assert servers[0].wait() == -signal.SIGKILL
        await _server_up(procs.server(ports[0], slots=1))
        await f.wait_for_workers(2, timeout=_WAIT)  # the farm reconnects by itself (backoff 1 s, 2 s, ...)
        assert any(w.alive and w.machine == addresses[0] for w in f.workers)
        Path(flag).touch()
        assert [await future for future in futures] == [x * x for x in range(200)]
        assert {w.came for w in f.workers} == {"server"}
        again = [w for w in f.workers if w.alive and w.machine == addresses[0]]
        assert len(again) == 1 and again[0].tasks_done > 0
        assert f.servers[0].state == "serving" and f.servers[0].slots == 1


async def test_ping_answers_for_a_live_server_and_times_out_for_a_dead_one(procs: Procs) -> None:
    port = _free_port()
    server = procs.server(port, slots=2)
    await _server_up(server)
    live = _cli("farm", "ping", f"127.0.0.1:{port}", "--timeout", "20")
    assert (
        live.returncode == 0
        and live.stdout == f"127.0.0.1:{port}: alive, 2 slot(s), 0 in use by 0 farm(s) (pid {server.pid})\n"
    )
    wrong = _cli("farm", "ping", f"127.0.0.1:{port}", "--timeout", "20", secret="wrong")
    assert wrong.returncode == 1 and "not reachable" in wrong.stdout + wrong.stderr
    with pytest.raises(farm.FarmError, match="does not accept our cookie"):  # nor a farm
        async with farm.Farm(servers=[f"127.0.0.1:{port}"], cookie="wrong", start_timeout=2):
            pass
    os.kill(server.pid, signal.SIGSTOP)  # alive as far as TCP goes, but it never answers
    try:
        dead = _cli("farm", "ping", f"127.0.0.1:{port}", "--timeout", "1")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert dead.returncode == 1 and dead.stderr.strip().endswith(
        f"127.0.0.1:{port} did not answer within 1 s"
    )
    nobody = _cli("farm", "ping", f"127.0.0.1:{_free_port()}", "--timeout", "5")
    assert nobody.returncode == 1 and "is not reachable" in nobody.stderr
    server.kill()
    _, err = server.communicate()
    assert err.count(b"wrong cookie") >= 2  # the ping's and the farm's (it retries), logged by the server


async def test_stop_lets_the_running_task_finish_and_refuses_the_next_farm(
    procs: Procs, tmp_path: Path
) -> None:
    started, go = str(tmp_path / "started"), str(tmp_path / "go")
    os.mkfifo(started)
    os.mkfifo(go)
    port = _free_port()
    server = procs.server(port, slots=1)
    await _server_up(server)
    address = f"127.0.0.1:{port}"
    async with farm.Farm(servers=[address], cookie=COOKIE) as f:
        future = f.submit(running_until_told, started, go)
        assert await trio.to_thread.run_sync(when_started, started) == "running"
        stop = _cli("worker", "--stop", address)
        assert (
            stop.returncode == 0 and stop.stdout == f"{address}: stopping; 1 worker(s) finish their tasks\n"
        )
        with pytest.raises(farm.FarmError, match="it refused: the server is stopping"):
            async with farm.Farm(servers=[address], cookie=COOKIE, start_timeout=3):
                pass
        with open(go, "w") as out:
            out.write("go\n")
        assert await future == "finished"
        status, err = await _exit_status(server)
        assert status == 0 and "stopped" in err
        assert f.counters.completed == 1 and f.counters.failed == 0
        assert [w.cause for w in f.workers] == ["left"]


async def test_farm_run_accepts_workers(procs: Procs, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("async def main(farm):\n    return sum(await farm.map(abs, range(-10, 0)))\n")
    cookie = tmp_path / "cookie"
    run = procs.start(
        "farm", "run", str(script), "--accept-workers", "--cookie-file", str(cookie), "--min-workers", "1"
    )
    assert run.stderr is not None
    stream = run.stderr
    line = (await trio.to_thread.run_sync(stream.readline)).decode()
    assert line.startswith("philipjose farm run: accepting workers: philipjose worker --join farmer-"), line
    assert cookie.read_text().strip() not in line and cookie.stat().st_mode & 0o777 == 0o600
    command = line.split(": ", 2)[2].split()
    assert command[-2:] == ["--cookie-file", str(cookie)]
    procs.start(*command[1:], secret="")  # the cookie comes from the file: stdin is not read
    out, err = await trio.to_thread.run_sync(functools.partial(run.communicate, timeout=_WAIT))
    assert run.returncode == 0, err
    assert out == b"55\n"
