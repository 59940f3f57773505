"""A farm under hostile handshakes, and workers started with a wrong or missing secret."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import trio

import philipjose as pj
from philipjose import farm
from tests.node.hostile import spoof
from tests.node.support import LocalNode, unique


def slow_square(x: int) -> int:
    time.sleep(0.02)  # the workload, not a wait
    return x * x


async def test_a_farm_keeps_its_map_going_while_wrong_cookie_handshakes_claim_its_workers() -> None:
    attempts = 0
    async with farm.Farm(workers=2) as f:
        port = f._farmer_port  # what `ps` shows on the workers' command lines
        names = [str(w.node) for w in f.workers]
        statuses: set[str] = set()

        async def attack() -> None:
            nonlocal attempts
            while True:
                for name in names:
                    outcome = await spoof(port, name)
                    assert not outcome.acked
                    statuses.add(outcome.status)
                    attempts += 1
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(attack)
            results = await f.map(slow_square, range(150))
            nursery.cancel_scope.cancel()
        assert results == [x * x for x in range(150)]
        assert f.counters.workers_lost == 0
        assert [w.alive for w in f.workers] == [True, True]
        assert sorted(str(w.node) for w in f.workers) == sorted(names)  # the same workers, never replaced
    assert attempts >= 85  # the count that made a map fail with WorkerLost before
    assert statuses == {"alive"}


async def _start_worker(farmer: LocalNode) -> trio.Process:
    """``philipjose worker`` for ``farmer``, with pipes for stdin (the secret, the lifeline) and stderr."""
    assert farmer.dist is not None
    name = unique("w").replace("@localhost", "@127.0.0.1")
    argv = [sys.executable, "-m", "philipjose", "worker", "--farmer", farmer.name, "--farm", "farm"]
    argv += ["--farmer-port", str(farmer.dist.port), "--name", name]
    return await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE)


async def _worker_run(farmer: LocalNode, stdin: bytes, *, close_stdin: bool) -> tuple[int, list[str]]:
    """Run a worker given ``stdin`` (kept open unless ``close_stdin``): its status and stderr lines."""
    process = await _start_worker(farmer)
    assert process.stdin is not None and process.stderr is not None
    try:
        await process.stdin.send_all(stdin)
        if close_stdin:
            await process.stdin.aclose()
        err = bytearray()
        with trio.fail_after(30):
            while chunk := await process.stderr.receive_some(4096):
                err += chunk
            code = await process.wait()
    finally:
        _reap(process)
    return code, err.decode().splitlines()


def _reap(process: trio.Process) -> None:
    if process.returncode is None:
        process.kill()


@pytest.fixture
async def farmer() -> LocalNode:
    # Long names on both sides, as a farm names its nodes (OTP refuses a long name connecting to a short one).
    node = LocalNode(
        unique("farmer").replace("@localhost", "@127.0.0.1"),
        {"cookie": "the-farm-secret", "epmd": False, "listen_host": "127.0.0.1"},
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node.serve)
        yield node
        nursery.cancel_scope.cancel()


async def test_a_worker_with_a_wrong_secret_exits_non_zero_with_one_line(
    farmer: LocalNode, caplog: pytest.LogCaptureFixture
) -> None:
    code, lines = await _worker_run(farmer, b"not-the-farm-secret\n", close_stdin=False)
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"philipjose worker: cannot connect to the farmer {farmer.name}: ")
    assert "does not accept our cookie" in lines[0]
    assert "wrong cookie" in caplog.text  # the farmer's side of it


@pytest.mark.parametrize("stdin", [b"", b"no newline at the end"])
async def test_a_worker_without_a_secret_exits_non_zero_with_one_line(
    farmer: LocalNode, stdin: bytes
) -> None:
    code, lines = await _worker_run(farmer, stdin, close_stdin=True)
    assert code == 2, lines
    assert lines == ["philipjose worker: no usable secret: stdin ended before the secret's line was complete"]


async def test_a_worker_with_the_right_secret_serves(farmer: LocalNode) -> None:
    # The counterpart: the same command with the right secret connects and announces itself.
    async def wait_up() -> object:
        pj.register("farm", pj.self())
        return await pj.receive(timeout=30)

    process = await _start_worker(farmer)
    assert process.stdin is not None and process.stderr is not None
    try:
        await process.stdin.send_all(b"the-farm-secret\n")
        up = await farmer.run(wait_up)
        assert type(up) is tuple and up[0] == pj.Atom("pj_worker_up")
        await process.stdin.aclose()  # the lifeline: the worker exits
        with trio.fail_after(30):
            err = await process.stderr.receive_some(4096)
            assert await process.wait() == 0
    finally:
        _reap(process)
    assert err == b""
