"""Big messages between a real ``erl`` and philipjose (issue 16): a large term is coded off the event
loop (the node keeps answering pings and ticking), philipjose sends large messages as 64 KiB
fragments, 150 MB goes there and back intact, and a message over ``max_message_size`` is refused by
itself, in both directions, on a connection that stays up."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid
from tests.interop.dist_support import COOKIE, Peer, private_epmd, python_node, start_peer
from tests.node.support import LocalNode, unique
from tests.tools import require

pytestmark = pytest.mark.interop


def _full(node: LocalNode) -> str:
    assert node.dist is not None
    return str(node.dist.name)


async def _erl(epmd_port: int, code: str, *extra: str) -> Any:
    erl = require("erl")
    name = unique("big")
    argv = [erl, "-noshell", "-sname", name, "-setcookie", COOKIE, *extra, "-eval", code]
    return start_peer(argv, epmd_port, name)


async def _results(peer: Peer, timeout: float) -> dict[str, str]:
    """The ``RESULT key value`` lines up to ``DONE``."""
    results: dict[str, str] = {}
    with trio.fail_after(timeout):
        while True:
            line = await peer.line("", timeout=timeout)
            if line == "DONE":
                return results
            if line.startswith("RESULT "):
                key, _, value = line[len("RESULT ") :].partition(" ")
                results[key] = value


#: erl with ``-kernel net_ticktime 4``: a process pings the Python node every 100 ms (recording the
#: slowest answer) while ``rpc:call`` echoes a list of 10^6 tuples ``{I, a, <<"bin">>}`` through
#: ``pyexample:echo/1``; then it tells whether the connection ever went down.
LIVENESS = """
Py = 'PY_NODE',
pong = net_adm:ping(Py),
ok = net_kernel:monitor_nodes(true),
Me = self(),
Pinger = spawn(fun() ->
    Loop = fun L(Max, N) ->
        T0 = erlang:monotonic_time(millisecond),
        R = net_adm:ping(Py),
        Dt = erlang:monotonic_time(millisecond) - T0,
        case R of pang -> Me ! {pang, N}; pong -> ok end,
        receive stop -> Me ! {pings, max(Max, Dt), N + 1} after 100 -> L(max(Max, Dt), N + 1) end
    end,
    Loop(0, 0) end),
L = [{I, a, <<"bin">>} || I <- lists:seq(1, 1000000)],
T0 = erlang:monotonic_time(millisecond),
Echoed = rpc:call(Py, pyexample, echo, [L], 300000),
Took = erlang:monotonic_time(millisecond) - T0,
Pinger ! stop,
receive {pings, Max, N} -> ok end,
Down = receive {nodedown, Py} -> nodedown; {pang, _} -> pang after 0 -> up end,
io:format("RESULT intact ~p~nRESULT took_ms ~p~nRESULT worst_ping_ms ~p~nRESULT pings ~p~n"
          "RESULT connection ~p~nDONE~n", [Echoed =:= L, Took, Max, N, Down]),
halt().
"""


async def test_a_million_tuples_echo_while_the_node_answers_pings_and_ticks() -> None:
    async with private_epmd() as epmd_port, python_node(epmd_port, net_ticktime=4) as node:
        code = LIVENESS.replace("PY_NODE", _full(node))
        async with await _erl(epmd_port, code, "-kernel", "net_ticktime", "4") as peer:
            results = await _results(peer, timeout=300)
    assert results["intact"] == "true", results
    assert results["connection"] == "up", results
    assert int(results["pings"]) >= 5, results  # the echo took long enough for pings to matter
    assert int(results["worst_ping_ms"]) < 1000, results


#: 150 MB to the Python echo and back; erl compares what came back and reads its dist port's
#: recv_max: the longest packet philipjose sent it.
ROUND_TRIP = """
Py = 'PY_NODE',
pong = net_adm:ping(Py),
ok = net_kernel:monitor_nodes(true),
B = binary:copy(<<"0123456789abcdef">>, 150 * 1024 * 1024 div 16),
{echo, Py} ! {self(), {big, B}},
Back = receive {big, X} -> X after 300000 -> timeout end,
[Port] = [P || {N, P} <- erlang:system_info(dist_ctrl), N =:= Py],
{ok, [{recv_max, Max}]} = inet:getstat(Port, [recv_max]),
Down = receive {nodedown, Py} -> nodedown after 0 -> up end,
io:format("RESULT intact ~p~nRESULT size ~p~nRESULT recv_max ~p~nRESULT connection ~p~nDONE~n",
          [Back =:= B, byte_size(B), Max, Down]),
