"""``global`` between philipjose nodes (no erl): sync, names registered on one node seen on the
others, connect-all through a common node, locks, names going away with their process; and the
pure helpers (Erlang's term order of pids, checked against erl 25 in ``tests/interop``)."""

from __future__ import annotations

from typing import Any

import trio

import philipjose as pj
from philipjose import Atom, Pid
from philipjose.node.global_ import _boss, _sorted_pids
from tests.node.support import local_nodes

YES = Atom("yes")


def test_pid_order_is_erlangs() -> None:
    # erl 25: serial first, then the number, then the node name, then the creation
    a = Pid("a@x", 5, 0, 1)
    b = Pid("b@x", 1, 0, 1)
    c = Pid("a@x", 1, 9, 1)
    d = Pid("a@x", 2, 0, 1)
    e = Pid("a@x", 1, 0, 7)
    f = Pid("a@x", 1, 0, 2)
    assert _sorted_pids([a, b]) == [b, a]
    assert _sorted_pids([c, d]) == [d, c]
    assert _sorted_pids([e, f]) == [f, e]
    assert _sorted_pids([Pid("b@x", 3, 0, 1), Pid("ab@x", 3, 0, 1)]) == [
        Pid("ab@x", 3, 0, 1),
        Pid("b@x", 3, 0, 1),
    ]
    assert _boss([Atom("a@h"), Atom("c@h"), Atom("b@h")]) == Atom("c@h")


async def _idle() -> None:
    await pj.receive()


async def test_global_between_python_nodes() -> None:
    async with local_nodes(3) as (n0, n1, n2):

        async def join(*others: str) -> Any:
            for other in others:
                assert await pj.node.ping(other)
            return await pj.global_.sync()

        assert await n0.run(join, n1.name) == Atom("ok")

        async def register() -> list[Any]:
            pid = pj.spawn(_idle)
            return [
                pid,
                await pj.global_.register_name("shared", pid),
                await pj.global_.register_name("shared", pid),
            ]

        pid, first, second = await n1.run(register)
        assert first == YES and second == Atom("no")

        async def where() -> Any:
            return pj.global_.whereis_name("shared")

        assert await n0.run(where) == pid
        # n2 joins through n0 only: global connects it to n1 and gives it the names
        assert await n2.run(join, n0.name) == Atom("ok")

        async def meshed() -> list[str]:
            with trio.fail_after(20):
                while len(pj.node.nodes()) < 2:
                    await trio.sleep(0.02)
            await pj.global_.sync()
            return sorted(str(n) for n in pj.node.nodes())

        assert await n2.run(meshed) == sorted([n0.name, n1.name])
        assert await n2.run(where) == pid

        async def send() -> Any:
            return pj.global_.send("shared", Atom("bye"))

        assert await n2.run(send) == pid  # the holder ends on that message: the name goes everywhere

        async def gone() -> Any:
            with trio.fail_after(20):
                while pj.global_.whereis_name("shared") is not None:
                    await trio.sleep(0.02)
            return None

        for node in (n0, n1, n2):
            assert await node.run(gone) is None

        async def try_lock() -> bool:
            return await pj.global_.set_lock((Atom("r"), Atom("other")), retries=0)

        async def start_holder() -> Pid:
            me = pj.self()

            async def holder() -> None:
                assert await pj.global_.set_lock((Atom("r"), Atom("mine")))
                pj.send(me, Atom("locked"))
                await pj.receive()  # holds the lock until told to end

            pid = pj.spawn(holder)
            await pj.receive(match=Atom("locked"), timeout=10)
            return pid

        holder = await n0.run(start_holder)
        assert await n1.run(try_lock) is False  # another requester id: refused

        async def stop_holder() -> None:
            pj.send(holder, Atom("stop"))

        await n0.run(stop_holder)

        async def eventually_free() -> bool:
            with trio.fail_after(20):
                while not await try_lock():
                    await trio.sleep(0.02)
            return True

        assert await n1.run(eventually_free) is True  # the holder's death released the lock
