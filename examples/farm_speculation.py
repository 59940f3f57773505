"""Speculation: a worker stops answering in the middle of a map, and the map does not wait for it.

    python examples/farm_speculation.py [SECONDS]

Three local workers square 60 numbers, 50 ms of work each. Before the map starts, one worker is
stopped (SIGSTOP) for SECONDS seconds (default 10): without speculation its tasks would hold the
map until it is resumed. With ``speculation=True`` the farm sees them run past 1.5 times the median
runtime once 75 % of the tasks are done, runs duplicates on the other workers, takes the first
results and kills the stopped worker (the farm starts a replacement). Prints the sum, how long the
map took and how many duplicates ran and won.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import trio

from philipjose import farm


def work(x: int) -> int:
    time.sleep(0.05)  # the workload
    return x * x


async def main(stopped_for: float) -> None:
    async with farm.Farm(workers=3, speculation=True) as f:
        await f.map(work, range(3))  # every worker has started
        victim = f.workers[0].os_pid
        assert victim is not None
        os.kill(victim, signal.SIGSTOP)
        try:
            async with trio.open_nursery() as nursery:

                async def resume_later() -> None:
                    await trio.sleep(stopped_for)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(victim, signal.SIGCONT)

                nursery.start_soon(resume_later)
                start = trio.current_time()
                total = sum(await f.map(work, range(60)))
                took = trio.current_time() - start
                nursery.cancel_scope.cancel()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGCONT)  # never leave a process stopped
        c = f.counters
        print(f"sum of squares below 60: {total}")
        print(f"one worker stopped for {stopped_for:g} s; the map took {took:.1f} s")
        print(f"duplicates started {c.duplicates_started}, won {c.duplicates_won}")


if __name__ == "__main__":
    trio.run(main, float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