halt().
"""


async def test_150_mb_from_erl_and_back_arrives_intact_in_64_kib_fragments() -> None:
    async with private_epmd() as epmd_port, python_node(epmd_port) as node:
        code = ROUND_TRIP.replace("PY_NODE", _full(node))
        async with await _erl(epmd_port, code) as peer:
            results = await _results(peer, timeout=300)
    assert results["intact"] == "true" and int(results["size"]) == 150 * 1024 * 1024, results
    assert results["connection"] == "up", results
    assert 60_000 < int(results["recv_max"]) <= 65_536 + 64, results  # fragments, not one frame


#: erl registers ``ctl``; told ``{go, PyPid}`` it reads recv_max, waits for a 10 MB binary from
#: philipjose, reads recv_max again and answers.
RECV_MAX = """
Py = 'PY_NODE',
pong = net_adm:ping(Py),
register(ctl, self()),
io:format("READY~n"),
receive {go, From} -> ok end,
[Port] = [P || {N, P} <- erlang:system_info(dist_ctrl), N =:= Py],
{ok, [{recv_max, Before}]} = inet:getstat(Port, [recv_max]),
From ! {ready, self()},
receive {data, Bin} -> ok end,
{ok, [{recv_max, After}]} = inet:getstat(Port, [recv_max]),
From ! {recv_max, Before, After, byte_size(Bin)},
receive stop -> halt() end.
"""


async def test_erl_receives_a_10_mb_send_in_fragments_of_64_kib() -> None:
    async with private_epmd() as epmd_port, python_node(epmd_port) as node:
        code = RECV_MAX.replace("PY_NODE", _full(node))
        async with await _erl(epmd_port, code) as peer:
            await peer.line("READY")
            ctl = (Atom("ctl"), Atom(peer.name))

            async def scenario() -> tuple[Any, ...]:
                pj.send(ctl, (Atom("go"), pj.self()))
                _, erl_pid = await pj.receive(timeout=30)
                pj.send(erl_pid, (Atom("data"), bytes(10_000_000)))
                reply = await pj.receive(timeout=60)
                pj.send(erl_pid, Atom("stop"))
                return reply  # type: ignore[no-any-return]

            _, before, after, size = await node.run(scenario, timeout=90)
    assert size == 10_000_000
    assert before < 1000  # small messages so far
    assert 60_000 < after <= 65_536 + 64  # the 10 MB came as 64 KiB fragments


#: erl, against a Python node with max_message_size 1 MiB: sends it 2 MB (refused), then a small
#: message through the same connection; registers ``ctl`` to receive from the Python side, checks
#: what came, and reports whether the connection ever went down.
REFUSAL = """
Py = 'PY_NODE',
pong = net_adm:ping(Py),
ok = net_kernel:monitor_nodes(true),
register(ctl, self()),
{echo, Py} ! {self(), {too_big, binary:copy(<<1>>, 2000000)}},
{echo, Py} ! {self(), small_after},
First = receive M1 -> M1 after 30000 -> timeout end,
io:format("RESULT first ~p~n", [First]),
io:format("READY~n"),
Loop = fun L(Got) ->
    receive
        done -> lists:reverse(Got);
        {from_python, X} -> L([X | Got])
    end
