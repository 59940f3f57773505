"""The runtime side of the distribution interface, driven with a fake DistributionHooks (pure logic)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import philipjose as pj
from philipjose import Atom, Pid, Reference
from philipjose.actors import Runtime, current_runtime
from philipjose.term import ImproperList

from .helpers import DOWN, EXIT, KILLED, NOPROC, PROCESS, forever, run, wait_down

NODE = Atom("py@host")
OTHER = Atom("erl@host")
NOCONNECTION = Atom("noconnection")
REMOTE = Pid(OTHER, 40, 0, 7)
REMOTE2 = Pid(OTHER, 41, 0, 7)


class FakeDist:
    """Records every call the runtime makes to the distribution layer."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def send(self, sender: Pid, to: Any, msg: Any) -> None:
        self.calls.append(("send", sender, to, msg))

    def link(self, local: Pid, remote: Pid) -> None:
        self.calls.append(("link", local, remote))

    def unlink(self, local: Pid, remote: Pid) -> None:
        self.calls.append(("unlink", local, remote))

    def exit(self, sender: Pid, to: Pid, reason: Any, *, link: bool) -> None:
        self.calls.append(("exit", sender, to, reason, link))

    def monitor(self, watcher: Pid, target: Any, ref: Reference) -> None:
        self.calls.append(("monitor", watcher, target, ref))

    def demonitor(self, watcher: Pid, target: Any, ref: Reference) -> None:
        self.calls.append(("demonitor", watcher, target, ref))

    def monitor_exit(self, target: Any, watcher: Pid, ref: Reference, reason: Any) -> None:
        self.calls.append(("monitor_exit", target, watcher, ref, reason))

    def group_leader(self, leader: Pid, to: Pid) -> None:
        self.calls.append(("group_leader", leader, to))


def _distributed() -> tuple[Runtime, FakeDist]:
    rt = current_runtime()
    dist = FakeDist()
    rt.set_node(NODE, 3)
    rt.dist = dist
    return rt, dist


def test_runtime_attributes_and_setup_hook() -> None:
    seen: list[Any] = []

    async def setup() -> None:
        rt = current_runtime()
        seen.append((rt.node, rt.creation, rt.dist))
        assert isinstance(rt.nursery, trio.Nursery)
        rt.set_node(NODE, 9)

    async def main() -> Any:
        rt = current_runtime()
        ref = rt.make_ref()
        return pj.self(), ref

    me, ref = pj.actors.run(main, setup=setup)
    assert seen == [(Atom("nonode@nohost"), 0, None)]
    assert me.node == NODE and me.creation == 9
    assert ref.node == NODE and ref.creation == 9 and len(ref.ids) == 3


def test_pids_made_before_distribution_are_found_under_the_node_name() -> None:
    async def main() -> Any:
        early = pj.spawn(forever)
        rt, _ = _distributed()
        wire_form = Pid(NODE, early.id, early.serial, 3)
        stale = Pid(NODE, early.id, early.serial, 2)  # an older incarnation of this node name
        late = pj.spawn(forever)
        rt.deliver(wire_form, "via wire pid")
        pj.send(wire_form, "via pj.send")
        return rt.lookup(wire_form), rt.lookup(early), rt.lookup(stale), late, early

    found_wire, found_early, found_stale, late, early = run(main)
    assert found_wire and found_early and not found_stale
    assert late.node == NODE and late.creation == 3 and early.node == Atom("nonode@nohost")


def test_deliver_to_pid_name_alias_and_unknown() -> None:
    async def main() -> Any:
        rt, _ = _distributed()
        me = pj.self()
        pj.register("box", me)
        proc = rt._procs[(me.serial << 32) | me.id]
        alias = rt.alias(proc)
        rt.deliver(me, 1)
        rt.deliver(Atom("box"), 2)
        rt.deliver(alias, 3)
        rt.deliver(Atom("nobody"), "dropped")
        rt.deliver(Pid(NODE, 99_999, 0, 3), "dropped")
        rt.unalias(proc, alias)
        rt.deliver(alias, "dropped: alias inactive")
        return [await pj.receive(timeout=0) for _ in range(3)], pj.process_info(me)["message_queue_len"]  # type: ignore[index]

    assert run(main) == ([1, 2, 3], 0)


