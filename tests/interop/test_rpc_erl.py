"""rpc between a philipjose node and a real OTP 25 ``erl`` node (private EPMD, loopback).

Erlang -> Python: ``rpc:call``, ``erpc:call``, ``erpc:cast``, the legacy ``rex`` server (gen_server
and ``{From, {call, ...}}`` forms), ``spawn``/``spawn_monitor`` of exposed functions, errors and
refusals with the exact shapes OTP gives, terms crossing unchanged, and an ``erpc`` timeout that
cancels the Python work. Python -> Erlang: ``rpc.call`` values, errors, throws, exits, ``undef``,
timeouts that kill the remote process, ``rpc.cast`` and ``pj.node.spawn``.

The Erlang side is the module below, compiled with the real ``erlc``: it runs one scenario, prints a
``CHECK Name ok`` (or ``CHECK Name BAD Term``) line per check and ``DONE``, then waits for ``stop``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, rpc
from tests.node.support import LocalNode
from tests.tools import Otp

from .dist_support import (
    Peer,
    compile_scenario_peer,
    erl_peer,
    private_epmd,
    python_node,
    scenario_checks,
)

pytestmark = pytest.mark.interop

PEER = r"""
down(Ref) -> receive {'DOWN', Ref, process, _, Reason} -> Reason after 10000 -> no_down end.

