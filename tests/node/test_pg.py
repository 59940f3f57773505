"""``pj.pg`` between philipjose nodes (one Trio run, loopback, no EPMD), and on a single node:
membership both ways, leave, exit, nodedown, scopes, monitors, the nolocal rule, bad messages."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing

import philipjose as pj
from philipjose import Atom, Pid
from philipjose.actors import BadArg
from philipjose.term import EncodeError

from .pg_support import LEAVE, STOP, member, spawn_member, wait_members
from .support import local_nodes

G = Atom("grp")


async def test_members_both_ways_leave_exit_and_nodedown() -> None:
    async with local_nodes(2) as (a, b):

        async def on_a_first() -> Pid:
            return spawn_member(G)

        m_a = await a.run(on_a_first)

        async def on_b_first() -> tuple[list[Pid], Pid]:
            assert await pj.node.ping(a.name)
            seen = await wait_members(G, [m_a])
            return seen, spawn_member(G)

        seen, m_b = await b.run(on_b_first)
        assert seen == [m_a]

        async def on_a_second() -> tuple[list[Pid], list[Pid], list[Any]]:
            members = await wait_members(G, [m_a, m_b])
            return members, pj.pg.get_local_members(G), pj.pg.which_groups()

        members, local, groups = await a.run(on_a_second)
        assert Counter(members) == Counter([m_a, m_b]) and local == [m_a] and groups == [G]

        async def stop_b_member() -> None:  # a member that exits leaves its groups
            pj.send(m_b, STOP)

        await b.run(stop_b_member)

        async def a_sees_exit() -> list[Pid]:
            return await wait_members(G, [m_a])

        assert await a.run(a_sees_exit) == [m_a]

        async def a_leaves() -> list[bool]:
            return [pj.pg.leave(G, m_a), pj.pg.leave(G, m_a)]

        assert await a.run(a_leaves) == [True, False]  # the second is OTP's not_joined

        async def b_waits_for(expected: list[Pid]) -> list[Pid]:
            return await wait_members(G, expected)

        assert await b.run(b_waits_for, []) == []

        async def a_joins_again() -> Pid:
            return spawn_member(G)

        m_a2 = await a.run(a_joins_again)
        assert await b.run(b_waits_for, [m_a2]) == [m_a2]

        async def b_member_then_disconnect() -> tuple[Pid, list[Pid]]:
            pid = spawn_member(G)
            return pid, pj.pg.get_local_members(G)

        m_b2, b_local = await b.run(b_member_then_disconnect)
        assert b_local == [m_b2]

        async def a_waits_for(expected: list[Pid]) -> list[Pid]:
            return await wait_members(G, expected)

        await a.run(a_waits_for, [m_a2, m_b2])

        async def b_disconnects() -> list[Pid]:
            assert pj.node.disconnect(a.name)
            return await wait_members(G, [m_b2])  # nodedown: a's members are gone from b's view

        assert await b.run(b_disconnects) == [m_b2]
        assert await a.run(a_waits_for, [m_a2]) == [m_a2]  # and b's from a's

        async def b_reconnects() -> list[Pid]:
            assert await pj.node.ping(a.name)  # the new connection's discovery brings them back
            return await wait_members(G, [m_a2, m_b2])

        assert Counter(await b.run(b_reconnects)) == Counter([m_a2, m_b2])


async def test_remote_pids_cannot_join_or_leave_locally() -> None:
    async with local_nodes(2) as (a, b):

        async def make() -> Pid:
            return pj.spawn(member)

        remote = await a.run(make)

        async def try_join() -> list[str]:
            out = []
            for call in (pj.pg.join, pj.pg.leave):
                for arg in (remote, [pj.self(), remote], Atom("notapid")):
                    with pytest.raises(pj.pg.NotLocalError) as info:
                        call(G, arg)  # type: ignore[operator]
                    assert isinstance(info.value, BadArg) and isinstance(info.value, ValueError)
                    out.append(repr(info.value.pid))
            assert pj.pg.get_members(G) == []  # nothing joined, not even the local pid of the list
            return out

        reasons = await b.run(try_join)
        assert reasons[0] == repr(remote) and reasons[1] == repr(remote)


async def test_scopes_are_independent_and_start_on_demand() -> None:
    async with local_nodes(2) as (a, b):

        async def on_a() -> tuple[Pid, Pid]:
            return spawn_member(G, scope="other"), spawn_member(G)

        in_other, in_default = await a.run(on_a)

        async def on_b() -> tuple[list[Pid], list[Pid], bool]:
            assert await pj.node.ping(a.name)
            default = await wait_members(G, [in_default])
            other = await wait_members(G, [in_other], scope="other")  # started now: it discovers a
            return default, other, pj.whereis("other") == pj.pg.start("other")

        default, other, registered = await b.run(on_b)
        assert default == [in_default] and other == [in_other] and registered


def test_join_twice_leave_once_and_exit_leaves_all() -> None:
    async def main() -> list[object]:
        pid = pj.spawn(member)
        pj.pg.join(G, [pid, pid])
        pj.pg.join(Atom("other"), pid)
        out: list[object] = [pj.pg.get_members(G), sorted(pj.pg.which_groups())]
        out.append(pj.pg.leave(G, pid))
        out.append(pj.pg.get_members(G))
        ref, scope = pj.pg.monitor_scope()
        out.append(scope)
        pj.exit(pid, "kill")
        notices = [await pj.receive(timeout=10) for _ in range(2)]
        out.append(sorted((n[1], n[2], n[3] == [pid], n[0] == ref) for n in notices))
        out.append((pj.pg.get_members(G), pj.pg.which_groups()))
        out.append([pid])
        return out

    out = pj.run(main)
    pid = out[-1][0]  # type: ignore[index]
    assert out[:-1] == [
        [pid, pid],
        [Atom("grp"), Atom("other")],
        True,
        [pid],
        {G: [pid], Atom("other"): [pid]},
        [(LEAVE, Atom("grp"), True, True), (LEAVE, Atom("other"), True, True)],
        ([], []),
    ]


def test_monitor_notifications_and_demonitor_flush() -> None:
    async def main() -> list[object]:
        ref, members = pj.pg.monitor(G)
        sref, everything = pj.pg.monitor_scope()
        out: list[object] = [members, everything]
        pid = spawn_member(G)
        spawn_member(Atom("elsewhere"))
        got = [await pj.receive(timeout=10) for _ in range(3)]
        out.append(sorted((m[0] == ref, m[0] == sref, m[1], m[2], m[3] == [m[3][0]]) for m in got))
        pj.pg.leave(G, pid)
        pj.pg.join(G, [pid, pid])  # queued: two notices for each subscription
        out.append(pj.process_info(pj.self())["message_queue_len"])  # type: ignore[index]
        out.append(pj.pg.demonitor(ref))
        out.append(pj.process_info(pj.self())["message_queue_len"])  # type: ignore[index]
        out.append(pj.pg.demonitor(ref))  # no longer a subscription
        out.append(pj.pg.demonitor(sref))
        pj.pg.leave(G, pid)
        out.append(pj.process_info(pj.self())["message_queue_len"])  # type: ignore[index]
        return out

    assert pj.run(main) == [
        [],
        {},
        [
            (False, True, Atom("join"), Atom("elsewhere"), True),
            (False, True, Atom("join"), G, True),
            (True, False, Atom("join"), G, True),
        ],
        4,
        True,
        2,
        False,
        True,
        0,
    ]


def test_a_subscriber_that_exits_is_forgotten() -> None:
    async def main() -> list[int]:
        async def subscriber() -> None:
            pj.pg.monitor(G)
            pj.pg.monitor_scope()

        _, mref = pj.spawn_monitor(subscriber)
        await pj.receive(match=lambda m: type(m) is tuple and m[:2] == (Atom("DOWN"), mref))
        state = pj.pg._get("pg").state
        before = len(state.scope_monitors) + len(state.group_monitors)
        await trio.testing.wait_all_tasks_blocked()  # the scope has handled the subscriber's DOWNs
        return [before, len(state.scope_monitors) + len(state.group_monitors) + len(state.monitored)]

    before, after = pj.run(main)
    assert after == 0 and before in (0, 1, 2)


def test_bad_messages_and_unencodable_groups(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[object]:
        pid = spawn_member(G)
        scope = pj.pg.start()
        for junk in [
            Atom("junk"),
            (Atom("join"), pid, G, Atom("notpids")),
            (Atom("discover"), Atom("notapid")),
            (Atom("$gen_cast"), (Atom("sync"), pid, Atom("notalist"))),
            (Atom("leave"), pid, [pid], Atom("notalist")),
            (Atom("$gen_call"), (pid, Atom("tag")), Atom("which_groups")),
            Atom("junk6"),
        ]:
            pj.send(scope, junk)
        out: list[object] = []
        with pytest.raises(EncodeError):
            pj.pg.join(object(), pid)
        with pytest.raises(BadArg):
            pj.pg.start(42)  # type: ignore[arg-type]
        pj.register("taken", pj.self())
        with pytest.raises(BadArg):
            pj.pg.join(G, pid, scope="taken")
        # The scope still serves after the junk: a member that exits leaves.
        ref, members = pj.pg.monitor(G)
        out.append(members == [pid])
        pj.send(pid, STOP)
        out.append(await pj.receive(timeout=10) == (ref, LEAVE, G, [pid]))
        out.append(pj.is_alive(scope))
        return out

    with caplog.at_level("WARNING", logger="philipjose.node.pg"):
        assert pj.run(main) == [True, True, True]
    ignored = [r for r in caplog.records if "does not understand" in r.getMessage()]
    assert len(ignored) == 5  # 7 junk messages: the warnings are rate limited (5 a minute)


def test_groups_are_erlang_terms() -> None:
    async def main() -> list[object]:
        pid = pj.spawn(member)
        pj.pg.join("text", pid)  # a str is the binary <<"text">>
        pj.pg.join([1, 2], pid)  # a list: comes back as List, hashable
        pj.pg.join(1, pid)
        return [
            pj.pg.get_members(b"text") == [pid],
            pj.pg.get_members(1.0),  # Erlang's 1 and 1.0 are different groups
            pj.pg.get_members(1) == [pid],
            sorted(map(repr, pj.pg.which_groups())),
        ]

    assert pj.run(main) == [True, [], True, ["1", "List([1, 2])", "b'text'"]]


def test_killed_scope_restarts_empty_on_demand() -> None:
    async def main() -> list[object]:
        pid = spawn_member(G)
        scope = pj.pg.start()
        ref = pj.monitor(scope)
        pj.exit(scope, "kill")
        await pj.receive(match=lambda m: type(m) is tuple and m[1] == ref)
        again = pj.pg.start()
        return [again != scope, pj.pg.get_members(G), pj.whereis("pg") == again, pj.is_alive(pid)]

    assert pj.run(main) == [True, [], True, True]


async def test_a_hidden_node_answers_discover_and_a_peer_that_exits_takes_its_members() -> None:
    async with local_nodes(2, hidden=True) as (a, b):

        async def on_a() -> tuple[Pid, Pid]:
            return spawn_member(G), pj.pg.start()

        m, scope_a = await a.run(on_a)
        joined, release = trio.Event(), trio.Event()
        box: list[Pid] = []

        async def fake_peer_on_b() -> None:
            # Hidden connection: no scope discovers the other (OTP's nodeup is for visible nodes),
            # but a's scope answers a discover from anyone, as OTP's does: sync, then discover back.
            assert await pj.node.ping(a.name) and pj.node.nodes("visible") == []
            me = pj.self()
            pj.send(("pg", a.name), (Atom("discover"), me))
            sync = await pj.receive(
                match=lambda x: type(x) is tuple and x[0] == Atom("$gen_cast"), timeout=10
            )
            assert sync == (Atom("$gen_cast"), (Atom("sync"), scope_a, [(G, [m])]))
            back = await pj.receive(match=lambda x: type(x) is tuple and x[0] == Atom("discover"), timeout=10)
            assert back == (Atom("discover"), scope_a)
            pj.send(scope_a, (Atom("join"), me, Atom("fake"), [me]))  # a join from a known peer
            box.append(me)
            joined.set()
            await release.wait()  # then this "peer scope" exits

        async def a_waits(expected: list[Pid]) -> list[Pid]:
            return await wait_members(Atom("fake"), expected)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.run, fake_peer_on_b)
            await joined.wait()
            assert await a.run(a_waits, box) == box
            release.set()
        assert await a.run(a_waits, []) == []  # the peer's DOWN took its members