def test_send_to_remote_destinations() -> None:
    async def main() -> Any:
        _rt, dist = _distributed()
        me = pj.self()
        pj.send(REMOTE, "to pid")
        pj.send(("srv", OTHER), "to name")
        pj.send(("local_name_unregistered", NODE), "dropped, local")
        remote_ref = Reference(OTHER, 7, (1, 2, 3))
        pj.send(remote_ref, "to alias")
        pj.actors.reply((REMOTE, ImproperList((Atom("alias"),), remote_ref)), "reply via alias")
        pj.actors.reply((REMOTE, remote_ref), "reply to pid")
        return me, remote_ref, list(dist.calls)

    me, ref, calls = run(main)
    assert calls == [
        ("send", me, REMOTE, "to pid"),
        ("send", me, (Atom("srv"), OTHER), "to name"),
        ("send", me, ref, "to alias"),
        ("send", me, ref, (ImproperList((Atom("alias"),), ref), "reply via alias")),
        ("send", me, REMOTE, (ref, "reply to pid")),
    ]


def test_remote_targets_without_distribution() -> None:
    async def main() -> Any:
        pj.send(REMOTE, "dropped")
        pj.send(("srv", OTHER), "dropped")
        ref = pj.monitor(REMOTE)
        down = await pj.receive(timeout=0)
        ref2 = pj.monitor(("srv", OTHER))
        down2 = await pj.receive(timeout=0)
        pj.process_flag("trap_exit", True)
        pj.link(REMOTE)
        exit_msg = await pj.receive(timeout=0)
        pj.process_flag("trap_exit", False)

        async def linker() -> None:
            pj.link(REMOTE)

        _pid, lref = pj.spawn_monitor(linker)
        return (ref, down), (ref2, down2), exit_msg, await wait_down(lref)

    (ref, down), (ref2, down2), exit_msg, linker_reason = run(main)
    assert down == (DOWN, ref, PROCESS, REMOTE, NOCONNECTION)
    assert down2 == (DOWN, ref2, PROCESS, (Atom("srv"), OTHER), NOCONNECTION)
    assert exit_msg == (EXIT, REMOTE, NOCONNECTION)
    assert linker_reason == NOCONNECTION


def test_local_link_to_remote_and_death_sends_exit() -> None:
    async def linked(report: Pid) -> None:
        pj.link(REMOTE)
        pj.link(REMOTE)  # one link per pair
        pj.send(report, "linked")
        await pj.receive(lambda m: m == "die")
        raise pj.Exit("remote_should_know")

    async def main() -> Any:
        _rt, dist = _distributed()
        pid, ref = pj.spawn_monitor(linked, pj.self())
        await pj.receive(lambda m: m == "linked")
        assert pj.process_info(pid)["links"] == [REMOTE]  # type: ignore[index]
        pj.send(pid, "die")
        await wait_down(ref)
        return pid, list(dist.calls)

    pid, calls = run(main)
    assert calls == [("link", pid, REMOTE), ("exit", pid, REMOTE, Atom("remote_should_know"), True)]


def test_unlink_remote_and_exit2_to_remote() -> None:
    async def main() -> Any:
        _rt, dist = _distributed()
        me = pj.self()
        pj.link(REMOTE)
        pj.unlink(REMOTE)
        pj.unlink(REMOTE)  # no link: nothing sent
        pj.exit(REMOTE, "bye")
        return me, list(dist.calls)

    me, calls = run(main)
    assert calls == [("link", me, REMOTE), ("unlink", me, REMOTE), ("exit", me, REMOTE, Atom("bye"), False)]