end,
Got = Loop([]),
Down = receive {nodedown, Py} -> nodedown after 0 -> up end,
io:format("RESULT got ~p~nRESULT connection ~p~nDONE~n", [Got, Down]),
halt().
"""


async def test_a_message_over_max_message_size_is_refused_alone_both_ways(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="philipjose.node")
    limit = 1 << 20
    async with private_epmd() as epmd_port, python_node(epmd_port, max_message_size=limit) as node:
        code = REFUSAL.replace("PY_NODE", _full(node))
        async with await _erl(epmd_port, code) as peer:
            await peer.line("READY")
            assert peer.lines[-2].startswith("RESULT first small_after")
            ctl = (Atom("ctl"), Atom(peer.name))

            async def too_big_in_a_thread() -> None:
                pj.send(ctl, (Atom("from_python"), list(range(300_000))))  # encoded off the loop
                await pj.receive(timeout=30)  # the exit signal comes first

            async def scenario() -> tuple[str, Any]:
                with pytest.raises(pj.node.MessageTooLarge) as info:
                    pj.send(ctl, (Atom("from_python"), bytes(2_000_000)))  # encoded at once
                assert info.value.size > limit and info.value.limit == limit
                pj.process_flag("trap_exit", True)
                pid = pj.spawn_link(too_big_in_a_thread)
                exit_msg = await pj.receive(timeout=30)
                pj.send(ctl, (Atom("from_python"), Atom("later")))
                pj.send(ctl, Atom("done"))
                return str(info.value), exit_msg == (Atom("EXIT"), pid, Atom("system_limit"))

            error, killed = await node.run(scenario, timeout=60)
            results = await _results(peer, timeout=60)
    assert "max_message_size" in error and killed
    assert results["got"] == "[later]" and results["connection"] == "up", results
    refusals = [r.getMessage() for r in caplog.records if "over max_message_size" in r.getMessage()]
    assert any(m.startswith("refused a message from") and "echo" in m for m in refusals), refusals


async def test_python_to_python_large_messages_keep_order() -> None:
    """Between two philipjose nodes: one process's large and small messages arrive in the order it
    sent them, another process's message arrives too, and a message over the limit is refused alone."""
    from tests.node.support import local_nodes

    big = [(i, Atom("a"), b"bin") for i in range(300_000)]
    async with local_nodes(2, max_message_size=50_000_000) as (a, b):

        async def scenario() -> list[Any]:
            target: Pid = await b.run(_spawn_collector, 5)
            assert b.dist is not None
            assert await pj.node.ping(str(b.dist.name))  # connected: the sizes are known at once

            async def other() -> None:
                pj.send(target, (Atom("other"), 1))

            pj.send(target, (Atom("big"), big))  # encoded in a thread, sent in fragments
            pj.send(target, (Atom("small"), 1))
            pj.spawn(other)
            with pytest.raises(pj.node.MessageTooLarge):
                pj.send(target, (Atom("huge"), bytes(60_000_000)))
            pj.send(target, (Atom("small"), 2))
            pj.send(target, (Atom("small"), 3))
            return await _await_result(target)

        got = await a.run(scenario, timeout=120)
        assert a.dist is not None and b.dist is not None
        assert a.dist.nodes() == [b.dist.name]  # the connection stayed up
    assert [m for m in got if m[0] != Atom("other")] == [
        (Atom("big"), big),
        (Atom("small"), 1),
        (Atom("small"), 2),
        (Atom("small"), 3),
    ]
    assert (Atom("other"), 1) in got


_collected: dict[Pid, trio.Event] = {}
_results_of: dict[Pid, list[Any]] = {}


async def _collect(n: int) -> None:
    got = [await pj.receive(timeout=60) for _ in range(n)]
    _results_of[pj.self()] = got
    _collected[pj.self()].set()


async def _spawn_collector(n: int) -> Pid:
    pid = pj.spawn(_collect, n)
    _collected[pid] = trio.Event()
    return pid


async def _await_result(pid: Pid) -> list[Any]:
    with trio.fail_after(60):
        await _collected[pid].wait()
    return _results_of.pop(pid)
