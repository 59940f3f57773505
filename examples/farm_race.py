"""First-wins, map/reduce, and sequential and parallel composition on a farm.

    python examples/farm_race.py [WORKERS]
    philipjose farm run examples/farm_race.py --workers 4

- map/reduce: a Monte Carlo estimate of pi, each task throwing darts with its own seed, the counts
  summed with ``farm.reduce`` (lfarm's preduce);
- first-wins (PHILIP-JOSE's): several searches for a nonce whose SHA-256 starts with zeros, from
  different starting points; the first to find one wins and the others are stopped on their workers;
- sequential composition is ``await`` after ``await``; parallel composition is a Trio nursery.
"""

from __future__ import annotations

import hashlib
import operator
import random
import sys

import trio

from philipjose import farm


def darts(seed: int, n: int = 200_000) -> int:
    """How many of n random points in the unit square fall inside the quarter circle."""
    rng = random.Random(seed)
    return sum(1 for _ in range(n) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)


def searcher(start: int, step: int, zeros: int) -> tuple[int, str]:
    """A thunk searching nonces start, start+step, ... for a hash starting with `zeros` zeros."""

    def search() -> tuple[int, str]:
        nonce = start
        while True:
            digest = hashlib.sha256(f"philipjose-{nonce}".encode()).hexdigest()
            if digest.startswith("0" * zeros):
                return nonce, digest
            nonce += step

    return search  # type: ignore[return-value]


async def estimate_pi(f: farm.Farm, tasks: int = 16) -> float:
    inside = await f.reduce(operator.add, await f.map(darts, range(tasks)))
    return 4 * inside / (tasks * 200_000)


async def main(f: farm.Farm) -> str:
    lines = []
    # sequential: one stage after the other
    pi = await estimate_pi(f)
    lines.append(f"pi ~ {pi:.4f}")
    # parallel: two independent computations at once, in a nursery
    results: dict[str, object] = {}

    async def race() -> None:
        results["race"] = await f.race(*(searcher(i, 4, 5) for i in range(4)))

    async def squares() -> None:
        results["squares"] = sum(await f.map(operator.mul, range(1000), range(1000), chunksize=100))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(race)
        nursery.start_soon(squares)
    nonce, digest = results["race"]  # type: ignore[misc]
    lines.append(f"first nonce found: {nonce} -> {digest[:16]}...")
    lines.append(f"sum of squares below 1000: {results['squares']}")
    c = f.counters
    lines.append(f"{c.resolved} tasks resolved, {c.cancelled} of them race losers cancelled")
    return "\n".join(lines)


if __name__ == "__main__":

    async def standalone() -> None:
        workers = int(sys.argv[1]) if len(sys.argv) > 1 else None
        async with farm.Farm(workers=workers) as f:
            print(await main(f))

    trio.run(standalone)
