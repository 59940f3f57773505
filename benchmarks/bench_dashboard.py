"""The dashboard (issue 19): what it costs the farm, and how fast its JSON answers while a farm works.

    python benchmarks/bench_dashboard.py [--workers 2] [--tasks 100000] [--chunk 50] [--runs 3]

1. Cost: two farms of ``--workers`` workers up at once, one without a dashboard and one with (and,
   while it works, a client reading its ``/api/farm`` and ``/api/node`` twice a second, as a page
   does), taking turns with maps of 5,000 trivial tasks (chunksize 1). Printed: the farmer's CPU time per task
   (``time.process_time``, all its threads: the load of the machine disturbs it less than wall-clock
   throughput), medians over ``--runs`` x 3 maps each.
2. Latency: a farm with a dashboard maps ``--tasks`` tiny tasks in chunks of ``--chunk``, while a
   client thread reads ``/api/farm`` and ``/api/node`` back to back. Printed: how many answers, their
   median, 99th percentile and maximum, and the snapshots' sizes.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request

import trio

from philipjose.farm import Farm


def trivial(x: int) -> int:
    return x


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return bytes(answer.read())


async def _poll(url: str, done: threading.Event, pause: float, times: list[float], sizes: list[int]) -> None:
    def loop() -> None:
        while not done.is_set():
            for path in ("api/farm", "api/node"):
                start = time.perf_counter()
                sizes.append(len(_get(url + path)))
                times.append(time.perf_counter() - start)
            if pause:
                done.wait(pause)

    await trio.to_thread.run_sync(loop)


async def cost(workers: int, runs: int) -> None:
    per_task: dict[str, list[float]] = {"without": [], "with": []}
    async with Farm(workers=workers) as plain, Farm(workers=workers, dashboard=0) as watched:
        url = watched.dashboard_url
        assert url is not None
        for farm in (plain, watched):  # warm up
            await farm.map(trivial, range(1000))
        for _ in range(runs * 3):
            for name, farm in (("without", plain), ("with", watched)):
                done = threading.Event()
                async with trio.open_nursery() as nursery:
                    if farm is watched:  # a page watching it, only while it works
                        nursery.start_soon(_poll, url, done, 0.5, [], [])
                    start = time.process_time()
                    await farm.map(trivial, range(5000))
                    per_task[name].append((time.process_time() - start) / 5000 * 1e6)
                    done.set()
    a, b = statistics.median(per_task["without"]), statistics.median(per_task["with"])
    print(
        f"farmer CPU per task: {a:.1f} us without a dashboard, {b:.1f} us with one watched "
        f"({(b / a - 1) * 100:+.1f} %)"
    )


async def latency(workers: int, tasks: int, chunk: int) -> None:
    async with Farm(workers=workers, dashboard=0) as farm:
        assert farm.dashboard_url is not None
        done = threading.Event()
        times: list[float] = []
        sizes: list[int] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_poll, farm.dashboard_url, done, 0.0, times, sizes)
            start = time.perf_counter()
            try:
                await farm.map(trivial, range(tasks), chunksize=chunk)
            finally:
                done.set()
            took = time.perf_counter() - start
    times.sort()
    p99 = times[int(len(times) * 0.99)]
    print(
        f"{tasks} tasks in chunks of {chunk}: {took:.2f} s; {len(times)} answers, median "
        f"{statistics.median(times) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms; "
        f"snapshots {min(sizes)}-{max(sizes)} bytes"
    )


async def main(args: argparse.Namespace) -> None:
    await cost(args.workers, args.runs)
    for _ in range(args.runs):
        await latency(args.workers, args.tasks, args.chunk)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    trio.run(main, parser.parse_args())
