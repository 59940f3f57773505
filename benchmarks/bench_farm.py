"""The farm against its peers, same worker count, same run, same tasks.

    python benchmarks/bench_farm.py [--workers 2] [--runs 3] [--only farm,pool,...] [--maps]

Systems (each skipped with a note when not installed; ``pip install -e '.[bench]'`` installs them):
``farm`` (``philipjose.farm.Executor``), ``farm-async`` (the async ``Farm``), ``pool``
(``concurrent.futures.ProcessPoolExecutor``), ``loky`` (``loky.ProcessPoolExecutor``), ``dask``
(Dask distributed, a ``LocalCluster`` of worker processes with one thread each) and ``ray``
(``ray.init(num_cpus=N)``, remote functions).

Measures, each system through its everyday API:

1. submit throughput: 2,000 individual submits of a trivial task (``abs``), then gathering them all
   (``[ex.submit(abs, i) for i in ...]`` then every ``result()``; Dask ``client.submit`` then
   ``client.gather``; Ray ``f.remote(i)`` then ``ray.get``);
2. round-trip latency: 200 sequential submit + result of the trivial task, median and 95th percentile;
3. CPU-bound efficiency: 40 tasks each burning 100 ms of CPU, submitted individually; efficiency =
   ideal time (40 * 100 ms / workers) / measured time.

With ``--maps``, also ``Executor.map(abs, range(n))`` with chunksize 1 and 100 for the
``concurrent.futures`` executors. Start-up is not timed; every system is warmed up first. The systems
take turns, ``--runs`` times, so a slow spell of the machine hits all of them; the medians are printed
with the ratios to ``ProcessPoolExecutor``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import trio

from philipjose import farm

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a benchmark


def burn(ms: float) -> int:
    """Spin the CPU for ms milliseconds."""
    end = time.perf_counter() + ms / 1000
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def trivial(x: int) -> int:
    return abs(x)


class System:
    """One system under test: ``submit(fn, *args)`` returns a handle, ``gather(handles)`` the values."""

    name = ""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def gather(self, handles: list[Any]) -> list[Any]:
        raise NotImplementedError

    def map(self, fn: Callable[..., Any], xs: range, chunksize: int) -> list[Any] | None:
        return None  # not a concurrent.futures executor


class FuturesSystem(System):
    def __init__(self, name: str, ex: Executor) -> None:
        self.name, self.ex = name, ex

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.ex.submit(fn, *args)

    def gather(self, handles: list[Any]) -> list[Any]:
        return [h.result() for h in handles]

    def map(self, fn: Callable[..., Any], xs: range, chunksize: int) -> list[Any] | None:
        return list(self.ex.map(fn, xs, chunksize=chunksize))


class AsyncFarmSystem(System):
    """The async ``Farm``, driven from this thread through one ``trio.from_thread`` call per measure
    (the loops themselves run on the Trio thread, as async code would)."""

    name = "farm-async"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @contextlib.contextmanager
    def running(self) -> Iterator[AsyncFarmSystem]:
        import threading

        ready, done = threading.Event(), None

        async def main() -> None:
            nonlocal done
            done = trio.Event()
            async with farm.Farm(workers=self.workers) as f:
                self.f, self.token = f, trio.lowlevel.current_trio_token()
                ready.set()
                await done.wait()

        thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        thread.start()
        ready.wait()
        try:
            yield self
        finally:
            assert done is not None
            trio.from_thread.run_sync(done.set, trio_token=self.token)
            thread.join()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    async def _submits(self, fn: Callable[..., Any], xs: list[Any]) -> list[Any]:
        futures = [self.f.submit(fn, x) for x in xs]
        return [await fut for fut in futures]

    async def _latencies(self, n: int) -> list[float]:
        times = []
        for i in range(n):
            start = time.perf_counter()
            await self.f.submit(abs, i)
            times.append(time.perf_counter() - start)
        return times


def _submit_throughput(system: System, n: int) -> float:
    start = time.perf_counter()
    if isinstance(system, AsyncFarmSystem):
        results = system.call(system._submits, abs, list(range(n)))
    else:
        fn = system.trivial if hasattr(system, "trivial") else abs  # type: ignore[attr-defined]
        results = system.gather([system.submit(fn, i) for i in range(n)])
    elapsed = time.perf_counter() - start
    assert results == list(range(n))
    return n / elapsed


def _latency(system: System, n: int) -> tuple[float, float]:
    if isinstance(system, AsyncFarmSystem):
        times = system.call(system._latencies, n)
    else:
        fn = system.trivial if hasattr(system, "trivial") else abs  # type: ignore[attr-defined]
        times = []
        for i in range(n):
            start = time.perf_counter()
            (value,) = system.gather([system.submit(fn, i)])
            times.append(time.perf_counter() - start)
            assert value == i
    times.sort()
    return statistics.median(times) * 1e3, times[int(len(times) * 0.95)] * 1e3


def _efficiency(system: System, n: int, ms: float, workers: int) -> float:
    burner = system.burn if hasattr(system, "burn") else burn  # type: ignore[attr-defined]
    if isinstance(system, AsyncFarmSystem):
        system.call(system._submits, burn, [1.0] * workers)  # warm up
        start = time.perf_counter()
        system.call(system._submits, burn, [ms] * n)
    else:
        system.gather([system.submit(burner, 1.0) for _ in range(workers)])  # warm up
        start = time.perf_counter()
        system.gather([system.submit(burner, ms) for _ in range(n)])
    elapsed = time.perf_counter() - start
    return (n * ms / 1000 / workers) / elapsed


def _map_throughput(system: System, n: int, chunksize: int) -> float | None:
    start = time.perf_counter()
    results = system.map(abs, range(n), chunksize)
    if results is None:
        return None
    elapsed = time.perf_counter() - start
    assert results == list(range(n))
    return n / elapsed


@contextlib.contextmanager
def _open(name: str, workers: int) -> Iterator[System]:
    """Start system ``name`` with ``workers`` worker processes (a ``ModuleNotFoundError`` when its
    package is not installed)."""
    if name == "farm":
        with farm.Executor(max_workers=workers) as ex:
            yield FuturesSystem(name, ex)
    elif name == "farm-async":
        with AsyncFarmSystem(workers).running() as system:
            yield system
    elif name == "pool":
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield FuturesSystem(name, pool)
    elif name == "loky":
        import loky

        with loky.ProcessPoolExecutor(max_workers=workers) as lex:
            yield FuturesSystem(name, lex)
    elif name == "dask":
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield DaskSystem(client)
    elif name == "ray":
        import ray

        ray.init(
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            _node_ip_address="127.0.0.1",
        )
        try:
            yield RaySystem(ray)
        finally:
            ray.shutdown()
    else:
        raise ValueError(f"no such system {name!r}")


class DaskSystem(System):
    name = "dask"

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def gather(self, handles: list[Any]) -> list[Any]:
        return list(self.client.gather(handles))


class RaySystem(System):
    name = "ray"

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self.trivial = ray.remote(trivial)
        self.burn = ray.remote(burn)

    def submit(self, fn: Any, *args: Any) -> Any:
        return fn.remote(*args)

    def gather(self, handles: list[Any]) -> list[Any]:
        return list(self.ray.get(handles))


_PACKAGES = {"loky": "loky", "dask": "distributed", "ray": "ray"}
SYSTEMS = ["farm", "farm-async", "pool", "loky", "dask", "ray"]


def _measure(name: str, args: argparse.Namespace) -> dict[str, float]:
    with _open(name, args.workers) as system:
        xs = list(range(args.workers * 8))
        if isinstance(system, AsyncFarmSystem):
            warm = system.call(system._submits, abs, xs)
        else:
            warm = system.gather([system.submit(getattr(system, "trivial", abs), x) for x in xs])
        assert warm == xs
        f: dict[str, float] = {}
        f["submit tasks/s"] = _submit_throughput(system, args.submits)
        f["latency median ms"], f["latency p95 ms"] = _latency(system, args.latency)
        f["cpu efficiency %"] = 100 * _efficiency(system, args.cpu, args.cpu_ms, args.workers)
        if args.maps:
            for chunk, n in ((1, args.submits), (100, args.submits * 10)):
                value = _map_throughput(system, n, chunk)
                if value is not None:
                    f[f"map tasks/s (chunk {chunk})"] = value
        return f


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated systems")
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--cpu", type=int, default=40)
    parser.add_argument("--cpu-ms", type=float, default=100.0)
    parser.add_argument("--maps", action="store_true", help="also Executor.map throughput")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    for name in names:
        if name not in SYSTEMS:
            parser.error(f"no such system {name!r} (known: {', '.join(SYSTEMS)})")
    available = []
    for name in names:
        package = _PACKAGES.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            print(f"note: {name} skipped: {package} is not installed (pip install -e '.[bench]')")
        else:
            available.append(name)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in available}
    print(f"workers={args.workers}, cores={os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start")
    for run in range(args.runs):
        for name in available:
            figures = _measure(name, args)
            runs[name].append(figures)
            shown = "  ".join(f"{k} {v:.2f}" for k, v in figures.items())
            print(f"run {run + 1} {name:<11} {shown}  (load {os.getloadavg()[0]:.2f})", flush=True)
    medians = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items() if rs
    }
    keys = list(next(iter(medians.values())))
    print(f"\nmedians of {args.runs} run(s); in brackets the ratio to ProcessPoolExecutor")
    print(f"{'system':<12}" + "".join(f"{k:>28}" for k in keys))
    base = medians.get("pool")
    for name, f in medians.items():
        cells = []
        for k in keys:
            value = f.get(k)
            if value is None:
                cells.append(f"{'-':>28}")
                continue
            ratio = f" [{value / base[k]:.2f}x]" if base is not None and k in base and base[k] else ""
            cells.append(f"{value:>20.2f}{ratio:>8}")
        print(f"{name:<12}" + "".join(cells))
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
