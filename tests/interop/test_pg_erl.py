"""``pj.pg`` with real OTP ``erl`` nodes running ``pg`` (private EPMD): Python members seen by
``pg:get_members``, Erlang members seen by ``pj.pg.get_members``, leave, exit and nodedown both ways,
the monitor notifications of both sides, a non-default scope, OTP's nolocal rule on both sides, and
the ``pyexample:pg_members`` rpc of ``examples/interop_node.py``."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import philipjose as pj
from philipjose import Atom, Pid
from tests.node.pg_support import JOIN, LEAVE, spawn_member, wait_members
from tests.node.support import LocalNode, unique
from tests.tools import require

from .dist_support import COOKIE, Peer, private_epmd, python_node, start_peer

pytestmark = pytest.mark.interop

AGENT_SOURCE = Path(__file__).parent / "erl" / "pj_pg.erl"
PG = Atom("pg")
OTHER = Atom("other")
PYECHO = Atom("pyecho")
OK = Atom("ok")
_tags = itertools.count()


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("beam")
    subprocess.run([require("erlc"), "-o", str(out), str(AGENT_SOURCE)], check=True)
    return out


@asynccontextmanager
async def erl_pg(beam_dir: Path, epmd: int, py: LocalNode, scopes: str = "pg,other") -> AsyncIterator[Peer]:
    """``erl`` running the pj_pg agent with ``scopes`` started, connected to ``py``."""
    name = unique("erlpg")
    argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam_dir)]
    argv += ["-run", "pj_pg", "main", py.name, scopes]
    async with start_peer(argv, epmd, name) as peer:
        await peer.line("READY")
        yield peer


async def erl_do(node: str, command: Any) -> Any:
    """Run ``command`` in the agent on ``node`` and return its answer."""
    tag = next(_tags)
    pj.send(("pgagent", node), (pj.self(), tag, command))
    answer = await pj.receive(match=lambda m: type(m) is tuple and len(m) == 2 and m[0] == tag, timeout=30)
    return answer[1]


def echo_pid() -> Pid:
    pid = pj.whereis("echo")
    assert pid is not None
    return pid


async def test_members_both_ways_and_the_example_contract(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py, erl_pg(beam_dir, epmd, py) as erl:

        async def go() -> None:
            echo = echo_pid()
            # The example's echo joined pyecho at start: erl's pg sees it.
            assert await erl_do(erl.name, (Atom("await_members"), PG, PYECHO, [echo])) == OK
            assert await erl_do(erl.name, (Atom("members"), PG, PYECHO)) == [echo]
            assert await erl_do(erl.name, (Atom("local_members"), PG, PYECHO)) == []
            # An Erlang member is seen by Python, locally and through pyexample:pg_members.
            e1 = await erl_do(erl.name, (Atom("spawn_member"), PG, Atom("erlgrp")))
            assert type(e1) is Pid and e1.node == Atom(erl.name)
            assert await wait_members(Atom("erlgrp"), [e1]) == [e1]
            assert pj.pg.get_local_members(Atom("erlgrp")) == []
            assert sorted(pj.pg.which_groups()) == [Atom("erlgrp"), PYECHO]
            rpc = (Atom("rpc"), Atom(py.name), Atom("pyexample"), Atom("pg_members"))
            assert await erl_do(erl.name, (*rpc, [Atom("erlgrp")])) == [e1]
            assert await erl_do(erl.name, (*rpc, [PYECHO])) == [echo]
            # One group with members on both nodes: both sides see both.
            e2 = await erl_do(erl.name, (Atom("spawn_member"), PG, Atom("mixed")))
            p1 = spawn_member(Atom("mixed"))
            both = sorted([e2, p1], key=repr)
            assert await erl_do(erl.name, (Atom("await_members"), PG, Atom("mixed"), both)) == OK
            assert sorted(await wait_members(Atom("mixed"), both), key=repr) == both
            assert await erl_do(erl.name, (Atom("which_groups"), PG)) == sorted(
                [Atom("erlgrp"), Atom("mixed"), PYECHO]
            )

        await py.run(go)


async def test_leave_exit_and_nodedown_both_ways(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py, erl_pg(beam_dir, epmd, py) as erl:
        g = Atom("g")

        async def go() -> None:
            p1, p2 = spawn_member(g), spawn_member(g)
            e1 = await erl_do(erl.name, (Atom("spawn_member"), PG, g))
            e2 = await erl_do(erl.name, (Atom("spawn_member"), PG, g))
            everyone = [p1, p2, e1, e2]
            assert await erl_do(erl.name, (Atom("await_members"), PG, g, everyone)) == OK
            await wait_members(g, everyone)
            # Python leaves, erl sees it; erl's leave returns not_joined for a non-member, as ours.
            assert pj.pg.leave(g, p1) and not pj.pg.leave(g, p1)
            assert await erl_do(erl.name, (Atom("await_members"), PG, g, [p2, e1, e2])) == OK
            # A Python member exits: erl sees it leave.
            pj.exit(p2, "kill")
            assert await erl_do(erl.name, (Atom("await_members"), PG, g, [e1, e2])) == OK
            # Erlang leaves, then an Erlang member exits: Python sees both.
            assert await erl_do(erl.name, (Atom("leave"), PG, g, e1)) == OK
            assert await erl_do(erl.name, (Atom("leave"), PG, g, e1)) == Atom("not_joined")
            await wait_members(g, [e2])
            assert await erl_do(erl.name, (Atom("stop_member"), e2, Atom("bye"))) == OK
            assert await wait_members(g, []) == []
            # nodedown: Python disconnects; each side loses the other's members, and the next
            # connection brings them back (erl's notices are forwarded to us in order).
            p3 = spawn_member(g)
            e3 = await erl_do(erl.name, (Atom("spawn_member"), PG, g))
            assert set(await erl_do(erl.name, (Atom("subscribe"), PG, g, pj.self()))) == {p3, e3}
            await wait_members(g, [p3, e3])
            ref, _ = pj.pg.monitor(g)
            assert pj.node.disconnect(erl.name)
            notice = await pj.receive(match=lambda m: type(m) is tuple and m[0] == ref, timeout=20)
            assert notice == (ref, LEAVE, g, [e3])
            assert pj.pg.get_members(g) == [p3]
            # erl's forwarder reconnects to tell us what it saw: our members left, then came back.
            seen = [
                await pj.receive(match=lambda m: type(m) is tuple and m[0] == Atom("pg_notice"), timeout=20)
            ]
            seen.append(
                await pj.receive(match=lambda m: type(m) is tuple and m[0] == Atom("pg_notice"), timeout=20)
            )
            assert seen == [(Atom("pg_notice"), LEAVE, g, [p3]), (Atom("pg_notice"), JOIN, g, [p3])]
            notice = await pj.receive(match=lambda m: type(m) is tuple and m[0] == ref, timeout=20)
            assert notice == (ref, JOIN, g, [e3])
            pj.pg.demonitor(ref)

        await py.run(go)

        async def erl_dies() -> list[Pid]:
            e = await erl_do(erl.name, (Atom("spawn_member"), PG, Atom("last")))
            await wait_members(Atom("last"), [e])
            erl.kill()
            return await wait_members(Atom("last"), [])

        assert await py.run(erl_dies) == []


async def test_monitor_notifications_reach_both_sides(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py, erl_pg(beam_dir, epmd, py) as erl:
        w = Atom("watched")

        async def go() -> None:
            assert await erl_do(erl.name, (Atom("subscribe"), PG, w, pj.self())) == []
            ref, members = pj.pg.monitor(w)
            sref, scope = pj.pg.monitor_scope()
            assert members == [] and scope == {PYECHO: [echo_pid()]}
            p = spawn_member(w)
            assert await pj.receive(
                match=lambda m: type(m) is tuple and m[0] == Atom("pg_notice"), timeout=20
            ) == (
                Atom("pg_notice"),
                JOIN,
                w,
                [p],
            )
            e = await erl_do(erl.name, (Atom("spawn_member"), PG, w))
            got = [
                await pj.receive(match=lambda m: type(m) is tuple and m[0] in (ref, sref), timeout=20)
                for _ in range(4)
            ]
            assert sorted(got, key=repr) == sorted(
                [(ref, JOIN, w, [p]), (sref, JOIN, w, [p]), (ref, JOIN, w, [e]), (sref, JOIN, w, [e])],
                key=repr,
            )
            assert await erl_do(erl.name, (Atom("stop_member"), e, Atom("normal"))) == OK
            got = [
                await pj.receive(match=lambda m: type(m) is tuple and m[0] in (ref, sref), timeout=20)
                for _ in range(2)
            ]
            assert sorted(got, key=repr) == sorted([(ref, LEAVE, w, [e]), (sref, LEAVE, w, [e])], key=repr)
            assert pj.pg.demonitor(ref) and pj.pg.demonitor(sref)

        await py.run(go)


async def test_non_default_scope_and_the_nolocal_rule(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py, erl_pg(beam_dir, epmd, py) as erl:
        g = Atom("g")

        async def go() -> None:
            p = spawn_member(g, scope="other")
            assert await erl_do(erl.name, (Atom("await_members"), OTHER, g, [p])) == OK
            assert await erl_do(erl.name, (Atom("members"), PG, g)) == []
            e = await erl_do(erl.name, (Atom("spawn_member"), OTHER, g))
            assert sorted(await wait_members(g, [p, e], scope="other"), key=repr) == sorted([p, e], key=repr)
            assert pj.pg.get_members(g) == []
            # OTP's rule on both sides: a process joins only through its own node's scope.
            refused = await erl_do(erl.name, (Atom("join"), PG, g, p))
            assert (
                type(refused) is tuple
                and refused[0] == Atom("EXIT")
                and refused[1][0] == (Atom("nolocal"), p)
            )
            with pytest.raises(pj.pg.NotLocalError) as info:
                pj.pg.join(g, e)
            assert info.value.pid == e

        await py.run(go)


async def test_an_erlang_scope_started_after_connecting_discovers_python(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py, erl_pg(beam_dir, epmd, py) as erl:
        late, g = Atom("late"), Atom("g")

        async def go() -> None:
            p = spawn_member(g, scope="late")  # our scope 'late' finds no 'late' on erl yet
            assert Atom(erl.name) in pj.node.nodes()  # a visible connection: erl's init discovers us
            assert type(await erl_do(erl.name, (Atom("start_scope"), late))) is Pid
            assert await erl_do(erl.name, (Atom("await_members"), late, g, [p])) == OK
            e = await erl_do(erl.name, (Atom("spawn_member"), late, g))
            assert set(await wait_members(g, [p, e], scope="late")) == {p, e}

        await py.run(go)
