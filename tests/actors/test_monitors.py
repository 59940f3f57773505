"""Monitors: DOWN messages, stacking, noproc, demonitor/flush, names; registry ordering."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import philipjose as pj
from philipjose import Atom, Pid

from .helpers import DOWN, NOPROC, NORMAL, PROCESS, forever, run, wait_down


async def _quick() -> None:
    return None


async def _wait_go(reason: Any = "normal") -> None:
    await pj.receive(lambda m: m == "go")
    raise pj.Exit(reason)


def test_monitors_stack() -> None:
    async def main() -> Any:
        pid = pj.spawn(_wait_go, "bye")
        r1, r2 = pj.monitor(pid), pj.monitor(pid)
        assert r1 != r2
        pj.send(pid, "go")
        m1 = await pj.receive()
        m2 = await pj.receive()
        return (r1, r2, pid), (m1, m2)

    (r1, r2, pid), (m1, m2) = run(main)
    assert {m1, m2} == {(DOWN, r1, PROCESS, pid, Atom("bye")), (DOWN, r2, PROCESS, pid, Atom("bye"))}


def test_monitor_of_dead_process_gives_noproc_at_once() -> None:
    async def main() -> Any:
        pid, ref = pj.spawn_monitor(_quick)
        await wait_down(ref)
        ref2 = pj.monitor(pid)
        return pid, ref2, await pj.receive(timeout=0)

    pid, ref, msg = run(main)
    assert msg == (DOWN, ref, PROCESS, pid, NOPROC)


def test_demonitor_stops_down_and_flush_removes_queued_down() -> None:
    async def main() -> Any:
        pid = pj.spawn(_wait_go)
        keep, drop = pj.monitor(pid), pj.monitor(pid)
        assert pj.demonitor(drop) is True
        assert pj.demonitor(drop) is False
        pj.send(pid, "go")
        assert await wait_down(keep) == NORMAL
        with pytest.raises(TimeoutError):
            await pj.receive(timeout=0)

        _pid2, ref2 = pj.spawn_monitor(_quick)
        pj.send(pj.self(), "before")
        await trio.testing.wait_all_tasks_blocked()  # _quick has ended: its DOWN is queued
        assert pj.process_info(pj.self())["message_queue_len"] == 2  # type: ignore[index]
        assert pj.demonitor(ref2, flush=True) is False  # it had already fired
        return await pj.receive(timeout=0), pj.process_info(pj.self())["message_queue_len"]  # type: ignore[index]

    assert run(main) == ("before", 0)


def test_demonitor_of_live_monitor_with_flush_returns_true() -> None:
    async def main() -> Any:
        pid = pj.spawn(forever)
        ref = pj.monitor(pid)
        ok = pj.demonitor(ref, flush=True)
        pj.exit(pid, "kill")
        probe = pj.monitor(pid)  # noproc DOWN for the probe only
        return ok, await pj.receive(timeout=0), probe

    ok, msg, probe = run(main)
    assert ok is True and msg[1] == probe


def test_monitor_by_name_and_name_node() -> None:
    async def main() -> Any:
        pid = pj.spawn(_wait_go, "named_exit")
        pj.register("srv", pid)
        r1 = pj.monitor("srv")
        r2 = pj.monitor(("srv", "nonode@nohost"))
        r3 = pj.monitor("absent")
        absent = await pj.receive(timeout=0)
        pj.send("srv", "go")
        d1 = await pj.receive(lambda m: m[1] == r1)
        d2 = await pj.receive(lambda m: m[1] == r2)
        return (r3, absent), d1, d2

    (r3, absent), d1, d2 = run(main)
    item = (Atom("srv"), Atom("nonode@nohost"))
    assert absent == (DOWN, r3, PROCESS, (Atom("absent"), Atom("nonode@nohost")), NOPROC)
    assert d1[3] == item and d1[4] == Atom("named_exit")
    assert d2[3] == item


def test_monitor_of_self_is_allowed() -> None:
    async def main() -> bool:
        ref = pj.monitor(pj.self())
        return pj.demonitor(ref)

    assert run(main) is True


def test_monitor_badarg() -> None:
    async def main() -> None:
        with pytest.raises(pj.BadArg):
            pj.monitor(42)
        with pytest.raises(pj.BadArg):
            pj.demonitor("not a ref")  # type: ignore[arg-type]

    run(main)


def test_name_is_released_before_links_and_monitors_fire() -> None:
    async def watcher(report: Pid) -> None:
        pj.process_flag("trap_exit", True)
        target = pj.spawn_link(_wait_go, "bye")
        pj.register("target", target)
        ref = pj.monitor(target)
        pj.send(report, ("ready", target))
        exit_msg = await pj.receive(lambda m: m[0] == Atom("EXIT"))
        seen_at_exit = pj.whereis("target")
        down = await pj.receive(lambda m: m[0] == DOWN and m[1] == ref)
        pj.send(report, (exit_msg[2], seen_at_exit, down[4]))

    async def main() -> Any:
        pj.spawn(watcher, pj.self())
        _, target = await pj.receive()
        pj.send(target, "go")
        return await pj.receive()

    assert run(main) == (Atom("bye"), None, Atom("bye"))


def test_links_fire_before_monitors() -> None:
    async def watcher(report: Pid) -> None:
        pj.process_flag("trap_exit", True)
        target = pj.spawn_link(_wait_go, "x")
        pj.monitor(target)
        pj.send(target, "go")
        first = await pj.receive()
        second = await pj.receive()
        pj.send(report, (first[0], second[0]))

    async def main() -> Any:
        pj.spawn(watcher, pj.self())
        return await pj.receive()

    assert run(main) == (Atom("EXIT"), DOWN)
