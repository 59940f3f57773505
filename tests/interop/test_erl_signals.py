"""What a real ``erl`` node can do with a philipjose node's processes, beyond messages and calls:
aliases, monitors by name, exit reasons through links and monitors, ``spawn_request`` and its reply
options, ``erpc``/``rpc`` multicall and ``gen_server:multi_call`` across the Python node and erl's own.

The Erlang side (below, compiled with the real ``erlc``) prints ``CHECK Name ok`` or ``CHECK Name BAD
Term`` per check, in the shapes OTP documents, then ``DONE``. A second scenario restarts the Python
node under the same name: erl's pids of the old incarnation are dead (``noproc``), not the new one's.
docs/distribution.md's table of what an Erlang node can do names these tests.
"""

from __future__ import annotations

import subprocess
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

import philipjose as pj
from philipjose import Atom
from tests.node.support import unique
from tests.tools import Otp, require

from .dist_support import COOKIE, Peer, private_epmd, python_node, start_peer

pytestmark = pytest.mark.interop

PEER = r"""
-module(pj_signals_peer).
-export([main/1, reconnect/1]).

main([PyS]) ->
    Py = list_to_atom(PyS),
    pong = net_adm:ping(Py),
    io:format("READY~n"),
    process_flag(trap_exit, true),
    [report(check(Name, Fun)) || {Name, Fun} <- checks(Py)],
    io:format("DONE~n"),
    halt().

%% erl holds a pid of the Python node, which restarts with the same name (a new creation)
reconnect([PyS]) ->
    Py = list_to_atom(PyS),
    register(main, self()),
    pong = net_adm:ping(Py),
    monitor_node(Py, true),
    Old = victim(Py),
    io:format("READY~n"),
    receive {nodedown, Py} -> ok end,
    io:format("NODEDOWN~n"),
    receive {restarted, Py} -> ok end,
    New = victim(Py),
    Checks = [{same_name_new_creation, fun() -> node(New) =:= node(Old) andalso New =/= Old end},
              {old_pid_monitor_noproc, fun() -> down(monitor(process, Old)) =:= noproc end},
              {old_pid_link_noproc, fun() -> link(Old), exited(Old) =:= noproc end},
              {old_pid_send_dropped, fun() ->
                   Old ! {exit, never}, Ref = monitor(process, New), New ! {exit, fine},
                   down(Ref) =:= fine end}],
    process_flag(trap_exit, true),
    [report(check(Name, Fun)) || {Name, Fun} <- Checks],
    io:format("DONE~n"),
    halt().

report({Name, true}) -> io:format("CHECK ~w ok~n", [Name]);
report({Name, Got}) -> io:format("CHECK ~w BAD ~0p~n", [Name, Got]).

check(Name, Fun) ->
    {Name, try Fun() catch C:R:S -> {C, R, S} end}.

victim(Py) ->
    {victims, Py} ! {self(), new},
    receive {victim, V} -> V after 10000 -> no_victim end.

down(Ref) ->
    receive {'DOWN', Ref, process, _, Reason} -> Reason after 10000 -> no_down end.

exited(Pid) ->
    receive {'EXIT', Pid, Reason} -> Reason after 10000 -> no_exit end.

%% a round trip through echo: everything echo sent before it has arrived
sync(Py) ->
    {echo, Py} ! {self(), sync},
    receive sync -> ok after 10000 -> no_sync end.

checks(Py) ->
    [{alias_reply, fun() ->
         A = alias(),
         {echo, Py} ! {A, via_alias},
         receive via_alias -> true after 10000 -> no_reply end end},
     {alias_inactive_drops, fun() ->
         A = alias(),
         true = unalias(A),
         {echo, Py} ! {A, late},
         ok = sync(Py),
         receive late -> arrived after 0 -> true end end},
     {alias_reply_demonitor, fun() ->
         %% monitor(process, P, [{alias, reply_demonitor}]): the reply deactivates the alias
         A = monitor(process, {echo, Py}, [{alias, reply_demonitor}]),
         {echo, Py} ! {A, first},
         {echo, Py} ! {A, second},
         ok = sync(Py),
         Got = [receive M -> M after 0 -> none end || M <- [first, second]],
         Got =:= [first, none] end},
     {monitor_name_noproc, fun() ->
         Ref = monitor(process, {nosuch, Py}),
         receive {'DOWN', Ref, process, {nosuch, Py}, noproc} -> true after 10000 -> no_down end end},
     {monitor_name_demonitor, fun() ->
         Ref = monitor(process, {echo, Py}),
         true = demonitor(Ref, [flush]),
         ok = sync(Py),
         receive {'DOWN', Ref, _, _, _} = D -> D after 0 -> true end end},
     {monitor_exit_reasons, fun() ->
         Reasons = [boom, {shutdown, why}, {error, [1, 2.5, <<"x">>]}, normal],
         Got = [begin V = victim(Py), Ref = monitor(process, V), V ! {exit, R}, down(Ref) end
                || R <- Reasons],
         Got =:= Reasons end},
     {monitor_dead_pid_noproc, fun() ->
         V = victim(Py), Ref = monitor(process, V), V ! {exit, done}, done = down(Ref),
         Ref2 = monitor(process, V),
         down(Ref2) =:= noproc end},
     {link_exit_reasons, fun() ->
         Got = [begin V = victim(Py), link(V), V ! {exit, R}, exited(V) end
                || R <- [boom, {shutdown, why}, normal]],
         Got =:= [boom, {shutdown, why}, normal] end},
     {link_kill_is_killed, fun() ->
         V = victim(Py), link(V), exit(V, kill),
         exited(V) =:= killed end},
     {exit_normal_ignored, fun() ->
         V = victim(Py), exit(V, normal), Ref = monitor(process, V),
         V ! {exit, still_alive},
         down(Ref) =:= still_alive end},
     {link_dead_pid_noproc, fun() ->
         V = victim(Py), Ref = monitor(process, V), V ! {exit, done}, done = down(Ref),
         link(V),
         exited(V) =:= noproc end},
     {spawn_request_monitor, fun() ->
         ReqId = spawn_request(Py, pyexample, crash, [], [monitor]),
         receive
             {spawn_reply, ReqId, ok, Pid} ->
                 case down(ReqId) of
                     {python_exception, <<"ValueError">>, _, _} -> node(Pid) =:= Py;
                     Other -> Other
                 end
         after 10000 -> no_spawn_reply
         end end},
     {spawn_request_link, fun() ->
         ReqId = spawn_request(Py, pyexample, crash, [], [link]),
         receive
             {spawn_reply, ReqId, ok, Pid} ->
                 case exited(Pid) of {python_exception, <<"ValueError">>, _, _} -> true; O -> O end
         after 10000 -> no_spawn_reply
         end end},
     {spawn_request_reply_tag, fun() ->
         ReqId = spawn_request(Py, pyexample, add, [1, 2], [{reply_tag, my_tag}]),
         receive {my_tag, ReqId, ok, Pid} -> is_pid(Pid) after 10000 -> no_spawn_reply end end},
     {spawn_request_error_only, fun() ->
         ReqId = spawn_request(Py, pyexample, add, [1, 2], [{reply, error_only}, monitor]),
         R = down(ReqId),
         receive {spawn_reply, ReqId, _, _} = S -> S after 0 -> R =:= normal end end},
     {spawn_request_abandon, fun() ->
         ReqId = spawn_request(Py, pyexample, add, [1, 2], []),
         spawn_request_abandon(ReqId) orelse
             receive {spawn_reply, ReqId, ok, _} -> true after 10000 -> no_spawn_reply end end},
     {erpc_multicall, fun() ->
         %% pyexample is Python's: erl's own node answers undef, as for any module it lacks
         case erpc:multicall([Py, node()], pyexample, add, [1, 2], 10000) of
             [{ok, 3}, {error, {exception, undef, [{pyexample, add, [1, 2], _} | _]}}] -> true;
             O -> O
         end end},
     {rpc_multicall, fun() ->
         {[3], [nosuch@nohost]} =:= rpc:multicall([Py, nosuch@nohost], pyexample, add, [1, 2], 10000) end},
     {gen_server_multi_call, fun() ->
         {Replies, Bad} = gen_server:multi_call([Py, node()], counter, get, 10000),
         case {Replies, Bad} of {[{Py, N}], [Me]} when is_integer(N), Me =:= node() -> true; O -> O end end},
     {gen_server_cast_call, fun() ->
         Before = gen_server:call({counter, Py}, get),
         ok = gen_server:cast({counter, Py}, {add, 5}),
         gen_server:call({counter, Py}, get) =:= Before + 5 end}].
"""

