%% Test peers for tests/node/test_hostile_handshake.py.
%%
%% canary(Targets): connect to each target node, link to and monitor its registered `holder`
%% process, watch nodeup/nodedown (net_kernel:monitor_nodes), and ping every target every 100 ms.
%% Registered as `canary`; `{report, From}` gets
%% `{canary_report, NodeDowns, Exits, Downs, Pings, Pangs, WorstPingMicroseconds}`.
%% holder(): register `holder`, which answers `{From, hello}` with `{holder_pid, Pid}`; and a `sink`
%% that counts what it receives and answers `{count, From}` with `{count, N}`; and a `sender`:
%% `{send, Dest, N}` sends N messages to Dest.
%% pinger([N | Targets]): N rounds, 300 ms apart, of pinging each target and printing
%% "PING pong|pang" for each; then "DONE", and stay up.
-module(pj_canary).
-export([canary/1, holder/0, pinger/1]).

holder() ->
    register(holder, spawn(fun holder_loop/0)),
    register(sink, spawn(fun() -> sink_loop(0) end)),
    register(sender, spawn(fun sender_loop/0)),
    io:format("READY~n").

sender_loop() ->
    receive
        {send, Dest, N} -> [Dest ! {msg, I} || I <- lists:seq(1, N)], sender_loop();
        _ -> sender_loop()
    end.

holder_loop() ->
    receive
        {From, hello} -> From ! {holder_pid, self()}, holder_loop();
        _ -> holder_loop()
    end.

sink_loop(N) ->
    receive
        {count, From} -> From ! {count, N}, sink_loop(N);
        _ -> sink_loop(N + 1)
    end.

canary(TargetArgs) ->
    Targets = [list_to_atom(T) || T <- TargetArgs],
    process_flag(trap_exit, true),
    ok = net_kernel:monitor_nodes(true, [{node_type, all}]),  % philipjose nodes are hidden
    [attach(T) || T <- Targets],
    register(canary, self()),
    io:format("READY~n"),
    canary_loop(Targets, {[], [], [], 0, 0, 0}).

attach(T) ->
    pong = net_adm:ping(T),
    {holder, T} ! {self(), hello},
    receive
        {holder_pid, Pid} -> link(Pid), erlang:monitor(process, Pid)
    after 10000 -> exit({no_holder, T})
    end.

canary_loop(Targets, {Downs, Exits, Mons, Pings, Pangs, Worst} = S) ->
    receive
        {nodedown, N, _} -> canary_loop(Targets, {[N | Downs], Exits, Mons, Pings, Pangs, Worst});
        {nodeup, _, _} -> canary_loop(Targets, S);
        {'EXIT', P, R} -> canary_loop(Targets, {Downs, [{P, R} | Exits], Mons, Pings, Pangs, Worst});
        {'DOWN', _, process, P, R} -> canary_loop(Targets, {Downs, Exits, [{P, R} | Mons], Pings, Pangs, Worst});
        {report, From} ->
            From ! {canary_report, Downs, Exits, Mons, Pings, Pangs, Worst},
            canary_loop(Targets, S)
    after 100 ->
        canary_loop(Targets, lists:foldl(fun ping/2, S, Targets))
    end.

ping(T, {Downs, Exits, Mons, Pings, Pangs, Worst}) ->
    T0 = erlang:monotonic_time(microsecond),
    Result = net_adm:ping(T),
    Took = erlang:monotonic_time(microsecond) - T0,
    Lost = case Result of pong -> 0; pang -> 1 end,
    {Downs, Exits, Mons, Pings + 1, Pangs + Lost, max(Worst, Took)}.

pinger([NArg | TargetArgs]) ->
    Targets = [list_to_atom(T) || T <- TargetArgs],
    [begin
         [io:format("PING ~p~n", [net_adm:ping(T)]) || T <- Targets],
         timer:sleep(300)
     end || _ <- lists:seq(1, list_to_integer(NArg))],
    io:format("DONE~n").