scenario(idle, _Py) -> [];
scenario(calls, Py) ->
    Term = {a, [1, 2.5, <<"bin">>, "chars"], #{k => v, <<"s">> => [x]}, -12345678901234567890, self(),
            make_ref(), {}, [], <<1:3>>},
    Fun = fun(X) -> X + 1 end,
    [check(rpc_call, fun() -> 3 =:= rpc:call(Py, pyexample, add, [1, 2]) end),
     check(erpc_call, fun() -> 3 =:= erpc:call(Py, pyexample, add, [1, 2], 10000) end),
     check(terms_unchanged, fun() -> Term =:= rpc:call(Py, pyexample, echo, [Term]) end),
     check(fun_stays_inert, fun() -> Fun =:= rpc:call(Py, pyexample, echo, [Fun]) end),
     check(rpc_error, fun() ->
         case rpc:call(Py, pyexample, crash, []) of
             {badrpc, {'EXIT', {{python_exception, <<"ValueError">>, <<"crash() was called">>, Tb},
                                [{_, crash, 0, [{file, F}, {line, L}]} | _]}}} ->
                 is_binary(Tb) andalso io_lib:printable_list(F) andalso is_integer(L);
             Other -> Other
         end end),
     check(erpc_error, fun() ->
         try erpc:call(Py, pyexample, crash, []) of V -> {returned, V}
         catch error:{exception, {python_exception, <<"ValueError">>, _, _}, [{_, crash, 0, _} | _]} -> true
         end end),
     check(unexposed_rpc, fun() ->
         {badrpc, {'EXIT', {undef, [{os, cmd, ["ls"], []}]}}} =:= rpc:call(Py, os, cmd, ["ls"]) end),
     check(unexposed_erpc, fun() ->
         try erpc:call(Py, os, cmd, ["ls"]) of V -> {returned, V}
         catch error:{exception, undef, [{os, cmd, ["ls"], []}]} -> true
         end end),
     check(wrong_arity, fun() ->
         {badrpc, {'EXIT', {undef, [{pyexample, add, [1], []}]}}} =:= rpc:call(Py, pyexample, add, [1]) end),
     check(improper_args_badrpc, fun() ->
         case rpc:call(Py, pyexample, add, [1 | 2]) of
             {badrpc, {'EXIT', {badarg, [{erlang, apply, [pyexample, add, [1 | 2]], _}]}}} -> true;
             Other -> Other
         end end),
     check(improper_args_erpc, fun() ->
         try erpc:call(Py, pyexample, add, [1 | 2]) of V -> {returned, V}
         catch error:{exception, badarg, [{erlang, apply, [pyexample, add, [1 | 2]], _}]} -> true
         end end),
     check(node_still_serves, fun() -> 7 =:= rpc:call(Py, pyexample, add, [3, 4]) end),
     check(rex_gen_server_call, fun() ->
         5 =:= gen_server:call({rex, Py}, {call, pyexample, add, [2, 3], group_leader()}) end),
     check(rex_refuses, fun() ->
         {badrpc, {'EXIT', {undef, [{os, cmd, ["ls"], []}]}}} =:=
             gen_server:call({rex, Py}, {call, os, cmd, ["ls"], group_leader()}) end),
     check(rex_old_style, fun() ->
         {rex, Py} ! {self(), {call, pyexample, add, [4, 5], user}},
         receive {rex, R} -> R =:= 9 after 10000 -> no_reply end end),
     check(rpc_back, fun() ->
         [3, 2, 1] =:= rpc:call(Py, pyexample, rpc_back, [node(), lists, reverse, [[1, 2, 3]]]) end),
     check(nested_exit_like_erlang, fun() ->
         {badrpc, {'EXIT', {exception, bye}}} =:=
             rpc:call(Py, pyexample, rpc_back, [node(), erlang, exit, [bye]]) end),
     check(nested_error_like_erlang, fun() ->
         case rpc:call(Py, pyexample, rpc_back, [node(), erlang, error, [oops]]) of
             {badrpc, {'EXIT', {{exception, oops, [_ | _]}, [_ | _]}}} -> true;
             Other -> Other
         end end),
     check(nested_throw_like_erlang, fun() ->
         ball =:= rpc:call(Py, pyexample, rpc_back, [node(), erlang, throw, [ball]]) end),
     check(erpc_cast, fun() ->
         ok = erpc:cast(Py, pyexample, rpc_back, [node(), erlang, send, [main, casted]]),
         receive casted -> true after 10000 -> no_cast end end),
     check(spawn_exposed, fun() ->
         Pid = spawn(Py, pyexample, add, [1, 2]),
         is_pid(Pid) andalso node(Pid) =:= Py end),
     check(spawn_monitor_crash, fun() ->
         {_, Ref} = spawn_monitor(Py, pyexample, crash, []),
         case down(Ref) of {python_exception, <<"ValueError">>, _, _} -> true; Other -> Other end end),
     check(spawn_unexposed, fun() ->
         {_, Ref} = spawn_monitor(Py, os, cmd, ["ls"]),
         {undef, [{os, cmd, ["ls"], []}]} =:= down(Ref) end),
     check(spawn_idle, fun() ->
         Pid = rpc:call(Py, pyexample, spawn_idle, []),
         Ref = monitor(process, Pid),
         Pid ! hello,
         normal =:= down(Ref) end),
     check(link_and_report, fun() ->
         Victim = spawn(fun() -> receive die -> exit(boom) end end),
         ok = rpc:call(Py, pyexample, link_and_report, [Victim, self()]),
         Victim ! die,
         receive {reported, boom} -> true after 10000 -> no_report end end)];
scenario(timeout, Py) ->
    [check(erpc_timeout, fun() ->
         try erpc:call(Py, pytest_rpc_erl, sleep, [erpc], 300) of V -> {returned, V}
         catch error:{erpc, timeout} -> true
         end end),
     check(rpc_timeout, fun() -> {badrpc, timeout} =:= rpc:call(Py, pytest_rpc_erl, sleep, [rpc], 300) end),
     check(still_serves, fun() -> 3 =:= rpc:call(Py, pyexample, add, [1, 2]) end)].
