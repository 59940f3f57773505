"""A visible philipjose node in a cluster with two real ``erl`` nodes: ``nodes()``,
``net_kernel:monitor_nodes``, ``global:sync``, global names registered from either side and seen
everywhere, ``global:send``, locks, connect-all, and names held by Python pids going away with the
Python node. The erl nodes are driven through rpc from the Python node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, rpc
from philipjose.epmd import NODE_TYPE_HIDDEN, NODE_TYPE_NORMAL, port_please
from philipjose.term import ExportFun
from tests.node.support import LocalNode, unique
from tests.tools import require

from .dist_support import COOKIE, Peer, private_epmd, python_node, start_peer

pytestmark = pytest.mark.interop

OK = Atom("ok")
YES = Atom("yes")
UNDEFINED = Atom("undefined")


@asynccontextmanager
async def bare_erl(epmd: int, *extra: str) -> AsyncIterator[Peer]:
    """A plain ``erl`` node that prints READY and waits (driven by rpc)."""
    erl = require("erl")
    name = unique("erl")
    argv = [erl, "-noshell", "-sname", name, "-setcookie", COOKIE, *extra]
    argv += ["-eval", 'io:format("READY~n")']
    async with start_peer(argv, epmd, name) as peer:
        await peer.line("READY")
        yield peer


@asynccontextmanager
async def cluster(count: int = 2, **options: Any) -> AsyncIterator[tuple[int, LocalNode, list[Peer]]]:
    async with AsyncExitStack() as stack:
        epmd = await stack.enter_async_context(private_epmd())
        peers = [await stack.enter_async_context(bare_erl(epmd)) for _ in range(count)]
        py = await stack.enter_async_context(python_node(epmd, **options))
        yield epmd, py, peers


async def erl(node: str, m: str, f: str, args: list[Any], timeout: float = 30) -> Any:
    return await rpc.call(node, m, f, args, timeout=timeout)


async def wait_for(fn: Any, expected: Any, timeout: float = 20) -> Any:
    """Poll ``await fn()`` until it equals ``expected`` (the cluster meshes asynchronously)."""
    with trio.fail_after(timeout):
        while True:
            value = await fn()
            if value == expected:
                return value
            await trio.sleep(0.05)


async def _epmd_type(name: str, epmd: int) -> int:
    info = await port_please(name.partition("@")[0], epmd_port=epmd)
    assert info is not None
    return info.node_type


async def test_visible_node_is_in_nodes_and_monitor_nodes() -> None:
    async with cluster(1) as (epmd, py, (a,)):
        assert await _epmd_type(py.name, epmd) == NODE_TYPE_NORMAL

        async def main() -> list[Any]:
            me = Atom(py.name)
            pj.node.monitor_nodes(True)
            assert await pj.node.ping(a.name)
            up = await pj.receive(match=lambda m: type(m) is tuple and m[0] == Atom("nodeup"), timeout=10)
            out = [
                up,
                await erl(a.name, "erlang", "nodes", []),
                await erl(a.name, "erlang", "nodes", [Atom("hidden")]),
                pj.node.nodes(),
                pj.node.nodes("hidden"),
                pj.node.nodes("connected"),
                await erl(a.name, "global", "sync", []),
            ]
            assert me in out[1]
            return out

        up, erl_nodes, erl_hidden, visible, hidden, connected, synced = await py.run(main)
        assert up == (Atom("nodeup"), Atom(a.name))
        assert erl_nodes == [Atom(py.name)] and erl_hidden == []
        assert visible == [Atom(a.name)] and hidden == [] and connected == [Atom(a.name)]
        assert synced == OK


async def test_global_with_two_erl_nodes() -> None:
    async with cluster(2) as (_, py, (a, b)):

        async def main() -> dict[str, Any]:
            out: dict[str, Any] = {}
            # a and b know each other; Python joins through a only
            assert await erl(a.name, "net_kernel", "connect_node", [Atom(b.name)]) is True
            assert await erl(a.name, "global", "sync", []) == OK
            assert await pj.node.ping(a.name)
            # connect-all: global makes Python connect to b (and b to Python)
            await wait_for(_sorted_nodes, sorted([a.name, b.name]))
            out["b_nodes"] = sorted(await erl(b.name, "erlang", "nodes", []))
            for node in (a.name, b.name):
                out[f"sync_{node}"] = await erl(node, "global", "sync", [])
            out["py_sync"] = await pj.global_.sync()
            # a Python pid registered from erl
            pid1 = pj.spawn(_holder)
            out["reg_from_erl"] = await erl(a.name, "global", "register_name", [Atom("py_one"), pid1])
            out["where1"] = [
                await erl(n, "global", "whereis_name", [Atom("py_one")]) for n in (a.name, b.name)
            ]
            out["where1_py"] = pj.global_.whereis_name("py_one")
            # a Python pid registered from Python
            pid2 = pj.spawn(_holder)
            out["reg_from_py"] = await pj.global_.register_name("py_two", pid2)
            out["reg_again"] = await pj.global_.register_name("py_two", pj.spawn(_holder))
            out["where2"] = [
                await erl(n, "global", "whereis_name", [Atom("py_two")]) for n in (a.name, b.name)
            ]
            # global:send from b reaches the Python pid
            out["send"] = await erl(b.name, "global", "send", [Atom("py_two"), (Atom("ping"), pj.self())])
            out["sent_msg"] = await pj.receive(
                match=lambda m: type(m) is tuple and m[0] == Atom("pong"), timeout=10
            )
            # an erl pid registered on a is seen from Python
            erl_pid = await erl(a.name, "erlang", "whereis", [Atom("init")])
            out["reg_erl"] = await erl(a.name, "global", "register_name", [Atom("erl_init"), erl_pid])
            out["where_erl_py"] = pj.global_.whereis_name("erl_init") == erl_pid
            # a Python process dying removes its name everywhere
            pj.exit(pid1, Atom("kill"))
            out["gone1"] = await wait_for(
                lambda: erl(b.name, "global", "whereis_name", [Atom("py_one")]), UNDEFINED
            )
            await pj.global_.unregister_name("erl_init")
            out["unreg"] = await erl(b.name, "global", "whereis_name", [Atom("erl_init")])
            out["pids"] = (pid1, pid2)
            return out

        async def _sorted_nodes() -> list[str]:
            return sorted(str(n) for n in pj.node.nodes())

        out = await py.run(main, timeout=60)
        pid1, pid2 = out["pids"]
        assert out["sync_" + a.name] == OK and out["sync_" + b.name] == OK and out["py_sync"] == OK
        assert out["reg_from_erl"] == YES and out["where1"] == [pid1, pid1] and out["where1_py"] == pid1
        assert out["reg_from_py"] == YES and out["reg_again"] == Atom("no")
        assert out["where2"] == [pid2, pid2]
        assert out["send"] == pid2 and out["sent_msg"] == (Atom("pong"), pid2)
        assert out["reg_erl"] == YES and out["where_erl_py"]
        assert out["gone1"] == UNDEFINED and out["unreg"] == UNDEFINED
        assert out["b_nodes"] == sorted_atoms([a.name, py.name])


def sorted_atoms(names: list[str]) -> list[Atom]:
    return sorted(Atom(n) for n in names)


async def _holder() -> None:
    while True:
        msg = await pj.receive()
        if type(msg) is tuple and len(msg) == 2 and msg[0] == Atom("ping"):
            pj.send(msg[1], (Atom("pong"), pj.self()))


async def test_locks_across_the_cluster() -> None:
    async with cluster(1) as (_, py, (a,)):

        async def main() -> list[Any]:
            assert await pj.node.ping(a.name)
            assert await pj.global_.sync() == OK
            nodes = [Atom(a.name), Atom(py.name)]
            nodes_fun = ExportFun("erlang", "nodes", 0)
            lock = (Atom("res"), pj.self())
            held = await pj.global_.set_lock(lock, nodes)
            # erl cannot take the resource while a Python process holds it on both nodes
            blocked = await erl(a.name, "global", "trans", [(Atom("res"), Atom("erl")), nodes_fun, nodes, 0])
            erl_blocked = await erl(a.name, "global", "set_lock", [(Atom("res"), Atom("erl")), nodes, 0])
            await pj.global_.del_lock(lock, nodes)
            free = await erl(a.name, "global", "trans", [(Atom("res"), Atom("erl")), nodes_fun, nodes, 0])
            # the same requester id shares the lock (OTP's rule), another one does not
            mine = await pj.global_.trans(lock, _answer, nodes, retries=0)
            return [held, blocked, erl_blocked, free, mine]

        held, blocked, erl_blocked, free, mine = await py.run(main)
        assert held is True
        assert blocked == Atom("aborted") and erl_blocked is False
        assert free == [Atom(py.name)]
        assert mine == 42


async def _whereis(name: str) -> Any:
    return pj.global_.whereis_name(name)


async def _answer() -> int:
    return 42


async def test_names_of_a_python_node_go_away_with_it() -> None:
    async with cluster(2) as (epmd, py, (a, b)):

        async def join() -> Any:
            assert await erl(a.name, "net_kernel", "connect_node", [Atom(b.name)]) is True
            assert await pj.node.ping(a.name)
            return await pj.global_.sync()

        assert await py.run(join) == OK
        async with python_node(epmd) as py2:

            async def register() -> list[Any]:
                assert await pj.node.ping(a.name)
                assert await pj.global_.sync() == OK
                pid = pj.spawn(_holder)
                return [pid, await pj.global_.register_name(Atom("py2_name"), pid)]

            pid, answer = await py2.run(register)
            assert answer == YES

            async def seen() -> list[Any]:
                return [await erl(n, "global", "whereis_name", [Atom("py2_name")]) for n in (a.name, b.name)]

            assert await py.run(lambda: wait_for(seen, [pid, pid])) == [pid, pid]
            assert await py.run(_whereis, "py2_name") == pid
        # py2 is gone: its name too, on both erl nodes and on the other Python node

        async def gone() -> list[Any]:
            return [*(await seen()), pj.global_.whereis_name("py2_name")]

        assert await py.run(lambda: wait_for(gone, [UNDEFINED, UNDEFINED, None])) == [
            UNDEFINED,
            UNDEFINED,
            None,
        ]


async def test_malformed_global_messages_are_dropped() -> None:
    async with cluster(1) as (_, py, (a,)):

        async def main() -> list[Any]:
            assert await pj.node.ping(a.name)
            assert await pj.global_.sync() == OK
            server = (Atom("global_name_server"), Atom(py.name))
            junk: list[Any] = [
                (Atom("$gen_cast"), (Atom("new_nodes"), Atom(a.name), 1, 2, 3, 4)),
                (Atom("$gen_cast"), (Atom("resolved"), Atom(a.name), 1, 2, 3, 4, 5)),
                (Atom("$gen_cast"), (Atom("init_connect"), 7, Atom(a.name), 8)),
                (Atom("$gen_cast"), (Atom("exchange"), Atom(a.name), 1, 2, 3)),
                (Atom("lost_connection"), 1, 2, 3, 4),
                (Atom("whereis"), Atom("x"), 5),
                [1, 2, 3],
            ]
            for msg in junk:  # sent from erl, as a peer would
                await erl(a.name, "erlang", "send", [server, msg])
            pid = pj.spawn(_holder)
            return [
                await erl(a.name, "global", "register_name", [Atom("after_junk"), pid]),
                pj.global_.whereis_name("after_junk") == pid,
                await erl(a.name, "global", "sync", []),
            ]

        assert await py.run(main) == [YES, True, OK]


async def test_hidden_node_is_hidden_on_both_sides() -> None:
    async with cluster(1, hidden=True) as (epmd, py, (a,)):
        assert await _epmd_type(py.name, epmd) == NODE_TYPE_HIDDEN

        async def main() -> list[Any]:
            pj.node.monitor_nodes(True, "hidden")
            assert await pj.node.ping(a.name)
            up = await pj.receive(match=lambda m: type(m) is tuple and m[0] == Atom("nodeup"), timeout=10)
            return [
                up,
                await erl(a.name, "erlang", "nodes", []),
                await erl(a.name, "erlang", "nodes", [Atom("hidden")]),
                pj.node.nodes(),
                pj.node.nodes("hidden"),
                await erl(a.name, "global", "sync", []),  # global leaves a hidden node out
            ]

        up, erl_nodes, erl_hidden, visible, hidden, synced = await py.run(main)
        assert up == (Atom("nodeup"), Atom(a.name))
        assert erl_nodes == [] and erl_hidden == [Atom(py.name)]
        assert visible == [] and hidden == [Atom(a.name)]
        assert synced == OK
