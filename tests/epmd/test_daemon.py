"""`philipjose epmd` as a real process: foreground, --daemon, the query flags, and ensure_epmd."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import trio

from philipjose import epmd
from philipjose.epmd.ensure import DEFAULT_IDLE_TIMEOUT, daemon_address, default_idle_timeout
from tests.tools import require

from .conftest import WAIT_FOREVER, Children, OtpEpmd, free_port, start_erl, unique_name

_LIMIT = 60
_PJ = [sys.executable, "-m", "philipjose"]


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    """Pids of daemons a test started; any still alive at the end are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _daemon_pid(port: int) -> int:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(conn.pid)
    raise AssertionError(f"nothing listens on port {port}")


async def _gone(pid: int) -> None:
    def wait() -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=_LIMIT)

    await trio.to_thread.run_sync(wait)


async def _run(*args: str) -> tuple[int, str, str]:
    result = await trio.run_process([*_PJ, *args], capture_stdout=True, capture_stderr=True, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_daemon_detaches_and_leaves_no_zombie(tmp_path: Path, daemons: list[int]) -> None:
    port = free_port()
    log_file = tmp_path / "epmd.log"
    with trio.fail_after(_LIMIT):
        status, out, err = await _run(
            "--log-level",
            "INFO",
            "epmd",
            "--port",
            str(port),
            "--daemon",
            "--relaxed-command-check",
            "--log-file",
            str(log_file),
        )
        assert status == 0, err
        assert "started (pid " in out and f"on port {port}" in out
        pid = int(out.split("(pid ")[1].split(")")[0])
        daemons.append(pid)
        # it answers at once: the launcher returned only once it listened
        assert (await epmd.names(epmd_port=port)).epmd_port == port
        process = psutil.Process(pid)
        assert process.ppid() != os.getpid()
        assert os.getsid(pid) != os.getsid(0)  # a session of its own: no controlling terminal
        assert not [child for child in psutil.Process().children() if child.status() == psutil.STATUS_ZOMBIE]

        # a second start finds it running, and says so
        status, out, _ = await _run("epmd", "--port", str(port), "--daemon")
        assert status == 0 and "already an EPMD running" in out

        # the query flags; with --relaxed-command-check KILL is allowed while a node is registered
        reg = await epmd.register(unique_name("d"), 40300, epmd_port=port)
        status, out, _ = await _run("epmd", "--port", str(port), "--names")
        assert status == 0
        assert f"epmd: up and running on port {port} with data:" in out
        assert f"name {reg.name} at port 40300" in out
        status, out, _ = await _run("epmd", "--port", str(port), "--kill")
        assert status == 0 and "Killed" in out
        await reg.wait_closed()  # the daemon exited, dropping the registration connection
        await reg.aclose()
        await _gone(pid)
    log = log_file.read_text()
    assert "EPMD listening on" in log and f"registered {reg.name!r}" in log and "KILL accepted" in log


async def test_cli_kill_is_refused_while_nodes_are_registered(otp_epmd: OtpEpmd) -> None:
    with trio.fail_after(_LIMIT):
        async with await epmd.register(unique_name("k"), 40302, epmd_port=otp_epmd.port):
            status, out, _ = await _run("epmd", "--port", str(otp_epmd.port), "--kill")
    assert status == 1 and "not allowed" in out
    assert otp_epmd.child.process.returncode is None


async def test_foreground_server_serves_real_nodes(children: Children) -> None:
    port = free_port()
    with trio.fail_after(_LIMIT):
        server = await children.start(
            [*_PJ, "--log-level", "INFO", "epmd", "--port", str(port), "--address", "127.0.0.1"]
        )
        await server.output.expect("EPMD listening on 127.0.0.1:")
        a = unique_name("fg")
        node = await start_erl(children, a, port, WAIT_FOREVER)
        await node.output.expect("ready ")
        result = await trio.run_process([require("epmd"), "-port", str(port), "-names"], capture_stdout=True)
        assert f"name {a} at port" in result.stdout.decode()
        node.process.kill()
        await node.process.wait()
        await server.output.expect(f"unregistered {a!r}")
        status, out, _ = await _run("epmd", "--port", str(port), "--kill")
        assert status == 0 and "Killed" in out
        assert await server.process.wait() == 0


async def test_foreground_port_in_use_exits_quietly(otp_epmd: OtpEpmd) -> None:
    with trio.fail_after(_LIMIT):
        status, _, err = await _run("epmd", "--port", str(otp_epmd.port), "--address", "127.0.0.1")
    assert status == 0 and "already an EPMD running" in err


async def test_ensure_epmd_starts_a_daemon_when_none_answers(daemons: list[int]) -> None:
    port = free_port()
    with trio.fail_after(_LIMIT):
        assert await epmd.ensure_epmd(port=port) is True
        pid = _daemon_pid(port)
        daemons.append(pid)
        assert psutil.Process(pid).ppid() != os.getpid()
        assert await epmd.ensure_epmd(port=port) is False  # now one answers
        assert await epmd.names(epmd_port=port) == []
        assert await epmd.kill(epmd_port=port) is True
        await _gone(pid)


async def test_ensure_epmd_uses_a_running_otp_epmd(otp_epmd: OtpEpmd) -> None:
    with trio.fail_after(_LIMIT):
        assert await epmd.ensure_epmd(port=otp_epmd.port) is False
    assert otp_epmd.child.process.returncode is None


async def test_ensure_epmd_honours_erl_epmd_port(monkeypatch: pytest.MonkeyPatch, daemons: list[int]) -> None:
    port = free_port()
    monkeypatch.setenv("ERL_EPMD_PORT", str(port))
    with trio.fail_after(_LIMIT):
        assert await epmd.ensure_epmd() is True
        daemons.append(_daemon_pid(port))
        assert (await epmd.names()).epmd_port == port
        assert await epmd.kill() is True


def _listening(port: int) -> set[str]:
    return {
        conn.laddr.ip
        for conn in psutil.net_connections("tcp")
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
    }


async def test_an_implicit_daemon_exits_once_idle_and_an_explicit_one_stays(daemons: list[int]) -> None:
    """ensure_epmd's daemon (idle timeout 1 s here) lives while a node is registered and exits 1 s
    after the last one left; one started by hand with `philipjose epmd --daemon` outlives it."""
    idle = 1.0
    implicit, explicit = free_port(), free_port()
    with trio.fail_after(_LIMIT):
        status, _, err = await _run("epmd", "--port", str(explicit), "--daemon")
        assert status == 0, err
        daemons.append(_daemon_pid(explicit))
        assert await epmd.ensure_epmd(port=implicit, idle_timeout=idle) is True
        pid = _daemon_pid(implicit)
        daemons.append(pid)
        registration = await epmd.register(unique_name("idle"), 40301, epmd_port=implicit)
        await trio.sleep(3 * idle)  # a registered node keeps it up (nothing to await: time must pass)
        assert [name for name, _ in await epmd.names(epmd_port=implicit)] == [registration.name]
        await registration.aclose()
        left = trio.current_time()
        await _gone(pid)
        assert trio.current_time() - left >= idle * 0.9
        assert (await epmd.names(epmd_port=explicit)).epmd_port == explicit  # still up
        assert await epmd.kill(epmd_port=explicit) is True


async def test_a_loopback_node_starts_a_loopback_daemon(
    monkeypatch: pytest.MonkeyPatch, daemons: list[int]
) -> None:
    port = free_port()
    monkeypatch.setenv("ERL_EPMD_PORT", str(port))
    with trio.fail_after(_LIMIT):
        assert await epmd.ensure_epmd(address=daemon_address("127.0.0.1")) is True
        pid = _daemon_pid(port)
        daemons.append(pid)
        assert _listening(port) == {"127.0.0.1"}
        assert await epmd.kill() is True
        await _gone(pid)
        assert await epmd.ensure_epmd(address=daemon_address("0.0.0.0")) is True
        daemons.append(_daemon_pid(port))
        assert "0.0.0.0" in _listening(port)
        assert await epmd.kill() is True


def test_daemon_address_and_idle_timeout_settings() -> None:
    assert daemon_address("127.0.0.1") == daemon_address("localhost") == daemon_address("127.0.0.2")
    assert daemon_address("127.0.0.1") == "127.0.0.1"
    assert daemon_address("::1") == "127.0.0.1,::1"
    assert daemon_address("0.0.0.0") is None and daemon_address("10.1.2.3") is None
    assert daemon_address(None) is None
    assert default_idle_timeout({}) == DEFAULT_IDLE_TIMEOUT == 60.0
    assert default_idle_timeout({"PHILIPJOSE_EPMD_IDLE_TIMEOUT": "2.5"}) == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ValueError, match="PHILIPJOSE_EPMD_IDLE_TIMEOUT"):
            default_idle_timeout({"PHILIPJOSE_EPMD_IDLE_TIMEOUT": bad})