"""


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    return compile_scenario_peer(tmp_path_factory.mktemp(f"rpc_beam-{otp}"), "pj_rpc_peer", PEER, otp)


def erl_node(beam_dir: Path, epmd: int, py: LocalNode, scenario: str) -> AbstractAsyncContextManager[Peer]:
    return erl_peer(beam_dir, epmd, py.name, scenario, module="pj_rpc_peer")


async def test_erlang_calls_python(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py, erl_node(beam_dir, epmd, py, "calls") as erl:
        results = await scenario_checks(erl)
    assert len(results) == 25, erl.lines
    assert {name: outcome for name, outcome in results.items() if outcome != "ok"} == {}


async def test_erpc_timeout_cancels_the_python_work(beam_dir: Path) -> None:
    cancelled: list[Any] = []
    changed = trio.Event()

    async def sleep(tag: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(tag)
            changed.set()

    rpc.expose("pytest_rpc_erl", {"sleep": sleep})
    try:
        async with (
            private_epmd() as epmd,
            python_node(epmd) as py,
            erl_node(beam_dir, epmd, py, "timeout") as erl,
        ):
            results = await scenario_checks(erl)
            with trio.fail_after(30):
                while len(cancelled) < 2:
                    await changed.wait()
                    changed = trio.Event()
    finally:
        rpc.unexpose("pytest_rpc_erl")
    assert results == {"erpc_timeout": "ok", "rpc_timeout": "ok", "still_serves": "ok"}
    assert sorted(cancelled) == [Atom("erpc"), Atom("rpc")]


async def test_python_calls_erlang(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py, erl_node(beam_dir, epmd, py, "idle") as erl:
        node = erl.name

        async def go() -> dict[str, Any]:
            out: dict[str, Any] = {}
            out["reverse"] = await rpc.call(node, "lists", "reverse", [[1, 2, 3]], timeout=10)
            out["node"] = await rpc.call(node, "erlang", "node", [], timeout=10)
            out["binary"] = await rpc.call(node, "erlang", "list_to_binary", [[104, 105]], timeout=10)
            for name, fn, args in [
                ("error", "error", [Atom("boom")]),
                ("exit", "exit", [Atom("bye")]),
                ("throw", "throw", [Atom("ball")]),
                ("undef", "no_such_function", []),
                ("badarith", "+", [1, Atom("a")]),
            ]:
                try:
                    await rpc.call(node, "erlang", fn, args, timeout=10)
                except rpc.RemoteError as exc:
                    out[name] = (str(exc.kind), exc.reason, len(exc.stacktrace) > 0, exc.signal)
            try:
                await rpc.call(node, "timer", "sleep", [60_000], timeout=0.5)
            except rpc.RpcTimeout as exc:
                out["timeout_pid"] = exc.pid
                assert exc.pid is not None
                out["killed"] = not await rpc.call(node, "erlang", "is_process_alive", [exc.pid], timeout=10)
            rpc.cast(node, "erlang", "send", [pj.self(), Atom("casted")])
            out["cast"] = await pj.receive(match=Atom("casted"), timeout=10)
            pid, ref = await pj.node.spawn(node, "timer", "sleep", [10], monitor=True)
            out["spawn_monitor"] = (
                await pj.receive(match=(Atom("DOWN"), ref, Atom("process"), pid, pj.ANY))
            )[4]
            pj.process_flag("trap_exit", True)
            linked = await pj.node.spawn(node, "erlang", "exit", [Atom("linked_exit")], link=True)
            out["spawn_link"] = (await pj.receive(match=(Atom("EXIT"), linked, pj.ANY), timeout=10))[2]
            with pytest.raises(TimeoutError):  # no stray spawn_reply, DOWN or nodedown messages
                await pj.receive(timeout=0)
            return out

        out = await py.run(go, timeout=60)
    assert out["reverse"] == [3, 2, 1]
    assert out["node"] == Atom(node)
    assert out["binary"] == b"hi"
    assert out["error"] == ("error", Atom("boom"), True, False)
    assert out["exit"] == ("exit", Atom("bye"), False, False)
    assert out["throw"] == ("throw", Atom("ball"), False, False)
    assert out["undef"][:2] == ("error", Atom("undef"))
    assert out["badarith"][:2] == ("error", Atom("badarith"))
    assert out["timeout_pid"].node == Atom(node)
    assert out["killed"] is True
    assert out["cast"] == Atom("casted")
    assert out["spawn_monitor"] == Atom("normal")
    assert out["spawn_link"] == Atom("linked_exit")
