"""The farm over TLS: Farm(tls=...), Executor(tls=...), workers over ssh, `philipjose farm run --tls-*`,
and a worker without certificates refused by a TLS farmer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import trio

from philipjose import farm
from philipjose.node import Node
from philipjose.node.tls import TLSConfig
from tests.farm.conftest import SshServer, sshd_server  # noqa: F401 (a fixture)

from .certs import PKI
from .support import node_tls


def cube(x: int) -> int:
    return x**3


def _worker_command_lines(farmer_pid: int) -> list[list[str]]:
    children = psutil.Process(farmer_pid).children(recursive=True)
    return [p.cmdline() for p in children if "worker" in p.cmdline()]


async def test_farm_with_tls_workers(pki: PKI) -> None:
    tls = node_tls(pki.good)
    async with farm.Farm(workers=2, tls=tls) as f:
        assert await f.map(cube, range(20)) == [x**3 for x in range(20)]
        assert await f.ping() == 2
        lines = _worker_command_lines(os.getpid())
        assert len(lines) == 2
        for argv in lines:
            assert argv[argv.index("--tls-certfile") + 1] == str(pki.good.certfile)
            assert argv[argv.index("--tls-cafile") + 1] == str(pki.good.cafile)
            assert argv[argv.index("--tls-verify") + 1] == "peer"
            assert not any(f._cookie.decode() in arg for arg in argv)  # the cookie never is
        assert f._rt is not None and isinstance(f._rt.dist, Node) and f._rt.dist.tls is tls


def test_executor_with_tls(pki: PKI) -> None:
    with farm.Executor(workers=1, tls=node_tls(pki.good)) as ex:
        assert list(ex.map(cube, range(5))) == [0, 1, 8, 27, 64]


async def test_ssh_workers_with_tls(sshd_server: SshServer, pki: PKI) -> None:  # noqa: F811
    machine = sshd_server.machine(python=sys.executable, workers=2)
    async with farm.Farm(machines=[machine], farmer_host="127.0.0.1", tls=node_tls(pki.good)) as f:
        assert await f.map(lambda x: x**3, range(10)) == [x**3 for x in range(10)]
        assert len(set(await f.broadcast(os.getpid))) == 2


async def test_farm_tls_needs_files(pki: PKI) -> None:
    config = node_tls(pki.good)
    with pytest.raises(ValueError, match="made from files"):
        farm.Farm(workers=1, tls=TLSConfig(config.server, config.client))


async def test_a_worker_without_tls_is_refused(pki: PKI) -> None:
    """A plain worker started against a TLS farmer never comes up (and exits: its farmer is unreachable)."""
    async with farm.Farm(workers=1, tls=node_tls(pki.good)) as f:
        argv = [sys.executable, "-m", "philipjose", "--log-level", "INFO", "worker"]
        argv += ["--farmer", str(f._farmer_node), "--farmer-port", str(f._farmer_port)]
        argv += ["--farm", str(f._name), "--name", "intruder@127.0.0.1"]
        worker = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert worker.stdin is not None and worker.stderr is not None
        try:
            await worker.stdin.send_all(f._cookie + b"\n")  # even with the right cookie; stdin stays open
            stderr = b""
            with trio.fail_after(60):
                while chunk := await worker.stderr.receive_some():
                    stderr += chunk
                status = await worker.wait()
        finally:
            if worker.returncode is None:
                worker.kill()
            await worker.stdin.aclose()
        assert b"cannot connect to" in stderr, stderr
        assert status == 1  # its farmer is unreachable: a non-zero exit with the reason
        assert await f.ping() == 1  # the farm still works
        assert await f.submit(cube, 3) == 27


def test_farm_run_with_tls(tmp_path: Path, pki: PKI) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n"
        "def cube(x):\n    return x ** 3\n"
        "async def main(farm):\n"
        "    assert farm.tls is not None\n"
        "    return sum(await farm.map(cube, range(int(sys.argv[1]))))\n"
    )
    files = pki.good
    done = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "run", "--tls-certfile", str(files.certfile),
         str(script), "--workers", "2", "--tls-keyfile", str(files.keyfile),
         "--tls-cafile", str(files.cafile), "10"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{sum(x**3 for x in range(10))}\n"
    bad = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "run", str(script), "--tls-cafile", str(files.cafile)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "need --tls-certfile" in bad.stderr
