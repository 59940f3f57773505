"""The embedded EPMD default, end to end, as a user meets it.

A node started where no EPMD answers (``examples/interop_node.py`` as its own OS process) starts
``philipjose epmd`` as a detached daemon and registers with it; a real ``erl`` that is told not to
start its own epmd then finds the node through that daemon and pings it, and OTP's ``epmd -names``
lists it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import trio

from tests.epmd.conftest import free_port, unique_name
from tests.interop.dist_support import ROOT, start_peer
from tests.tools import require

COOKIE = "embedded-epmd-cookie"


def _listener_pid(port: int) -> int | None:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(conn.pid)
    return None


@pytest.fixture
def epmd_port() -> Iterator[int]:
    """A free port for the EPMD; whatever daemon ends up listening there is killed afterwards."""
    port = free_port()
    yield port
    pid = _listener_pid(port)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_node_starts_the_embedded_epmd_and_erl_finds_it(epmd_port: int, tmp_path: Path) -> None:
    erl = require("erl")
    epmd = require("epmd")
    assert _listener_pid(epmd_port) is None
    py_name = unique_name("py")
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port), HOME=str(tmp_path))
    example = [sys.executable, str(ROOT / "examples" / "interop_node.py"), py_name, COOKIE]
    node = await trio.lowlevel.open_process(
        example, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        assert node.stdout is not None
        output = b""
        with trio.fail_after(60):
            while b"ready" not in output:
                chunk = await node.stdout.receive_some(4096)
                assert chunk, f"the example node exited: {output.decode(errors='replace')}"
                output += chunk
        full_name = output.decode().split("ready", 1)[1].split()[0]

        # the daemon the node started is philipjose's, detached from the node
        daemon = _listener_pid(epmd_port)
        assert daemon is not None and daemon != node.pid
        assert "philipjose" in " ".join(psutil.Process(daemon).cmdline())

        listed = await trio.run_process(
            [epmd, "-port", str(epmd_port), "-names"], capture_stdout=True, env=env
        )
        assert f"name {py_name} at port" in listed.stdout.decode()

        argv = [erl, "-noshell", "-start_epmd", "false", "-sname", unique_name("erl"), "-setcookie", COOKIE]
        argv += ["-eval", f"io:format(\"PING ~p~n\", [net_adm:ping('{full_name}')]), halt()."]
        async with start_peer(argv, epmd_port, "erl") as peer:
            assert await peer.line("PING") == "pong"
    finally:
        node.kill()
        with trio.move_on_after(10):
            await node.wait()
