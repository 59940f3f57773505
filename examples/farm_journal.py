"""The journal: a farm run that is killed, or simply run again, does not redo the work it did.

    philipjose farm run examples/farm_journal.py --journal squares.sqlite [N]
    philipjose farm journal squares.sqlite

Squares the numbers below N (default 200), 20 ms of work each, and prints their sum and how many of
the tasks came from the journal. Run it twice with the same ``--journal``: the second run resolves
every task from the journal at once. Kill it half-way (Ctrl-C, or ``kill -9``) and run it again: only
the tasks with no recorded result run. Change this file and the journal is refused (the script
changed); ``philipjose farm journal squares.sqlite --clear`` empties it.
"""

from __future__ import annotations

import sys
import time

from philipjose import farm


def work(x: int) -> int:
    time.sleep(0.02)  # the workload
    return x * x


async def main(f: farm.Farm) -> str:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    total = sum(await f.map(work, range(n)))
    return f"sum of squares below {n}: {total} ({f.counters.replayed} of {n} tasks from the journal)"
