%% The Erlang side of the TLS distribution tests (compiled by the tests with erlc).
%%
%% erl -proto_dist inet_tls -ssl_dist_optfile F -sname NAME -setcookie C -pa DIR \
%%     -run pj_tls_peer main PYNODE SCENARIO
%%
%% starts a gen_server registered as pj_counter and an echo process registered as agent, prints
%% "PROTO <tls|tcp>" and READY, runs SCENARIO against the Python node PYNODE, prints
%% "RESULT <term>", then serves until it gets 'stop' (or two minutes pass) and halts.
-module(pj_tls_peer).
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
    Proto = case init:get_argument(proto_dist) of {ok, [["inet_tls"]]} -> tls; _ -> tcp end,
    io:format("PROTO ~w~nREADY~n", [Proto]),
    Result = (catch scenario(list_to_atom(ScenarioS), Py)),
    io:format("RESULT ~w~n", [Result]),
    receive stop -> ok after 120000 -> ok end,
    halt().

agent() ->
    receive
        {From, echo, X} -> From ! X;
        {From, count, N} -> From ! {counted, count(N)};
        _ -> ok
    end,
    agent().

count(0) -> ok;
count(N) -> receive {seq, _} -> count(N - 1) after 20000 -> {missing, N} end.

scenario(idle, _Py) -> idle;
scenario(ping, Py) -> net_adm:ping(Py);
scenario(calls, Py) ->
    Pong = net_adm:ping(Py),
    {echo, Py} ! {self(), {hello, <<"over tls">>, [1, 2.5]}},
    Echo = receive {hello, _, _} = E -> E after 10000 -> timeout end,
    One = gen_server:call({counter, Py}, inc),
    gen_server:cast({counter, Py}, {add, 5}),
    Six = gen_server:call({counter, Py}, get),
    Sum = rpc:call(Py, pyexample, add, [1, 2]),
    Erpc = erpc:call(Py, pyexample, echo, [{x, "y"}], 10000),
    Back = erpc:call(Py, pyexample, rpc_back, [node(), lists, reverse, [[1, 2, 3]]], 10000),
    {ok, Info} = net_kernel:node_info(Py),
    {address, {net_address, _, _, Proto, _}} = lists:keyfind(address, 1, Info),
    {Pong, Echo, One, Six, Sum, Erpc, Back, Proto};
scenario(order, Py) ->
    N = 10000,
    [{echo, Py} ! {self(), {seq, I}} || I <- lists:seq(1, N)],
    collect(1, N).

collect(I, N) when I > N -> {ok, N};
collect(I, N) ->
    receive
        {seq, I} -> collect(I + 1, N);
        {seq, J} -> {out_of_order, I, J}
    after 10000 -> {missing, I}
    end.
