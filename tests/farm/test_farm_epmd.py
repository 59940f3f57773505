"""The farmer's node and EPMD: registered by default (so a running farm is visible to Erlang
tools), absent with ``epmd=False``; workers never need an EPMD either way."""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
import trio

from philipjose import epmd, farm
from tests.epmd.conftest import free_port


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("use_epmd", [True, False])
async def test_farmer_registers_with_epmd_unless_told_not_to(
    use_epmd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(epmd.serve, 0, "127.0.0.1")
        monkeypatch.setenv("ERL_EPMD_PORT", str(server.port))
        with trio.fail_after(120):
            async with farm.Farm(workers=1, epmd=use_epmd) as f:
                assert await f.map(_square, range(5)) == [0, 1, 4, 9, 16]
                names = [name for name, _ in await epmd.names()]
        farmers = [name for name in names if name.startswith("farmer-")]
        assert len(farmers) == (1 if use_epmd else 0)
        assert not [name for name in names if not name.startswith("farmer-")]  # workers: none
        nursery.cancel_scope.cancel()


def test_a_local_farm_run_leaves_no_epmd_and_exposes_none(tmp_path: Path) -> None:
    """`philipjose farm run` with local workers and no EPMD running: the farmer's node starts one,
    listening on loopback only, and it exits once the farm is gone (idle timeout 1 s here)."""
    port = free_port()
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """\
            import os, psutil

            async def main(farm):
                port = int(os.environ["ERL_EPMD_PORT"])
                found = [c for c in psutil.net_connections("tcp")
                         if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN]
                return sorted({c.laddr.ip for c in found}), {c.pid for c in found}.pop()
            """
        )
    )
    env = {
        **os.environ,
        "ERL_EPMD_PORT": str(port),
        "PHILIPJOSE_EPMD_IDLE_TIMEOUT": "1",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "run", str(script), "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    addresses, pid = ast.literal_eval(done.stdout)
    assert addresses == ["127.0.0.1"]
    try:
        psutil.Process(pid).wait(timeout=30)  # it exits by itself, 1 s after the farmer unregistered
    except psutil.NoSuchProcess:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not psutil.pid_exists(pid)
