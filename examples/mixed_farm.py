"""A mixed farm: two Python workers and one Erlang node, and Elixir calling the farm.

    python examples/mixed_farm.py                       # starts its own erl node (erl on PATH)
    python examples/mixed_farm.py calc@localhost COOKIE # or uses a running one, with its cookie

- one program maps a Python function (sums of squares, on the Python workers) and an Erlang function
  (``lists:sum/1`` on chunks, on the Erlang node) at the same time;
- a race between an Erlang task and a Python task: the first to finish wins, the other is stopped on
  its side (the Erlang process killed, the Python worker interrupted or replaced);
- the farm serves ``philipjose_farm``: when ``elixir`` is on PATH, ``examples/mixed_farm.exs`` (with
  the wrapper ``examples/philipjose_farm.ex``) submits a map of the exposed Python function
  ``mixed:square/1`` to it and prints what it got.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from philipjose import farm, rpc

HERE = Path(__file__).resolve().parent


def sum_of_squares(chunk: list[int]) -> int:
    return sum(x * x for x in chunk)


def square(x: int) -> int:
    return x * x


def slow_python(seconds: float) -> str:
    import time

    time.sleep(seconds)  # the work of the slow contender
    return "python"


rpc.expose("mixed", [square])  # what Erlang and Elixir callers of philipjose_farm may run


@asynccontextmanager
async def erl_node(cookie: str) -> AsyncIterator[str]:
    """An ``erl`` node of our own (``-sname``, on localhost), stopped at the end."""
    name = f"mixedfarm{os.getpid()}@localhost"
    argv = ["erl", "-noshell", "-sname", name, "-setcookie", cookie, "-eval", 'io:format("READY~n")']
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        seen = b""
        with trio.fail_after(60):
            while b"READY" not in seen:
                data = await process.stdout.receive_some()
                if not data:
                    raise SystemExit(f"erl exited before it was ready: {seen.decode(errors='replace')}")
                seen += data
        yield name
    finally:
        process.kill()
        await process.wait()


async def elixir_submits_a_map(f: farm.Farm, cookie: str) -> str | None:
    """Run ``mixed_farm.exs`` against the farm's service; its output, or None without elixir."""
    elixir = shutil.which("elixir")
    if elixir is None:
        return None
    farmer = f.node
    argv = [elixir, "--sname", f"mixedex{os.getpid()}@localhost", "--cookie", cookie]
    argv += ["-r", str(HERE / "philipjose_farm.ex"), str(HERE / "mixed_farm.exs"), farmer]
    done = await trio.run_process(argv, capture_stdout=True, check=True)
    return done.stdout.decode().strip()


async def main(node: str, cookie: str) -> None:
    numbers = list(range(10_000))
    chunks = [numbers[i : i + 1000] for i in range(0, len(numbers), 1000)]
    async with farm.Farm(workers=2, erlang_nodes=[node], cookie=cookie, service=True) as f:
        results: dict[str, list[int]] = {}

        async def python_side() -> None:
            results["python"] = await f.map(sum_of_squares, chunks)

        async def erlang_side() -> None:
            results["erlang"] = await f.map(farm.erl("lists", "sum"), chunks)

        async with trio.open_nursery() as nursery:  # both kinds of workers at once
            nursery.start_soon(python_side)
            nursery.start_soon(erlang_side)
        print(f"python: sum of squares below 10000 = {sum(results['python'])}")
        print(f"erlang: lists:sum/1 of 10 chunks = {sum(results['erlang'])}")

        erlang_contender = farm.Erl("lists", "sum", [numbers])  # fast
        winner = await f.race(erlang_contender, lambda: slow_python(30))
        print(f"race: {'erlang' if winner == sum(numbers) else winner} won, the other was stopped")

        said = await elixir_submits_a_map(f, cookie)
        print(said if said is not None else "elixir: not installed, skipped")


if __name__ == "__main__":

    async def run() -> None:
        if len(sys.argv) >= 3:
            await main(sys.argv[1], sys.argv[2])
            return
        cookie = secrets.token_hex(16)
        async with erl_node(cookie) as node:
            await main(node, cookie)

    trio.run(run)
