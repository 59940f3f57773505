"""Scale and fairness: a ring of 10,000 processes; a flooded process does not starve a neighbour."""

from __future__ import annotations

import itertools
from typing import Any

import trio
import trio.testing

import philipjose as pj
from philipjose import Pid

from .helpers import run


async def _ring_node(report: Pid) -> None:
    nxt = await pj.receive()
    while True:
        token = await pj.receive()
        if token == "stop":
            pj.send(nxt, "stop")
            return
        pj.send(nxt, token + 1)


def test_ring_of_10000_processes() -> None:
    n, laps = 10_000, 3

    async def main() -> Any:
        me = pj.self()
        nodes = [pj.spawn(_ring_node, me) for _ in range(n)]
        for i, pid in enumerate(nodes):
            pj.send(pid, nodes[i + 1] if i + 1 < n else me)
        assert len(pj.processes()) == n + 1
        token = 0
        for _ in range(laps):
            pj.send(nodes[0], token)
            token = await pj.receive()
        refs = [pj.monitor(p) for p in nodes]
        pj.send(nodes[0], "stop")
        assert await pj.receive("stop") == "stop"
        downs = [
            await pj.receive((pj.actors.reasons.DOWN, pj.Reference, pj.ANY, pj.Pid, pj.ANY)) for _ in range(n)
        ]
        assert {d[1] for d in downs} == set(refs)
        assert {d[4] for d in downs} == {pj.Atom("normal")}
        return token, len(pj.processes())

    assert run(main) == (n * laps, 1)


def test_flooded_process_does_not_stall_a_ticking_neighbour() -> None:
    """A drains a flood of messages without blocking; B ticks with checkpoints meanwhile.

    Proved by ordering, not wall time: B records how many messages A had drained at each of its ticks.
    With the reduction budget, A yields every REDUCTIONS receives, so B ticks while A drains, and
    between two ticks of B, A drains at most two budgets (Trio may run A before or after B within
    one scheduling batch).
    """
    flood = 50 * pj.actors.REDUCTIONS
    drained: list[int] = [0]
    ticks: list[int] = []

    async def flooded() -> None:
        while drained[0] < flood:
            await pj.receive()
            drained[0] += 1

    async def ticker(done: trio.Event) -> None:
        while not done.is_set():
            ticks.append(drained[0])
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        done = trio.Event()
        a, ref = pj.spawn_monitor(flooded)
        pj.spawn(ticker, done)
        for i in range(flood):
            pj.send(a, i)  # the whole flood is queued before A runs
        await pj.receive(lambda m: m[1] == ref)
        done.set()

    run(main)
    during = [t for t in ticks if 0 < t < flood]
    assert len(during) >= flood // (2 * pj.actors.REDUCTIONS) - 2
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(steps) <= 2 * pj.actors.REDUCTIONS


def test_many_short_lived_processes_leave_no_trace() -> None:
    async def worker(i: int, report: Pid) -> None:
        pj.send(report, i)

    async def main() -> Any:
        rt = pj.actors.current_runtime()
        for i in range(2000):
            pj.spawn_link(worker, i, pj.self())
        got = sorted([await pj.receive() for _ in range(2000)])
        await trio.testing.wait_all_tasks_blocked()
        return got == list(range(2000)), len(rt._procs), pj.process_info(pj.self())["links"]  # type: ignore[index]

    assert run(main) == (True, 1, [])
