"""rpc between two philipjose nodes in one Trio run (no EPMD, no Erlang): call, cast, spawn with
links and monitors, errors, undef, timeouts that cancel the remote work, the legacy rex server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid, rpc
from philipjose.node import control as c
from tests.node.support import LocalNode, local_nodes

MOD = "pytest_rpc"
DOWN, EXIT = Atom("DOWN"), Atom("EXIT")
seen: list[Any] = []
_news: list[trio.Event] = []


def note(item: Any) -> None:
    """Record what the served side did, and wake a test waiting in :func:`wait_seen`."""
    seen.append(item)
    for event in _news:
        event.set()


async def wait_seen(count: int) -> None:
    with trio.fail_after(10):
        while len(seen) < count:
            event = trio.Event()
            _news.append(event)
            await event.wait()
            _news.remove(event)


async def slow(tag: Any) -> None:
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        note(("cancelled", tag))
        raise


async def announced_slow(tag: Any) -> None:
    note(("started", tag))
    await slow(tag)


async def wait_message() -> Atom:
    msg = await pj.receive()
    return Atom("got") if msg is not None else Atom("none")


def boom(text: str) -> None:
    raise KeyError(text)


def unencodable() -> object:
    return object()


@pytest.fixture(autouse=True)
def exposed() -> Any:
    rpc.expose(
        MOD,
        {
            "add": lambda a, b: a + b,
            "slow": slow,
            "announced_slow": announced_slow,
            "boom": boom,
            "throw": lambda v: (_ for _ in ()).throw(rpc.Throw(v)),
            "exit": lambda r: (_ for _ in ()).throw(pj.Exit(r)),
            "unencodable": unencodable,
            "wait_message": wait_message,
            "record": note,
        },
    )
    seen.clear()
    yield
    rpc.unexpose(MOD)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[LocalNode, LocalNode]]:
    async with local_nodes(2) as nodes:
        yield nodes[0], nodes[1]


async def test_call_returns_values_and_raises_remote_errors(pair: tuple[LocalNode, LocalNode]) -> None:
    a, b = pair

    async def go() -> list[Any]:
        out: list[Any] = [await rpc.call(b.name, MOD, "add", [2, 3], timeout=10)]
        for fn, args in [
            ("boom", ["k"]),
            ("throw", [7]),
            ("exit", [Atom("bye")]),
            ("nosuch", []),
            ("add", [1]),
        ]:
            try:
                await rpc.call(b.name, MOD, fn, args, timeout=10)
            except rpc.RemoteError as exc:
                reason = exc.reason if fn != "boom" else exc.reason[:3]
                out.append((str(exc.kind), reason, len(exc.stacktrace)))
        try:
            await rpc.call(b.name, MOD, "unencodable", [], timeout=10)
        except rpc.RemoteError as exc:
            out.append(exc.reason[1])
        return out

    out = await a.run(go)
    assert out[0] == 5
    assert out[1] == ("error", (Atom("python_exception"), b"KeyError", b"b'k'"), 1)
    assert out[2] == ("throw", 7, 0)
    assert out[3] == ("exit", Atom("bye"), 0)
    assert out[4] == ("error", Atom("undef"), 1)  # [{pytest_rpc, nosuch, [], []}]
    assert out[5] == ("error", Atom("undef"), 1)  # add/1 is not exposed: arity counts
    assert out[6].endswith(b"EncodeError")


async def test_timeout_kills_the_remote_process_and_cancels_the_python_work(
    pair: tuple[LocalNode, LocalNode],
) -> None:
    a, b = pair

    async def go() -> Pid | None:
        with pytest.raises(rpc.RpcTimeout) as info:
            await rpc.call(b.name, MOD, "slow", ["t1"], timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        pid = info.value.pid
        assert pid is not None
        ref = pj.monitor(pid)  # the process is dead (or dies now): DOWN, no leftover DOWN of the call
        _, _, _, _, reason = await pj.receive(match=(DOWN, ref, Atom("process"), pid, pj.ANY))
        assert reason in (Atom("noproc"), Atom("killed"))
        with pytest.raises(TimeoutError):  # the call's own monitor was dropped: no DOWN for it
            await pj.receive(timeout=0)
        return pid

    pid = await a.run(go)
    await wait_seen(1)
    assert seen == [("cancelled", b"t1")]
    assert b.dist is not None and pid is not None and not b.dist.rt.lookup(pid)


async def test_cancelling_the_caller_kills_the_remote_work(pair: tuple[LocalNode, LocalNode]) -> None:
    a, b = pair

    async def go() -> None:
        with trio.move_on_after(0.2):
            await rpc.call(b.name, MOD, "slow", ["t2"])
        # the kill travels on the same connection as the next call: once it answered, it was seen
        assert await rpc.call(b.name, MOD, "add", [1, 1], timeout=10) == 2

    await a.run(go)
    await wait_seen(1)
    assert seen == [("cancelled", b"t2")]


async def test_cast_runs_and_forgets(pair: tuple[LocalNode, LocalNode]) -> None:
    a, b = pair

    async def go() -> None:
        rpc.cast(b.name, MOD, "record", ["hello"])
        rpc.cast(b.name, MOD, "nosuch", [])  # refused remotely, nothing comes back
        assert await rpc.call(b.name, MOD, "add", [1, 1], timeout=10) == 2

    await a.run(go)
    await wait_seen(1)
    assert seen == [b"hello"]


async def test_spawn_with_monitor_and_link(pair: tuple[LocalNode, LocalNode]) -> None:
    a, b = pair

    async def go() -> list[Any]:
        out: list[Any] = []
        pid, ref = await pj.node.spawn(b.name, MOD, "wait_message", [], monitor=True)
        assert pid.node == Atom(b.name)
        pj.send(pid, "go")
        msg = await pj.receive(match=(DOWN, ref, Atom("process"), pid, pj.ANY))
        out.append(msg[4])
        pid2, ref2 = await pj.node.spawn(b.name, MOD, "nosuch", [1], monitor=True)
        msg = await pj.receive(match=(DOWN, ref2, Atom("process"), pid2, pj.ANY))
        out.append(msg[4])
        pj.process_flag("trap_exit", True)
        pid3 = await pj.node.spawn(b.name, MOD, "boom", ["x"], link=True)
        msg = await pj.receive(match=(EXIT, pid3, pj.ANY))
        out.append(msg[2][:2])
        pid4, ref4 = await pj.node.spawn(b.name, MOD, "wait_message", [], monitor=True)
        pj.demonitor(ref4)
        pj.exit(pid4, "kill")
        ref5 = pj.monitor(pid4)
        msg = await pj.receive(match=(DOWN, ref5, Atom("process"), pid4, pj.ANY))
        out.append(msg[4])
        with pytest.raises(TimeoutError):  # demonitored before the kill: no DOWN for ref4
            await pj.receive(match=(DOWN, ref4, pj.ANY, pj.ANY, pj.ANY), timeout=0)
        return out

    out = await a.run(go)
    assert out[0] == Atom("normal")
    assert out[1] == (Atom("undef"), [(Atom(MOD), Atom("nosuch"), [1], [])])
    assert out[2] == (Atom("python_exception"), b"KeyError")
    assert out[3] in (Atom("killed"), Atom("noproc"))


async def test_legacy_rex_calls(pair: tuple[LocalNode, LocalNode]) -> None:
    a, b = pair
    call, user = Atom("call"), Atom("user")

    async def go() -> list[Any]:
        rex = ("rex", b.name)
        out = [await pj.call(rex, (call, Atom(MOD), Atom("add"), [1, 2], user))]
        out.append(await pj.call(rex, (call, Atom(MOD), Atom("throw"), [9], user)))
        out.append(await pj.call(rex, (call, Atom("os"), Atom("system"), [b"ls"], user)))
        out.append(await pj.call(rex, (call, Atom(MOD), Atom("add"), "not a list", user)))
        pj.send(rex, (pj.self(), (call, Atom(MOD), Atom("add"), [5, 5], user)))
        out.append(await pj.receive(match=(Atom("rex"), pj.ANY)))
        return out

    out = await a.run(go)
    badrpc, exit_ = Atom("badrpc"), Atom("EXIT")
    assert out[0] == 3
    assert out[1] == 9
    assert out[2] == (badrpc, (exit_, (Atom("undef"), [(Atom("os"), Atom("system"), [b"ls"], [])])))
    assert out[3][1][1][0] == Atom("badarg")
    assert out[3][1][1][1][0][:3] == (Atom("erlang"), Atom("apply"), [Atom(MOD), Atom("add"), b"not a list"])
    assert out[4] == (Atom("rex"), 10)


async def test_calls_to_this_node_and_to_an_unreachable_one(pair: tuple[LocalNode, LocalNode]) -> None:
    a, _ = pair

    async def go() -> list[Any]:
        out: list[Any] = [await rpc.call(a.name, MOD, "add", [1, 2])]
        try:
            await rpc.call(a.name, MOD, "nosuch", [])
        except rpc.RemoteError as exc:
            out.append(exc.reason)
        try:
            await rpc.call("nobody@localhost", MOD, "add", [1, 2])
        except rpc.BadRpc as exc:
            out.append(exc.reason)
        try:
            await pj.node.spawn("nobody@localhost", MOD, "add", [1, 2])
        except rpc.BadRpc as exc:
            out.append(exc.reason)
        with pytest.raises(TimeoutError):  # nothing left behind in the mailbox
            await pj.receive(timeout=0)
        return out

    assert await a.run(go) == [3, Atom("undef"), Atom("noconnection"), Atom("noconnection")]


async def test_a_malformed_spawn_request_gets_badarg_and_the_node_keeps_serving(
    pair: tuple[LocalNode, LocalNode],
) -> None:
    a, b = pair

    async def go() -> list[Any]:
        node = pj.node.current()
        me = pj.self()
        req_id = node.rt.make_ref()
        bad = c.SpawnRequest(req_id, me, me, Atom(MOD), Atom("add"), 3, [], [1])  # arity 3, one argument
        node.send_control(Atom(b.name), bad)
        reply = await pj.receive(match=(Atom("spawn_reply"), req_id, pj.ANY, pj.ANY), timeout=10)
        return [reply[2:], await rpc.call(b.name, MOD, "add", [1, 1], timeout=10)]

    assert await a.run(go) == [(Atom("error"), Atom("badarg")), 2]


async def test_losing_the_callers_connection_cancels_its_calls(pair: tuple[LocalNode, LocalNode]) -> None:
    a, b = pair

    async def go() -> Any:
        async def caller() -> None:
            with pytest.raises(rpc.BadRpc) as info:
                await rpc.call(b.name, MOD, "announced_slow", ["t3"])
            assert info.value.reason == Atom("noconnection")
            with pytest.raises(TimeoutError):  # neither the DOWN nor the nodedown is left behind
                await pj.receive(timeout=0)

        pid, ref = pj.spawn_monitor(caller)
        await wait_seen(1)
        assert pj.node.disconnect(b.name)
        return (await pj.receive(match=(DOWN, ref, Atom("process"), pid, pj.ANY)))[4]

    assert await a.run(go) == Atom("normal")
    await wait_seen(2)
    assert seen == [("started", b"t3"), ("cancelled", b"t3")]
