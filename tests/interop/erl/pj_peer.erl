%% The Erlang side of the distribution interop tests (compiled by the tests with erlc).
%%
%% erl -sname NAME -setcookie C -pa DIR -run pj_peer main PYNODE SCENARIO
%%
%% starts a gen_server registered as pj_counter and a process registered as agent, prints READY,
%% runs SCENARIO against the Python node PYNODE, prints "RESULT <term>", then waits for 'stop' (or
%% two minutes) and halts. Scenario 'idle' does nothing: the Python test drives everything.
-module(pj_peer).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, handle_info/2]).

init(N) -> {ok, N}.
handle_call(inc, _From, N) -> {reply, N + 1, N + 1};
handle_call(get, _From, N) -> {reply, N, N}.
handle_cast({add, K}, N) -> {noreply, N + K}.
handle_info(_, N) -> {noreply, N}.

main([PyS, ScenarioS]) ->
    Py = list_to_atom(PyS),
    {ok, _} = gen_server:start({local, pj_counter}, ?MODULE, 0, []),
    register(agent, spawn(fun agent/0)),
    register(main, self()),
    io:format("READY~n"),
    Result = (catch scenario(list_to_atom(ScenarioS), Py)),
    io:format("RESULT ~w~n", [Result]),
    receive stop -> ok after 120000 -> ok end,
    halt().

%% Requests the Python side sends to {agent, Node}.
agent() ->
    receive
        {From, echo, X} -> From ! X;
        {From, spawn_victim} ->
            V = spawn(fun() -> receive {exit, R} -> exit(R) end end),
            From ! {victim, V};
        {From, collect, N} -> From ! {collected, collect(1, N)};
        _ -> ok
    end,
    agent().

collect(I, N) when I > N -> ok;
collect(I, N) ->
    receive
        {seq, I} -> collect(I + 1, N);
        {seq, J} -> {out_of_order, I, J}
    after 10000 -> {missing, I}
    end.

scenario(idle, _Py) -> idle;
scenario(ping, Py) -> net_adm:ping(Py);
scenario(echo_terms, Py) ->
    Terms = terms(),
    Bad = [{T, B} || T <- Terms, B <- [echo(Py, T)], B =/= T],
    case Bad of [] -> {ok, length(Terms)}; _ -> {mismatch, Bad} end;
scenario(order, Py) ->
    N = 10000,
    [{echo, Py} ! {self(), {seq, I}} || I <- lists:seq(1, N)],
    Order = collect(1, N),
    [{sink, Py} ! {row, 1, <<0:256>>, 2.5, [1, 2, 3]} || _ <- lists:seq(1, N)],
    {sink, Py} ! {count, self()},
    Count = receive {count, C} -> C after 20000 -> timeout end,
    {Order, Count};
scenario(gen_server, Py) ->
    One = gen_server:call({counter, Py}, inc),
    gen_server:cast({counter, Py}, {add, 5}),
    Six = gen_server:call({counter, Py}, get),
    NoProc = try gen_server:call({nosuch, Py}, get, infinity)
             catch exit:{Reason, _} -> Reason
             end,
    {One, Six, NoProc};
scenario(links, Py) ->
    process_flag(trap_exit, true),
    V1 = victim(Py),
    link(V1),
    V1 ! {exit, bye},
    Exit = receive {'EXIT', V1, R1} -> R1 after 10000 -> timeout end,
    V2 = victim(Py),
    M2 = monitor(process, V2),
    exit(V2, kill),
    Down = receive {'DOWN', M2, process, V2, R2} -> R2 after 10000 -> {timeout, mailbox()} end,
    M3 = monitor(process, {nosuch, Py}),
    NoProc = receive {'DOWN', M3, process, _, R3} -> R3 after 10000 -> timeout end,
    V4 = victim(Py),
    link(V4),
    unlink(V4),
    M4 = monitor(process, V4),
    V4 ! {exit, quiet},
    Quiet = receive {'DOWN', M4, process, V4, R4} -> R4 after 10000 -> timeout end,
    Stray = receive {'EXIT', V4, _} = E -> E after 200 -> none end,
    {Exit, Down, NoProc, Quiet, Stray}.

mailbox() -> element(2, process_info(self(), messages)).

victim(Py) ->
    {victims, Py} ! {self(), new},
    receive {victim, V} -> V after 10000 -> exit(no_victim) end.

echo(Py, T) ->
    {echo, Py} ! {self(), T},
    receive X -> X after 10000 -> timeout end.

terms() ->
    [0, 255, 256, -1, 1 bsl 31, -(1 bsl 31) - 1, 1 bsl 64, -(1 bsl 200), 1 bsl 2040,
     0.0, 2.5, -1.0e300, 1.0e-300,
     atom, '', 'with space', 'ünïcødé', 'Ω≈ç', true, false, undefined,
     <<>>, <<"bytes">>, <<0:8000000>>, <<1:1>>, <<5:3>>, <<1, 2, 3:4>>,
     [], "string", [1, 2, 3], [a | b], [1, [2, [3 | 4]]], lists:seq(1, 300),
     {}, {a}, {a, {b, {c}}}, list_to_tuple(lists:seq(1, 300)),
     #{}, #{a => 1, <<"k">> => [v], {t} => #{}}, maps:from_list([{I, I} || I <- lists:seq(1, 100)]),
     self(), make_ref(), hd(erlang:ports()), spawn(fun() -> ok end),
     fun lists:map/2, fun(X) -> X + 1 end,
     {self(), [make_ref(), #{k => {<<"deep">>, [1.5]}}]}].