CHECKS = 20


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    out = tmp_path_factory.mktemp(f"signals_beam-{otp}")
    source = out / "pj_signals_peer.erl"
    source.write_text(PEER)
    subprocess.run([require("erlc", otp), "-o", str(out), str(source)], check=True)
    return out


async def test_erl_signals_to_python_processes(beam_dir: Path) -> None:
    name = unique("erl")
    argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam_dir)]
    argv += ["-run", "pj_signals_peer", "main"]
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        start_peer([*argv, py.name], epmd, name) as erl,
    ):
        await erl.line("DONE", timeout=120)
    assert _failed(erl, CHECKS) == {}


def _failed(erl: Peer, count: int) -> dict[str, str]:
    results = {line.split()[1]: line.split(maxsplit=2)[2] for line in erl.lines if line.startswith("CHECK ")}
    assert len(results) == count, "\n".join(erl.lines)
    return {name: outcome for name, outcome in results.items() if outcome != "ok"}


async def test_python_node_restarted_with_a_new_creation(beam_dir: Path) -> None:
    py_name, name = unique("py"), unique("erl")
    argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam_dir)]
    argv += ["-run", "pj_signals_peer", "reconnect", py_name]

    async def restarted() -> None:
        pj.send((Atom("main"), Atom(name)), (Atom("restarted"), Atom(py_name)))

    async with private_epmd() as epmd, AsyncExitStack() as stack:
        async with python_node(epmd, name=py_name) as first:
            erl = await stack.enter_async_context(start_peer(argv, epmd, name))
            await erl.line("READY")
        await erl.line("NODEDOWN")
        async with python_node(epmd, name=py_name) as second:
            await second.run(restarted)
            await erl.line("DONE", timeout=120)
    assert first.dist is not None and second.dist is not None
    assert first.dist.creation != second.dist.creation
    assert _failed(erl, 4) == {}
