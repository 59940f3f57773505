"""Benchmark: `philipjose epmd` against OTP's `epmd`, both as separate processes, same client, same run.

Each server runs on its own free port (never 4369). The same Python client (philipjose.epmd) drives
both, so the difference is the servers':

  lookup     sequential PORT_PLEASE2 requests for a registered name (one TCP connection each)
  lookup50   the same with 50 concurrent clients
  register   200 registrations of distinct names, held open together, then closed
  names200   NAMES with those 200 names registered

Prints requests per second (best of --repeats) and the ratio philipjose / OTP (1.0 = as fast).
Run: ``python3 benchmarks/bench_epmd.py`` (``--quick`` for fewer requests).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time

import trio

from philipjose import epmd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_answering(port: int) -> None:
    with trio.fail_after(20):
        while True:
            try:
                await epmd.names(epmd_port=port, timeout=1)
                return
            except epmd.EpmdUnreachableError:
                await trio.sleep(0.05)  # a benchmark may poll; tests may not


async def _lookup(port: int, count: int, concurrency: int) -> float:
    async with await epmd.register("bench_target", 40000, epmd_port=port):
        start = time.perf_counter()
        per_task = count // concurrency

        async def worker() -> None:
            for _ in range(per_task):
                info = await epmd.port_please("bench_target", epmd_port=port)
                assert info is not None

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        elapsed = time.perf_counter() - start
    return per_task * concurrency / elapsed


async def _register_and_names(port: int, count: int) -> tuple[float, float]:
    regs = []
    start = time.perf_counter()
    for i in range(count):
        regs.append(await epmd.register(f"bench{i}_{time.monotonic_ns()}", 40000 + i, epmd_port=port))
    register_rate = count / (time.perf_counter() - start)
    start = time.perf_counter()
    rounds = 50
    for _ in range(rounds):
        assert len(await epmd.names(epmd_port=port)) >= count
    names_rate = rounds / (time.perf_counter() - start)
    for reg in regs:
        await reg.aclose()
    return register_rate, names_rate


async def _measure(port: int, lookups: int, repeats: int) -> dict[str, float]:
    await _wait_answering(port)
    best: dict[str, float] = {}

    def keep(key: str, value: float) -> None:
        best[key] = max(best.get(key, 0.0), value)

    for _ in range(repeats):
        keep("lookup", await _lookup(port, lookups, 1))
        keep("lookup50", await _lookup(port, lookups, 50))
        register_rate, names_rate = await _register_and_names(port, 200)
        keep("register", register_rate)
        keep("names200", names_rate)
    return best


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    lookups = 500 if args.quick else 2000
    repeats = 1 if args.quick else args.repeats
    otp = shutil.which("epmd") or shutil.which("epmd", path="/usr/lib/erlang/bin")
    if otp is None:
        print("OTP's epmd is not installed: nothing to compare with", file=sys.stderr)
        return 1
    results: dict[str, dict[str, float]] = {}
    commands = {
        "philipjose": [
            sys.executable,
            "-m",
            "philipjose",
            "--log-level",
            "ERROR",
            "epmd",
            "--address",
            "127.0.0.1",
        ],
        "otp": [otp, "-address", "127.0.0.1"],
    }
    for label, command in commands.items():
        port = _free_port()
        port_flag = "--port" if label == "philipjose" else "-port"
        process = _start([*command, port_flag, str(port)])
        try:
            results[label] = trio.run(_measure, port, lookups, repeats)
        finally:
            process.kill()
            process.wait()
    print(f"{'case':<10} {'philipjose req/s':>17} {'OTP epmd req/s':>15} {'ratio':>7}")
    for key in ("lookup", "lookup50", "register", "names200"):
        ours, theirs = results["philipjose"][key], results["otp"][key]
        print(f"{key:<10} {ours:>17.0f} {theirs:>15.0f} {ours / theirs:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
