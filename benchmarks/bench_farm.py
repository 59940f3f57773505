"""The farm against concurrent.futures.ProcessPoolExecutor, same worker count, same run, same tasks.

    python benchmarks/bench_farm.py [--workers N] [--trivial 3000] [--cpu 200] [--cpu-ms 50] [--latency 300]

1. trivial-task throughput: ``map(abs, range(n))`` with chunksize 1 (and with chunks of 100);
2. CPU-bound parallel efficiency: ``n`` tasks each burning ``ms`` of CPU; efficiency = ideal time
   (n * ms / workers) / measured time;
3. submit-to-result latency: one trivial task at a time, median and 95th percentile.

Both sides are used through the ``concurrent.futures.Executor`` interface (``philipjose.farm.Executor``
for the farm). Pool start-up is not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor

from philipjose import farm


def burn(ms: float) -> int:
    """Spin the CPU for ms milliseconds."""
    end = time.perf_counter() + ms / 1000
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def _throughput(ex: Executor, n: int, chunksize: int) -> float:
    start = time.perf_counter()
    results = list(ex.map(abs, range(n), chunksize=chunksize))
    elapsed = time.perf_counter() - start
    assert results == list(range(n))
    return n / elapsed


def _efficiency(ex: Executor, n: int, ms: float, workers: int) -> float:
    list(ex.map(burn, [1.0] * workers))  # warm up
    start = time.perf_counter()
    list(ex.map(burn, [ms] * n))
    elapsed = time.perf_counter() - start
    return (n * ms / 1000 / workers) / elapsed


def _latency(ex: Executor, n: int) -> tuple[float, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        ex.submit(abs, i).result()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1e3, times[int(len(times) * 0.95)] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--trivial", type=int, default=3000)
    parser.add_argument("--cpu", type=int, default=200)
    parser.add_argument("--cpu-ms", type=float, default=50.0)
    parser.add_argument("--latency", type=int, default=300)
    args = parser.parse_args()
    sides: list[tuple[str, Callable[[], Executor]]] = [
        ("philipjose farm", lambda: farm.Executor(workers=args.workers)),
        ("ProcessPoolExecutor", lambda: ProcessPoolExecutor(max_workers=args.workers)),
    ]
    figures: dict[str, dict[str, float]] = {}
    for name, make in sides:
        with make() as ex:
            list(ex.map(abs, range(args.workers * 4)))  # start every worker before timing
            f = figures[name] = {}
            f["trivial/s (chunk 1)"] = _throughput(ex, args.trivial, 1)
            f["trivial/s (chunk 100)"] = _throughput(ex, args.trivial * 10, 100)
            f["cpu efficiency %"] = 100 * _efficiency(ex, args.cpu, args.cpu_ms, args.workers)
            f["latency median ms"], f["latency p95 ms"] = _latency(ex, args.latency)
    farm_f, pool_f = figures["philipjose farm"], figures["ProcessPoolExecutor"]
    print(f"workers={args.workers}, cores={os.cpu_count()}")
    print(f"{'measure':<24}{'farm':>12}{'pool':>12}{'farm/pool':>11}")
    for key in farm_f:
        print(f"{key:<24}{farm_f[key]:>12.1f}{pool_f[key]:>12.1f}{farm_f[key] / pool_f[key]:>11.2f}")


if __name__ == "__main__":
    main()
