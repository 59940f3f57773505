"""Receive path benchmark (issue 13, input side): frames in, events out, in-process, no sockets.

Feeds 200 chunks of 1,000 REG_SEND frames of the bench_dist message ``{row, 1, <<32 bytes>>, 2.5,
[1,2,3]}`` (with a distribution header, as OTP sends) to a ``Connection`` and takes every event out
with ``next_event_or_large`` (the node's hot path); prints the best of ``--runs`` in messages/s.
Run it once with the current tree and once with an older one first on ``PYTHONPATH`` (it falls
back to ``next_event`` where ``next_event_or_large`` does not exist) to compare:

    python3 benchmarks/bench_receive.py
    PYTHONPATH=/path/to/old/tree python3 benchmarks/bench_receive.py
"""

from __future__ import annotations

import argparse
import time

from philipjose import Atom, Pid
from philipjose.node import control as c
from philipjose.node.connection import Connection
from philipjose.node.flags import ADVERTISED
from philipjose.node.sentinels import NEED_DATA


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    event = c.RegSend(Pid("a@b", 1, 0, 1), Atom("sink"), (Atom("row"), 1, bytes(32), 2.5, [1, 2, 3]))
    chunk = Connection(ADVERTISED).send(event) * 1000
    best = float("inf")
    for _ in range(args.runs):
        rx = Connection(ADVERTISED)
        take = getattr(rx, "next_event_or_large", rx.next_event)
        start = time.perf_counter()
        for _ in range(200):
            rx.receive_data(chunk)
            while take() is not NEED_DATA:
                pass
        best = min(best, time.perf_counter() - start)
    print(f"receive path: {200_000 / best:,.0f} msg/s (best of {args.runs})")


if __name__ == "__main__":
    main()
