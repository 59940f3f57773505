"""Benchmark: philipjose processes vs raw Trio, in one run, on the same workloads.

Workloads (each timed for philipjose and for the raw-Trio equivalent):

1. one-way: N messages (default 200,000) sent to one receiver that drains them.
   Raw Trio: an unbounded memory channel; idiomatic ``await send()``, and also ``send_nowait()``.
2. ping-pong: round trips between two processes / two tasks over two memory channels.
3. spawn: start K parked processes (waiting in ``receive``) vs K tasks in ``trio.sleep_forever``.
4. memory: RSS growth per idle process over 100,000, each side measured in a fresh interpreter.
5. one million idle processes in one interpreter (fresh interpreter): RSS and time.

Usage::

    python benchmarks/bench_actors.py              # everything, the sizes in docs/benchmarks.md
    python benchmarks/bench_actors.py --quick      # smaller sizes, for a smoke run
    python benchmarks/bench_actors.py --only one-way,ping-pong

Timings are the best of ``--repeat`` runs, philipjose and Trio alternating run by run so machine load
falls on both alike, in CPU seconds of the benchmark process (``time.process_time``; ``--wall`` for
``time.perf_counter``). Memory runs use a fresh interpreter per side.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil
import trio
import trio.testing

import philipjose as pj

# CPU time of this (single-threaded) process: steadier than wall time on a shared, loaded machine.
# --wall switches to time.perf_counter.
_clock: Callable[[], float] = time.process_time

# ----------------------------------------------------------------------------- one-way


def pj_one_way(n: int) -> float:
    async def receiver(n: int, report: pj.Pid) -> None:
        receive = pj.receive
        for _ in range(n):
            await receive()
        pj.send(report, "done")

    async def main() -> float:
        pid = pj.spawn(receiver, n, pj.self())
        await trio.testing.wait_all_tasks_blocked()
        send = pj.send
        start = _clock()
        for i in range(n):
            send(pid, i)
        await pj.receive()
        return _clock() - start

    return float(pj.run(main))


def trio_one_way(n: int, *, nowait: bool) -> float:
    async def main() -> float:
        send_chan, recv_chan = trio.open_memory_channel[int](math.inf)
        done = trio.Event()

        async def receiver() -> None:
            receive = recv_chan.receive
            for _ in range(n):
                await receive()
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            await trio.testing.wait_all_tasks_blocked()
            start = _clock()
            if nowait:
                send_nowait = send_chan.send_nowait
                for i in range(n):
                    send_nowait(i)
            else:
                send = send_chan.send
                for i in range(n):
                    await send(i)
            await done.wait()
            return _clock() - start

    return float(trio.run(main))


# ----------------------------------------------------------------------------- ping-pong


def pj_ping_pong(n: int) -> float:
    async def ponger() -> None:
        receive, send = pj.receive, pj.send
        while True:
            sender, i = await receive()
            send(sender, i)

    async def main() -> float:
        pid = pj.spawn(ponger)
        me = pj.self()
        receive, send = pj.receive, pj.send
        start = _clock()
        for i in range(n):
            send(pid, (me, i))
            await receive()
        return _clock() - start

    return float(pj.run(main))


def trio_ping_pong(n: int) -> float:
    async def main() -> float:
        ping_send, ping_recv = trio.open_memory_channel[int](math.inf)
        pong_send, pong_recv = trio.open_memory_channel[int](math.inf)

        async def ponger() -> None:
            while True:
                i = await ping_recv.receive()
                await pong_send.send(i)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ponger)
            start = _clock()
            for i in range(n):
                await ping_send.send(i)
                await pong_recv.receive()
            elapsed = _clock() - start
            nursery.cancel_scope.cancel()
        return elapsed

    return float(trio.run(main))


# ----------------------------------------------------------------------------- spawn


async def _parked() -> None:
    await pj.receive()


def pj_spawn(k: int) -> tuple[float, float]:
    """(seconds for the K spawn calls, seconds until all K processes are parked in receive)."""

    async def main() -> tuple[float, float]:
        spawn = pj.spawn
        start = _clock()
        for _ in range(k):
            spawn(_parked)
        calls = _clock() - start
        await trio.testing.wait_all_tasks_blocked()
        return calls, _clock() - start

    return pj.run(main)  # type: ignore[no-any-return]


def trio_spawn(k: int) -> tuple[float, float]:
    async def main() -> tuple[float, float]:
        async with trio.open_nursery() as nursery:
            start_soon = nursery.start_soon
            sleep_forever = trio.sleep_forever
            start = _clock()
            for _ in range(k):
                start_soon(sleep_forever)
            calls = _clock() - start
            await trio.testing.wait_all_tasks_blocked()
            elapsed = _clock() - start
            nursery.cancel_scope.cancel()
        return calls, elapsed

    return trio.run(main)


# ----------------------------------------------------------------------------- memory (child processes)


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def child_memory(kind: str, k: int) -> dict[str, Any]:
    """Run in a fresh interpreter: RSS before and after K idle processes (or bare Trio tasks)."""
    result: dict[str, Any] = {}

    async def pj_main() -> None:
        await _warm_pj()
        before = _rss()
        start = _clock()
        for _ in range(k):
            pj.spawn(_parked)
        await trio.testing.wait_all_tasks_blocked()
        result["seconds"] = _clock() - start
        result["rss_before"], result["rss_after"] = before, _rss()

    async def trio_main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            await trio.testing.wait_all_tasks_blocked()
            before = _rss()
            start = _clock()
            for _ in range(k):
                nursery.start_soon(trio.sleep_forever)
            await trio.testing.wait_all_tasks_blocked()
            result["seconds"] = _clock() - start
            result["rss_before"], result["rss_after"] = before, _rss()
            nursery.cancel_scope.cancel()

    if kind == "pj":
        pj.run(pj_main)
    else:
        trio.run(trio_main)
    result["per_process"] = (result["rss_after"] - result["rss_before"]) / k
    return result


async def _warm_pj() -> None:
    # one spawn/park cycle so imports and first-use allocations are not counted
    pid = pj.spawn(_parked)
    await trio.testing.wait_all_tasks_blocked()
    pj.send(pid, "bye")
    await trio.testing.wait_all_tasks_blocked()


def run_child(kind: str, k: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(k)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return dict(json.loads(out.stdout))


# ----------------------------------------------------------------------------- driver


def best_pair(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[Any, Any]:
    """Run ``a`` and ``b`` alternately ``repeat`` times; the best (smallest) result of each."""
    results_a, results_b = [], []
    for _ in range(repeat):
        results_a.append(a())
        results_b.append(b())
    return min(results_a), min(results_b)


def main() -> None:
    global _clock
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repetitions, best kept (default 5)")
    parser.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    parser.add_argument(
        "--only", default="", help="comma-separated subset: one-way,ping-pong,spawn,memory,million"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wall:
        _clock = time.perf_counter
    if args.child:
        print(json.dumps(child_memory(args.child[0], int(args.child[1]))))
        return

    n_one_way = 20_000 if args.quick else 200_000
    n_ping = 5_000 if args.quick else 50_000
    k_spawn = 10_000 if args.quick else 100_000
    k_memory = 10_000 if args.quick else 100_000
    k_million = 50_000 if args.quick else 1_000_000
    only = set(filter(None, args.only.split(","))) or {"one-way", "ping-pong", "spawn", "memory", "million"}
    repeat = args.repeat

    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs, "
        f"reductions budget {pj.actors.REDUCTIONS}, {'wall' if args.wall else 'CPU'} time, "
        f"best of {repeat}"
    )
    if "one-way" in only:
        t_pj, t_tr = best_pair(
            lambda: pj_one_way(n_one_way), lambda: trio_one_way(n_one_way, nowait=False), repeat
        )
        _, t_nw = best_pair(lambda: 0.0, lambda: trio_one_way(n_one_way, nowait=True), repeat)
        print(
            f"one-way {n_one_way:,} msgs: philipjose {n_one_way / t_pj:,.0f}/s | "
            f"trio await send {n_one_way / t_tr:,.0f}/s (ratio {t_tr / t_pj:.2f}x) | "
            f"trio send_nowait {n_one_way / t_nw:,.0f}/s (ratio {t_nw / t_pj:.2f}x)"
        )
    if "ping-pong" in only:
        t_pj, t_tr = best_pair(lambda: pj_ping_pong(n_ping), lambda: trio_ping_pong(n_ping), repeat)
        print(
            f"ping-pong {n_ping:,} round trips: philipjose {n_ping / t_pj:,.0f}/s | "
            f"trio channels {n_ping / t_tr:,.0f}/s (ratio {t_tr / t_pj:.2f}x)"
        )
    if "spawn" in only:
        runs_pj, runs_tr = [], []
        for _ in range(repeat):
            runs_pj.append(pj_spawn(k_spawn))
            runs_tr.append(trio_spawn(k_spawn))
        c_pj, p_pj = min(r[0] for r in runs_pj), min(r[1] for r in runs_pj)
        c_tr, p_tr = min(r[0] for r in runs_tr), min(r[1] for r in runs_tr)
        print(
            f"spawn {k_spawn:,}, until all parked: philipjose {k_spawn / p_pj:,.0f}/s | "
            f"trio tasks {k_spawn / p_tr:,.0f}/s (ratio {p_tr / p_pj:.2f}x)"
        )
        print(
            f"spawn {k_spawn:,}, the spawn calls alone: philipjose pj.spawn {k_spawn / c_pj:,.0f}/s | "
            f"trio start_soon {k_spawn / c_tr:,.0f}/s (ratio {c_tr / c_pj:.2f}x)"
        )
    if "memory" in only:
        m_pj = run_child("pj", k_memory)
        m_tr = run_child("trio", k_memory)
        print(
            f"memory over {k_memory:,} idle: philipjose {m_pj['per_process']:,.0f} B/process | "
            f"trio task {m_tr['per_process']:,.0f} B/task | "
            f"difference {m_pj['per_process'] - m_tr['per_process']:,.0f} B"
        )
    if "million" in only:
        m_pj = run_child("pj", k_million)
        m_tr = run_child("trio", k_million)
        print(
            f"{k_million:,} idle processes: philipjose RSS {m_pj['rss_after'] / 2**30:.2f} GiB "
            f"(spawned in {m_pj['seconds']:.1f} s) | trio tasks RSS {m_tr['rss_after'] / 2**30:.2f} GiB "
            f"(in {m_tr['seconds']:.1f} s)"
        )


if __name__ == "__main__":
    main()