def test_incoming_link_and_exit_signals() -> None:
    async def main() -> Any:
        rt, dist = _distributed()
        a = pj.spawn(forever)
        b = pj.spawn(forever)
        ra, rb = pj.monitor(a), pj.monitor(b)
        rt.link_remote(a, REMOTE)
        assert pj.process_info(a)["links"] == [REMOTE]  # type: ignore[index]
        rt.exit_signal(REMOTE2, a, Atom("unlinked_sender"), link=True)  # no such link: ignored
        await trio.testing.wait_all_tasks_blocked()
        assert pj.is_alive(a)
        rt.exit_signal(REMOTE, a, Atom("normal"), link=True)  # normal via link: ignored, link removed
        assert pj.is_alive(a) and pj.process_info(a)["links"] == []  # type: ignore[index]
        rt.link_remote(a, REMOTE)
        rt.unlink_remote(a, REMOTE)
        rt.exit_signal(REMOTE, a, Atom("boom"), link=True)  # unlinked: ignored
        assert pj.is_alive(a)
        rt.link_remote(a, REMOTE)
        rt.exit_signal(REMOTE, a, Atom("boom"), link=True)
        rt.exit_signal(REMOTE, b, Atom("kill"), link=False)  # EXIT2 kill: untrappable
        reasons = await wait_down(ra), await wait_down(rb)
        dead = a
        rt.link_remote(dead, REMOTE2)  # link to a dead process: noproc back
        return reasons, dead, list(dist.calls)

    reasons, dead, calls = run(main)
    assert reasons == (Atom("boom"), KILLED)
    assert calls == [("exit", dead, REMOTE2, NOPROC, True)]


def test_incoming_exit2_to_trapping_process() -> None:
    async def main() -> Any:
        rt, _ = _distributed()
        pj.process_flag("trap_exit", True)
        rt.exit_signal(REMOTE, pj.self(), Atom("please_stop"), link=False)
        return await pj.receive(timeout=0)

    assert run(main) == (EXIT, REMOTE, Atom("please_stop"))


def test_local_monitor_of_remote() -> None:
    async def main() -> Any:
        rt, dist = _distributed()
        me = pj.self()
        r1 = pj.monitor(REMOTE)
        r2 = pj.monitor(("srv", OTHER))
        r3 = pj.monitor(REMOTE2)
        pj.demonitor(r3)
        assert sorted(map(repr, pj.process_info(me)["monitors"])) == sorted(  # type: ignore[index]
            [repr(REMOTE), repr((Atom("srv"), OTHER))]
        )
        # the node layer delivers the DOWN when the remote dies
        rt.monitor_down(me, r1, REMOTE, Atom("gone"))
        down = await pj.receive(timeout=0)
        monitors_after = pj.process_info(me)["monitors"]  # type: ignore[index]
        # a late notice for a monitor already removed by demonitor is dropped, as in Erlang
        rt.monitor_down(me, r3, REMOTE2, Atom("gone"))
        rt.monitor_down(me, r1, REMOTE, Atom("again"))
        late = await pj.receive(timeout=0) if pj.process_info(me)["message_queue_len"] else None  # type: ignore[index]
        return me, (r1, r2, r3), down, monitors_after, late, list(dist.calls)

    me, (r1, r2, r3), down, monitors_after, late, calls = run(main)
    assert down == (DOWN, r1, PROCESS, REMOTE, Atom("gone"))
    assert late is None
    assert monitors_after == [(Atom("srv"), OTHER)]
    assert calls == [
        ("monitor", me, REMOTE, r1),
        ("monitor", me, (Atom("srv"), OTHER), r2),
        ("monitor", me, REMOTE2, r3),
        ("demonitor", me, REMOTE2, r3),
    ]


