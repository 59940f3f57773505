"""Stragglers and the journal (issue 18): the farm with and without speculation against
``ProcessPoolExecutor`` and Dask, and what the journal costs on trivial tasks. Same run, same tasks.

    python benchmarks/bench_speculation.py [--workers 4] [--tasks 200] [--ms 20] [--runs 3]
                                           [--trivial 5000] [--only farm,farm-spec,pool,dask]
                                           [--journal-held 300000]

1. Stragglers: a map of ``--tasks`` tasks of ``--ms`` ms each (sleeping in 1 ms steps, so a task
   stopped on purpose stops at once) on ``--workers`` workers, one of which is 10 times slower: a
   task that runs on it (whose process id is in a marker file) takes 10 x ``--ms``. Each system's
   everyday map: ``Executor.map`` (chunksize 1) for the farm without and with ``speculation=True``
   and for ``ProcessPoolExecutor``; ``client.map`` then ``client.gather`` for Dask distributed (a
   ``LocalCluster`` of worker processes with one thread each; skipped when ``distributed`` is not
   installed: ``pip install -e '.[bench]'``). Printed: the map's wall time, the ideal time with no
   slow worker (tasks x ms / workers), and the share of the results computed on the slow worker.
2. Journal overhead: batches of ``--trivial`` individual ``Executor.submit(abs, i)`` then every
   ``result()``, on two farms of 2 workers up at once, one without a journal and one with (new
   tasks each batch, so every task runs and is recorded), taking turns batch by batch (5 x
   ``--runs`` batches each; which goes first alternates from round to round). The journal is new,
   or with ``--journal-held N`` holds N records of an earlier run (as a run resumed on a large
   journal, whose every new task is looked up among them). Printed: tasks/s of
   each batch, the medians and the cost in percent; the farmer's CPU time per task; and the
   journal's own work per task measured alone (the key, a look-up, recording, the commit: CPU time
   in this process, best of 5 rounds of 20,000). The instruction counts of
   ``benchmarks/bench_farm_instructions.py`` are the steadier measure.

Start-up is not timed; every system is warmed up first. The systems take turns, ``--runs`` times;
the medians are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

from philipjose import farm


def stepped(x: int, ms: int, marker: str) -> tuple[int, bool]:
    """``ms`` ms of work in 1 ms steps, ten times as many on the process named in ``marker``."""
    try:
        slow = int(Path(marker).read_text()) == os.getpid()
    except (OSError, ValueError):
        slow = False
    for _ in range(ms * 10 if slow else ms):
        time.sleep(0.001)  # the workload
    return x, slow


def _mark_slow(marker: Path, pids: Iterator[int]) -> int:
    pid = next(pids)
    marker.write_text(str(pid))
    return pid


@contextlib.contextmanager
def _executor(name: str, workers: int) -> Iterator[Executor]:
    if name == "pool":
        with ProcessPoolExecutor(workers) as pool:
            yield pool
    else:
        with farm.Executor(workers, speculation=name == "farm-spec") as ex:
            yield ex


def _straggler_run(name: str, args: argparse.Namespace, marker: Path) -> tuple[float, float]:
    """(seconds, share of results from the slow worker) of one map on a fresh system."""
    if name == "dask":
        return _dask_run(args, marker)
    with _executor(name, args.workers) as ex:
        pids = sorted(_pids(ex, args))
        _mark_slow(marker, iter(pids))
        list(ex.map(stepped, range(args.workers), [1] * args.workers, [str(marker)] * args.workers))
        start = time.perf_counter()
        results = list(ex.map(stepped, range(args.tasks), [args.ms] * args.tasks, [str(marker)] * args.tasks))
        took = time.perf_counter() - start
    assert [x for x, _ in results] == list(range(args.tasks))
    return took, sum(slow for _, slow in results) / args.tasks


def _pids(ex: Executor, args: argparse.Namespace) -> set[int]:
    """The worker processes' ids (each worker answers one of many small tasks)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < args.workers and time.monotonic() < deadline:
        seen.update(ex.map(_getpid_slowly, range(4 * args.workers)))
    return seen


def _getpid_slowly(_: int) -> int:
    time.sleep(0.02)  # long enough that every worker gets one
    return os.getpid()


def _dask_run(args: argparse.Namespace, marker: Path) -> tuple[float, float]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        _mark_slow(marker, iter(sorted(pids.values())))
        client.gather(
            client.map(stepped, range(args.workers), [1] * args.workers, [str(marker)] * args.workers)
        )
        start = time.perf_counter()
        futures = client.map(
            stepped, range(args.tasks), [args.ms] * args.tasks, [str(marker)] * args.tasks, pure=False
        )
        results = client.gather(futures)
        took = time.perf_counter() - start
    assert [x for x, _ in results] == list(range(args.tasks))
    return took, sum(slow for _, slow in results) / args.tasks


