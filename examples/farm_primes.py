"""Count the primes below N on a farm of local workers: the farm demo.

    philipjose farm run examples/farm_primes.py --workers 4 [N]      # with a progress bar
    python examples/farm_primes.py [N] [WORKERS]                      # the same, as a plain script

The range is cut into blocks; each block is one task, counted on some worker by trial division (slow
on purpose: the work is CPU-bound). No Erlang is needed: the farm's node needs no EPMD.
"""

from __future__ import annotations

import math
import sys

import trio

from philipjose import farm

BLOCK = 20_000


def count_primes(start: int, stop: int) -> int:
    """How many primes p with start <= p < stop (trial division by odd numbers)."""
    count = 0
    for n in range(max(start, 2), stop):
        if n < 4 or (n % 2 and all(n % d for d in range(3, math.isqrt(n) + 1, 2))):
            count += 1
    return count


async def main(f: farm.Farm) -> str:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
    starts = range(0, limit, BLOCK)
    counts = await f.map(count_primes, starts, [min(s + BLOCK, limit) for s in starts])
    return f"{sum(counts)} primes below {limit} ({len(counts)} tasks on {len(f.workers)} workers)"


if __name__ == "__main__":

    async def standalone() -> None:
        workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
        async with farm.Farm(workers=workers) as f:
            print(await main(f))

    trio.run(standalone)