def test_watcher_death_demonitors_remote_targets() -> None:
    async def watcher(report: Pid) -> None:
        pj.monitor(REMOTE)
        pj.send(report, "ok")

    async def main() -> Any:
        _rt, dist = _distributed()
        pid, ref = pj.spawn_monitor(watcher, pj.self())
        await pj.receive(lambda m: m == "ok")
        await wait_down(ref)
        return pid, list(dist.calls)

    pid, calls = run(main)
    assert [c[0] for c in calls] == ["monitor", "demonitor"] and calls[1][1:3] == (pid, REMOTE)


def test_remote_monitors_of_local_processes() -> None:
    async def main() -> Any:
        rt, dist = _distributed()
        a = pj.spawn(_wait_then_exit, "a_reason")
        b = pj.spawn(_wait_then_exit, "b_reason")
        pj.register("named", b)
        refs = [Reference(OTHER, 7, (i, 0, 0)) for i in range(5)]
        rt.monitor_remote(REMOTE, a, refs[0])
        rt.monitor_remote(REMOTE, Atom("named"), refs[1])
        rt.monitor_remote(REMOTE, a, refs[2])
        rt.demonitor_remote(REMOTE, a, refs[2])
        rt.monitor_remote(REMOTE, Atom("absent"), refs[3])
        rt.monitor_remote(REMOTE, Pid(NODE, 99_999, 0, 3), refs[4])
        assert pj.process_info(a)["monitored_by"] == [REMOTE]  # type: ignore[index]
        ra, rb = pj.monitor(a), pj.monitor(b)
        pj.send(a, "go")
        pj.send(b, "go")
        await wait_down(ra)
        await wait_down(rb)
        return a, refs, list(dist.calls)

    a, refs, calls = run(main)
    assert calls[:2] == [
        ("monitor_exit", Atom("absent"), REMOTE, refs[3], NOPROC),
        ("monitor_exit", Pid(NODE, 99_999, 0, 3), REMOTE, refs[4], NOPROC),
    ]
    # a and b die in whichever order Trio runs them
    assert sorted(calls[2:], key=repr) == sorted(
        [
            ("monitor_exit", a, REMOTE, refs[0], Atom("a_reason")),
            ("monitor_exit", Atom("named"), REMOTE, refs[1], Atom("b_reason")),
        ],
        key=repr,
    )


async def _wait_then_exit(reason: str) -> None:
    await pj.receive(lambda m: m == "go")
    raise pj.Exit(reason)


def test_node_down() -> None:
    async def main() -> Any:
        rt, dist = _distributed()
        me = pj.self()
        pj.process_flag("trap_exit", True)
        pj.link(REMOTE)
        ref = pj.monitor(REMOTE2)
        other_node_ref = pj.monitor(Pid("third@host", 1, 0, 1))
        victim = pj.spawn(forever)
        vref = pj.monitor(victim)
        rt.link_remote(victim, REMOTE)
        watched = pj.spawn(_wait_then_exit, "late")
        wref = pj.monitor(watched)
        rt.monitor_remote(REMOTE, watched, Reference(OTHER, 7, (9, 9, 9)))
        dist.calls.clear()
        rt.node_down(OTHER)
        exit_msg = await pj.receive((EXIT, Pid, Atom))
        down = await pj.receive(lambda m: m[0] == DOWN and m[1] == ref)
        victim_reason = await wait_down(vref)
        pj.send(watched, "go")
        await wait_down(wref)
        info = pj.process_info(me)
        return (me, ref, other_node_ref), exit_msg, down, victim_reason, info, list(dist.calls)

    (_me, ref, _other_ref), exit_msg, down, victim_reason, info, calls = run(main)
    assert exit_msg == (EXIT, REMOTE, NOCONNECTION)
    assert down == (DOWN, ref, PROCESS, REMOTE2, NOCONNECTION)
    assert victim_reason == NOCONNECTION
    assert info["links"] == [] and info["monitors"] == [Pid("third@host", 1, 0, 1)]  # type: ignore[index]
    assert calls == []  # the watched process's remote watcher was dropped: no monitor_exit