def _journal_runs(args: argparse.Namespace, folder: Path) -> dict[str, dict[bool, list[float]]]:
    """Trivial tasks/s of individual submits, without and with a (fresh) journal: both farms up at
    once, taking turns batch by batch (``--runs`` x 5 batches, the first of each round alternating),
    so a slow spell hits both; and CPU time per task: the farmer's (all its threads:
    ``time.process_time``), the farm's event loop thread's and the caller's (the two threads that
    share the GIL for every task, so their sum is what bounds the throughput; the commit's thread
    spends most of its time in SQLite, without the GIL). The machine's load disturbs CPU times far
    less than wall time."""
    measures: dict[str, dict[bool, list[float]]] = {
        name: {False: [], True: []} for name in ("rate", "cpu", "loop", "caller")
    }
    path = folder / f"j{time.monotonic_ns()}.sqlite"
    if args.journal_held:
        _fill_journal(path, args.journal_held)
    book = farm.Journal(path, script=None)
    with farm.Executor(2) as plain, farm.Executor(2, journal=book) as journaled:
        executors = {False: plain, True: journaled}
        idents = {journal: ex._thread.ident for journal, ex in executors.items()}  # the farms' threads
        loops = {journal: time.pthread_getcpuclockid(ident or 0) for journal, ident in idents.items()}
        for ex in executors.values():
            [f.result() for f in [ex.submit(abs, -i) for i in range(200)]]  # warm up
        first = 1000
        for round_ in range(5 * args.runs):
            for journal, ex in sorted(executors.items(), reverse=round_ % 2 == 1):
                loop = loops[journal]
                start, used = time.perf_counter(), time.process_time()
                looped, called = time.clock_gettime(loop), time.thread_time()
                futures = [ex.submit(abs, i) for i in range(first, first + args.trivial)]
                for f in futures:
                    f.result()
                took = {
                    "rate": args.trivial / (time.perf_counter() - start),
                    "cpu": (time.process_time() - used) / args.trivial * 1e6,
                    "loop": (time.clock_gettime(loop) - looped) / args.trivial * 1e6,
                    "caller": (time.thread_time() - called) / args.trivial * 1e6,
                }
                for name, value in took.items():
                    measures[name][journal].append(value)
            first += args.trivial  # new tasks every batch: each one runs and is recorded
    return measures


def _fill_journal(path: Path, n: int) -> None:
    """Write ``n`` records of an earlier run into a new journal at ``path``: the results of
    ``abs(-i)`` for ``n`` values of ``i`` that the timed batches never submit."""
    from philipjose.farm import journal as jr
    from philipjose.farm.shipping import Returned, dumps_outcome, dumps_task

    earlier = jr.Journal(path, script=None)
    earlier.open()
    outcome = dumps_outcome(Returned(0))
    for start in range(0, n, 10_000):
        span = range(10**9 + start, 10**9 + min(n, start + 10_000))
        keys = [jr.task_key(dumps_task(abs, (-i,))) for i in span]
        earlier.record_all([(key, "builtins.abs", True, outcome) for key in keys])
        earlier.flush()
    earlier.close()


