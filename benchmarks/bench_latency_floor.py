"""What a round trip costs before the farm does anything: the floor under the farm's latency.

    python benchmarks/bench_latency_floor.py [--n 3000] [--runs 3]

Times, in the same run, the pieces a farm's single-task round trip is made of, each alone, next to
``ProcessPoolExecutor``'s whole round trip (``submit(abs, i).result()``, 1 worker):

- ``blocking tcp echo``: a 60-byte ping-pong between two processes over TCP loopback, plain blocking
  sockets (no event loop): the kernel's part;
- ``trio tcp echo``: the same with Trio on both ends (``send_all`` / ``receive_some``), which is what
  any Trio node pays per round trip before decoding a byte;
- ``trio unix echo``: the same over a Unix socket;
- ``task thread hop``: ``TaskThread.run(abs, i)`` from a Trio loop and back, without and with
  ``wait`` (the worker's hop to the thread that runs its tasks, see ``philipjose.farm.taskthread``);
- ``executor hop``: a ``concurrent.futures`` caller handing a call to a Trio thread and getting the
  result back (``TrioToken.run_sync_soon``, a ``Future``), what ``farm.Executor`` adds to the async farm.

Medians of ``--n`` round trips, in microseconds; the runs take turns.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import trio

from philipjose.farm.taskthread import TaskThread

_MESSAGE = b"x" * 60


def _blocking_echo_server(sock: socket.socket) -> None:
    conn, _ = sock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := conn.recv(65536):
        conn.sendall(data)


def _trio_echo_server(family: str, address: str) -> None:
    async def handle(stream: trio.abc.Stream) -> None:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)

    async def main() -> None:
        if family == "tcp":
            listeners = await trio.open_tcp_listeners(int(address), host="127.0.0.1")
        else:
            sock = trio.socket.socket(socket.AF_UNIX)
            await sock.bind(address)
            sock.listen()
            listeners = [trio.SocketListener(sock)]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handle, listeners)
            print("ready", flush=True)

    trio.run(main)


def _median_us(times: list[float]) -> float:
    return statistics.median(times) * 1e6


def blocking_tcp(n: int) -> float:
    with socket.create_server(("127.0.0.1", 0)) as server:
        child = os.fork()
        if child == 0:  # the echo runs in a process of its own, as a worker does
            try:
                _blocking_echo_server(server)
            finally:
                os._exit(0)
        with socket.create_connection(server.getsockname()) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(n):
                start = time.perf_counter()
                conn.sendall(_MESSAGE)
                conn.recv(65536)
                times.append(time.perf_counter() - start)
        os.waitpid(child, 0)
    return _median_us(times)


def trio_echo(family: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        if family == "tcp":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                address = str(probe.getsockname()[1])
        else:
            address = os.path.join(tmp, "echo.sock")
        command = [sys.executable, __file__, "--echo-server", family, address]
        server = subprocess.Popen(command, stdout=subprocess.PIPE)
        try:
            assert server.stdout is not None
            server.stdout.readline()

            async def client() -> float:
                if family == "tcp":
                    stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", int(address))
                else:
                    stream = await trio.open_unix_socket(address)
                times = []
                for _ in range(n):
                    start = time.perf_counter()
                    await stream.send_all(_MESSAGE)
                    await stream.receive_some(65536)
                    times.append(time.perf_counter() - start)
                await stream.aclose()
                return _median_us(times)

            return trio.run(client)
        finally:
            server.terminate()
            server.wait()


def thread_hop(n: int, wait: float) -> float:
    async def main() -> float:
        thread = TaskThread()
        try:
            times = []
            for i in range(n):
                start = time.perf_counter()
                await thread.run(abs, -i, wait=wait)
                times.append(time.perf_counter() - start)
            return _median_us(times)
        finally:
            thread.close()

    return trio.run(main)


def executor_hop(n: int) -> float:
    ready = threading.Event()
    box: dict[str, object] = {}

    async def loop() -> None:
        box["token"] = trio.lowlevel.current_trio_token()
        box["stop"] = stop = trio.Event()
        ready.set()
        await stop.wait()

    runner = threading.Thread(target=trio.run, args=(loop,))
    runner.start()
    ready.wait()
    token: trio.lowlevel.TrioToken = box["token"]  # type: ignore[assignment]

    def call(future: concurrent.futures.Future[int], i: int) -> None:
        future.set_result(abs(i))

    times = []
    for i in range(n):
        start = time.perf_counter()
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        token.run_sync_soon(call, future, -i)
        future.result()
        times.append(time.perf_counter() - start)
    token.run_sync_soon(box["stop"].set)  # type: ignore[attr-defined]
    runner.join()
    return _median_us(times)


def pool_round_trip(n: int) -> float:
    with ProcessPoolExecutor(1) as pool:
        for _ in range(100):
            pool.submit(abs, 1).result()
        times = []
        for i in range(n):
            start = time.perf_counter()
            pool.submit(abs, -i).result()
            times.append(time.perf_counter() - start)
    return _median_us(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="round trips per measure (default 3000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--echo-server", nargs=2, help=argparse.SUPPRESS)  # (the Trio echo's other end)
    args = parser.parse_args()
    if args.echo_server:
        _trio_echo_server(*args.echo_server)
        return
    measures: dict[str, Callable[[], float]] = {
        "ProcessPoolExecutor round trip": lambda: pool_round_trip(args.n),
        "blocking tcp echo": lambda: blocking_tcp(args.n),
        "trio tcp echo": lambda: trio_echo("tcp", args.n),
        "trio unix echo": lambda: trio_echo("unix", args.n),
        "task thread hop": lambda: thread_hop(args.n, 0.0),
        "task thread hop, wait=1 ms": lambda: thread_hop(args.n, 0.001),
        "executor hop": lambda: executor_hop(args.n),
    }
    print(f"load average {os.getloadavg()[0]:.2f} at start; medians in us, {args.n} round trips each")
    results: dict[str, list[float]] = {name: [] for name in measures}
    for run in range(args.runs):
        for name, measure in measures.items():
            results[name].append(measure())
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()), flush=True)
    print()
    for name, values in results.items():
        runs = " / ".join(f"{v:.0f}" for v in values)
        print(f"{name:32} {statistics.median(values):8.0f} us  (runs: {runs})")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
