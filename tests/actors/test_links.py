"""Links and exit signals: Erlang's rules, trap_exit, noproc, unlink."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid

from .helpers import EXIT, KILL, KILLED, NOPROC, NORMAL, forever, run, wait_down


async def _exit_with(reason: Any) -> None:
    raise pj.Exit(reason)


async def _wait_for_go_then_exit(reason: Any) -> None:
    await pj.receive(lambda m: m == "go")
    raise pj.Exit(reason)


async def _trapper(report: Pid) -> None:
    pj.process_flag("trap_exit", True)
    pj.send(report, ("ready", pj.self()))
    while True:
        pj.send(report, ("got", await pj.receive()))


def test_link_is_bidirectional() -> None:
    async def main() -> list[Any]:
        a = pj.spawn(forever)
        b = pj.spawn(forever)
        ra, rb = pj.monitor(a), pj.monitor(b)

        # link a <-> b from a third process's point of view: spawn_link from a helper
        async def linker() -> None:
            pj.link(a)
            pj.link(b)
            raise pj.Exit("chain")

        pj.spawn(linker)
        return [await wait_down(ra), await wait_down(rb)]

    assert run(main) == [Atom("chain"), Atom("chain")]


def test_abnormal_exit_kills_linked_process_with_same_reason() -> None:
    async def middle(report: Pid) -> None:
        pj.spawn_link(_wait_for_go_then_exit, "crashy")
        pj.send(report, "linked")
        await pj.receive()

    async def main() -> Any:
        pid, ref = pj.spawn_monitor(middle, pj.self())
        assert await pj.receive() == "linked"
        (child,) = pj.process_info(pid)["links"]  # type: ignore[index]
        pj.send(child, "go")
        return await wait_down(ref)

    assert run(main) == Atom("crashy")


def test_normal_exit_does_not_kill_linked_non_trapping_process() -> None:
    async def main() -> Any:
        child = pj.spawn_link(_wait_for_go_then_exit, "normal")
        ref = pj.monitor(child)
        pj.send(child, "go")
        assert await wait_down(ref) == NORMAL
        return pj.is_alive(pj.self()), pj.process_info(pj.self())["links"]  # type: ignore[index]

    assert run(main) == (True, [])


def test_trapping_process_gets_exit_messages() -> None:
    async def main() -> list[Any]:
        pj.process_flag("trap_exit", True)
        a = pj.spawn_link(_exit_with, "normal")
        b = pj.spawn_link(_exit_with, "bad")
        c = pj.spawn_link(_exit_with, "kill")  # dying WITH reason kill: trappable
        msgs = [await pj.receive((EXIT, Pid, Atom)) for _ in range(3)]
        return sorted(msgs, key=lambda m: m[1].id) == [
            (EXIT, a, NORMAL),
            (EXIT, b, Atom("bad")),
            (EXIT, c, KILL),
        ]

    assert run(main)


def test_linked_process_dying_with_reason_kill_kills_with_kill_not_killed() -> None:
    async def middle() -> None:
        pj.spawn_link(_exit_with, "kill")
        await pj.receive()

    async def main() -> Any:
        _pid, ref = pj.spawn_monitor(middle)
        return await wait_down(ref)

    assert run(main) == KILL


def test_exit_kill_cannot_be_trapped() -> None:
    async def main() -> Any:
        pid, ref = pj.spawn_monitor(_trapper, pj.self())
        assert (await pj.receive())[0] == "ready"
        pj.exit(pid, "kill")
        return await wait_down(ref)

    assert run(main) == KILLED


def test_exit2_to_trapping_process_becomes_message() -> None:
    async def main() -> list[Any]:
        pid = pj.spawn(_trapper, pj.self())
        assert await pj.receive() == ("ready", pid)
        pj.exit(pid, "normal")
        pj.exit(pid, "please")
        return [await pj.receive(), await pj.receive(), pj.self()]

    got1, got2, me = run(main)
    assert got1 == ("got", (EXIT, me, NORMAL))
    assert got2 == ("got", (EXIT, me, Atom("please")))


def test_exit2_normal_is_ignored_by_non_trapping_process() -> None:
    async def main() -> bool:
        pid = pj.spawn(forever)
        pj.exit(pid, "normal")
        await trio.testing.wait_all_tasks_blocked()
        return pj.is_alive(pid)

    assert run(main) is True


def test_one_link_per_pair_and_self_link_is_noop() -> None:
    async def main() -> Any:
        pid = pj.spawn(forever)
        pj.link(pid)
        pj.link(pid)
        pj.link(pj.self())
        info_me = pj.process_info(pj.self())
        info_other = pj.process_info(pid)
        pj.unlink(pid)  # one unlink removes the (single) link
        return info_me["links"], info_other["links"], pj.process_info(pid)["links"], pid  # type: ignore[index]

    mine, theirs, after, pid = run(main)
    assert mine == [pid] and len(theirs) == 1 and after == []


def test_link_to_dead_process_noproc() -> None:
    async def quick() -> None:
        return None

    async def main() -> Any:
        pid, ref = pj.spawn_monitor(quick)
        await wait_down(ref)
        with pytest.raises(pj.Exit) as info:
            pj.link(pid)
        assert info.value.reason == NOPROC
        pj.process_flag("trap_exit", True)
        pj.link(pid)
        return pid, await pj.receive(timeout=0)

    pid, msg = run(main)
    assert msg == (EXIT, pid, NOPROC)


def test_uncaught_link_noproc_ends_process_with_noproc() -> None:
    async def quick() -> None:
        return None

    async def linker(pid: Pid) -> None:
        pj.link(pid)

    async def main() -> Any:
        pid, ref = pj.spawn_monitor(quick)
        await wait_down(ref)
        _l, lref = pj.spawn_monitor(linker, pid)
        return await wait_down(lref)

    assert run(main) == NOPROC


def test_unlink_guarantees_no_later_effect() -> None:
    async def main() -> bool:
        child = pj.spawn_link(_wait_for_go_then_exit, "bad")
        ref = pj.monitor(child)
        pj.unlink(child)
        pj.send(child, "go")
        assert await wait_down(ref) == Atom("bad")
        return pj.is_alive(pj.self())

    assert run(main) is True


def test_unlink_from_trapping_side_means_no_exit_message() -> None:
    async def main() -> Any:
        pj.process_flag("trap_exit", True)
        child = pj.spawn_link(_wait_for_go_then_exit, "bad")
        ref = pj.monitor(child)
        pj.unlink(child)
        pj.send(child, "go")
        await wait_down(ref)
        with pytest.raises(TimeoutError):
            await pj.receive(timeout=0)

    run(main)


def test_process_flag_returns_old_value_and_rejects_unknown() -> None:
    async def main() -> list[Any]:
        out = [pj.process_flag("trap_exit", True), pj.process_flag(Atom("trap_exit"), False)]
        with pytest.raises(pj.BadArg):
            pj.process_flag("priority", "high")
        with pytest.raises(pj.BadArg):
            pj.process_flag("trap_exit", "yes")
        return out

    assert run(main) == [False, True]


def test_spawn_link_requires_a_process() -> None:
    async def body() -> None:
        return None

    checked: list[str] = []

    async def system_task() -> None:
        with pytest.raises(pj.NoProcessError):
            pj.spawn_link(body)
        with pytest.raises(pj.NoProcessError):
            pj.self()
        pj.spawn(body)  # plain spawn works from any task of the runtime
        checked.append("ok")

    async def setup() -> None:
        pj.actors.current_runtime().nursery.start_soon(system_task)

    async def main() -> None:
        await trio.testing.wait_all_tasks_blocked()

    pj.actors.run(main, setup=setup)
    assert checked == ["ok"]


def test_system_tasks_started_from_a_process_are_not_that_process() -> None:
    async def system_task(report: Pid) -> None:
        with pytest.raises(pj.NoProcessError):
            pj.self()
        pj.send(report, "system task ran")

    async def main() -> Any:
        pj.actors.current_runtime().start_system_task(system_task, pj.self())
        return await pj.receive()

    assert run(main) == "system task ran"


def test_exit_signal_to_dead_pid_is_noop() -> None:
    async def quick() -> None:
        return None

    async def main() -> bool:
        pid, ref = pj.spawn_monitor(quick)
        await wait_down(ref)
        pj.exit(pid, "kill")
        return True

    assert run(main)