def _journal_alone(folder: Path, n: int = 20_000) -> dict[str, float]:
    """The journal's own work per trivial task, on its own (CPU us, best of 5 rounds of ``n``): the key
    of the task's payload, the look-up of a key never recorded, recording an outcome, and the commit
    (flushes of 2,000 records, as the farm's flusher writes a 0.1 s batch at 20,000 tasks/s), each as
    the farm does it (an older tree's way when it has no ``Journal.keys`` / ``record_all``: a look-up
    call per task, a record call per task); the commit is CPU of all threads, most of it SQLite's,
    which lets go of the GIL (the farm commits in a thread)."""
    from philipjose.farm import journal as jr
    from philipjose.farm.shipping import Returned, dumps_outcome, dumps_task

    key = getattr(jr, "task_key", jr.payload_key)  # (payload_key before task_key existed)
    payloads = [dumps_task(abs, (i,)) for i in range(n)]
    outcomes = [dumps_outcome(Returned(i)) for i in range(n)]
    best: dict[str, float] = {}
    for round_ in range(5):
        book = farm.Journal(folder / f"alone{round_}.sqlite", script=None)
        book.open()
        took: dict[str, float] = {"key": 0.0, "lookup": 0.0, "record": 0.0, "commit": 0.0}
        for start in range(0, n, 2000):
            span = range(start, start + 2000)
            t0 = time.process_time()
            keys = [key(payloads[i]) for i in span]
            t1 = time.process_time()
            if hasattr(book, "keys"):
                known = book.keys()
                [k in known for k in keys]
            else:
                for k in keys:
                    book.lookup(k)
            t2 = time.process_time()
            if hasattr(book, "record_all"):  # a worker's report at once (32 tasks at most)
                for report in range(start, start + 2000, 32):
                    book.record_all(
                        [
                            (keys[i - start], "builtins.abs", True, outcomes[i])
                            for i in range(report, min(report + 32, start + 2000))
                        ]
                    )
            else:
                for k, i in zip(keys, span, strict=True):
                    book.record(k, "builtins.abs", True, outcomes[i])
            t3 = time.process_time()
            book.flush()
            t4 = time.process_time()
            for name, spent in zip(took, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                took[name] += spent
        book.close()
        for name, spent in took.items():
            best[name] = min(best.get(name, math.inf), spent / n * 1e6)
    return best


def _median_line(name: str, values: list[float], fmt: Callable[[float], str]) -> str:
    return f"{name:<24} {' / '.join(fmt(v) for v in values):<40} median {fmt(statistics.median(values))}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--ms", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trivial", type=int, default=2000, help="tasks per batch (journal)")
    parser.add_argument("--only", default="farm,farm-spec,pool,dask,journal")
    parser.add_argument(
        "--journal-held", type=int, default=0, help="records of an earlier run the journal starts with"
    )
    args = parser.parse_args()
    chosen = args.only.split(",")
    if "dask" in chosen and importlib.util.find_spec("distributed") is None:
        print("note: dask skipped (distributed is not installed: pip install -e '.[bench]')")
        chosen.remove("dask")
    systems = [s for s in ("farm", "farm-spec", "pool", "dask") if s in chosen]
    times: dict[str, list[float]] = {s: [] for s in systems}
    shares: dict[str, list[float]] = {s: [] for s in systems}
    journal: dict[str, dict[bool, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.runs):
            for name in systems:
                took, share = _straggler_run(name, args, folder / "slow.pid")
                times[name].append(took)
                shares[name].append(share)
        if "journal" in chosen:
            journal = _journal_runs(args, folder)
            alone = _journal_alone(folder)
    ideal = args.tasks * args.ms / 1000 / args.workers
    labels = {
        "farm": "farm Executor.map",
        "farm-spec": "farm, speculation=True",
        "pool": "ProcessPoolExecutor.map",
        "dask": "Dask client.map",
    }
    if systems:
        print(
            f"stragglers: {args.tasks} tasks of {args.ms} ms on {args.workers} workers, one 10x slower "
            f"(ideal without it {ideal:.2f} s)"
        )
        for name in systems:
            print(_median_line(labels[name], times[name], lambda v: f"{v:.2f} s"))
            print(_median_line("  results from slow one", shares[name], lambda v: f"{100 * v:.1f} %"))
    if journal:
        rates = journal["rate"]
        plain, journaled = statistics.median(rates[False]), statistics.median(rates[True])
        print(
            f"journal: batches of {args.trivial} individual Executor.submit(abs, i) on 2 workers, "
            f"alternating; the journal holding {args.journal_held:,} records of an earlier run when it opens"
        )
        print(_median_line("without a journal", rates[False], lambda v: f"{v:,.0f}/s"))
        print(_median_line("with a journal", rates[True], lambda v: f"{v:,.0f}/s"))
        print(f"cost of the journal: {100 * (1 - journaled / plain):.1f} % of the throughput (medians)")
        cpu = {
            name: [statistics.median(values[j]) for j in (False, True)] for name, values in journal.items()
        }
        for name, label in (
            ("cpu", "farmer (all threads)"),
            ("loop", "farm's loop thread"),
            ("caller", "caller's thread"),
        ):
            without, with_ = cpu[name]
            print(
                f"CPU per task, {label}: {without:.1f} us without, {with_:.1f} us with "
                f"({with_ - without:+.2f} us, {100 * (with_ / without - 1):+.1f} %, medians)"
            )
        held = [cpu["loop"][j] + cpu["caller"][j] for j in (0, 1)]
        print(
            f"the two threads that share the GIL: {held[0]:.1f} us without, {held[1]:.1f} us with: "
            f"{100 * (held[1] / held[0] - 1):+.1f} % (what bounds the throughput)"
        )
        best_plain, best_journaled = max(rates[False]), max(rates[True])
        print(
            f"best batches: {best_plain:,.0f}/s without, {best_journaled:,.0f}/s with: "
            f"{100 * (1 - best_journaled / best_plain):.1f} % (the least disturbed by the machine's load)"
        )
        shown = ", ".join(f"{name} {us:.2f} us" for name, us in alone.items())
        print(f"the journal alone, per task (CPU, best of 5): {shown}; total {sum(alone.values()):.2f} us")


if __name__ == "__main__":
    main()
