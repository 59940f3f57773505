%% The Erlang side of the pg interop tests (compiled by the tests with erlc).
%%
%% erl -sname NAME -setcookie C -pa DIR -run pj_pg main PYNODE SCOPE1,SCOPE2,...
%%
%% starts the pg scopes named, connects to PYNODE, registers itself as pgagent, prints READY and runs
%% the commands the Python test sends, {From, Tag, Command}, answering {Tag, Result} (an exception is
%% answered as {Tag, {'EXIT', Reason}}). It halts on 'stop' or after two minutes of silence.
-module(pj_pg).
-export([main/1]).

main([PyS, ScopesS]) ->
    Py = list_to_atom(PyS),
    [{ok, _} = pg:start(list_to_atom(S)) || S <- string:tokens(ScopesS, ",")],
    register(pgagent, self()),
    true = net_kernel:connect_node(Py),
    io:format("READY~n"),
    loop().

loop() ->
    receive
        {From, Tag, Command} ->
            From ! {Tag, (catch command(Command))},
            loop();
        stop -> halt()
    after 120000 -> halt()
    end.

member() ->
    receive
        {exit, Reason} -> exit(Reason);
        {forward, To, Msg} -> To ! Msg, member();
        _ -> member()
    end.

command({spawn_member, Scope, Group}) ->
    P = spawn(fun member/0),
    ok = pg:join(Scope, Group, P),
    P;
command({join, Scope, Group, PidOrPids}) -> pg:join(Scope, Group, PidOrPids);
command({leave, Scope, Group, PidOrPids}) -> pg:leave(Scope, Group, PidOrPids);
command({members, Scope, Group}) -> lists:sort(pg:get_members(Scope, Group));
command({local_members, Scope, Group}) -> lists:sort(pg:get_local_members(Scope, Group));
command({which_groups, Scope}) -> lists:sort(pg:which_groups(Scope));
command({await_members, Scope, Group, Expected}) ->
    {Ref, Members} = pg:monitor(Scope, Group),
    Result = await(Ref, Group, lists:sort(Members), lists:sort(Expected)),
    pg:demonitor(Scope, Ref),
    Result;
command({stop_member, Pid, Reason}) ->
    M = monitor(process, Pid),
    Pid ! {exit, Reason},
    receive {'DOWN', M, process, Pid, _} -> ok after 10000 -> timeout end;
command({subscribe, Scope, Group, To}) ->
    %% A process that forwards the notifications of pg:monitor(Scope, Group) to To.
    Self = self(),
    spawn(fun() ->
        {Ref, Members} = pg:monitor(Scope, Group),
        Self ! {subscribed, Members},
        forward(Ref, To)
    end),
    receive {subscribed, Members} -> Members after 10000 -> timeout end;
command({broadcast, Scope, Group, Msg}) ->
    Members = pg:get_members(Scope, Group),
    [P ! Msg || P <- Members],
    length(Members);
command({start_scope, Scope}) -> {ok, Pid} = pg:start(Scope), Pid;
command({rpc, Node, M, F, A}) -> erpc:call(Node, M, F, A, 10000);
command({disconnect, Node}) -> erlang:disconnect_node(Node);
command({nodes, hidden}) -> nodes(hidden).

await(_Ref, _Group, Expected, Expected) -> ok;
await(Ref, Group, Current, Expected) ->
    receive
        {Ref, join, Group, Pids} -> await(Ref, Group, lists:sort(Pids ++ Current), Expected);
        {Ref, leave, Group, Pids} -> await(Ref, Group, lists:sort(Current -- Pids), Expected)
    after 20000 -> {timeout, Current}
    end.

forward(Ref, To) ->
    receive
        {Ref, Action, Group, Pids} -> To ! {pg_notice, Action, Group, lists:sort(Pids)}, forward(Ref, To)
    end.
