%% sys messages and supervisor calls from a real erl to a philipjose node, each case run against an
%% Erlang gen_server/supervisor of this node too, with the outcomes compared (tests/interop/test_sys_erl.py).
%%
%% erl -sname NAME -setcookie C -pa DIR -run pj_sys main PYNODE
%%
%% registers `counter` (a gen_server whose state is #{<<"n">> => N}, like the Python example's
%% Counter), `pj_counter` (another one, for the Python side's pj.sys calls) and `erl_top` (a supervisor with one child `worker`), prints READY, runs the checks
%% against {counter, PYNODE} and {app_top, PYNODE}, printing "CHECK Name ok" or "CHECK Name BAD ...",
%% prints DONE and waits for 'stop' (or two minutes).
-module(pj_sys).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, code_change/3, start_worker/0, sup_init/0]).

init(sup) -> {ok, {#{}, [#{id => worker, start => {pj_sys, start_worker, []}, modules => [pj_sys]}]}};
init(N) -> {ok, #{<<"n">> => N}}.
handle_call(inc, _From, #{<<"n">> := N}) -> {reply, N + 1, #{<<"n">> => N + 1}};
handle_call(get, _From, #{<<"n">> := N} = S) -> {reply, N, S}.
handle_cast(_, S) -> {noreply, S}.
code_change(_Old, S, _Extra) -> {ok, S}.

start_worker() -> {ok, spawn_link(fun() -> receive _ -> ok end end)}.

%% The supervisor's callback module is this one too (init(sup)); supervisor's init/1 is ours.
sup_init() -> supervisor:start_link({local, erl_top}, ?MODULE, sup).

main([PyS]) ->
    Py = list_to_atom(PyS),
    {ok, _} = gen_server:start({local, counter}, ?MODULE, 0, []),
    {ok, _} = gen_server:start({local, pj_counter}, ?MODULE, 0, []),  % for pj.sys from Python
    {ok, _} = sup_init(),
    unlink(whereis(erl_top)),
    register(main, self()),
    io:format("READY~n"),
    gen_server_checks({counter, Py}, counter),
    supervisor_checks({app_top, Py}, erl_top, Py),
    io:format("DONE~n"),
    receive stop -> ok after 120000 -> ok end,
    halt().

check(Name, F) ->
    Outcome = try F() of
        true -> "ok";
        Other -> io_lib:format("BAD ~0p", [Other])
    catch
        Class:Reason -> io_lib:format("BAD ~0p", [{Class, Reason}])
    end,
    io:format("CHECK ~s ~s~n", [Name, Outcome]).

%% The same call on the Python and the Erlang target: equal once pids (and the two callback modules'
%% names) are normalised, and not an exception on either side unless both raise alike.
same(Name, F, Py, Erl) ->
    check(Name, fun() ->
        A = norm(catch F(Py)),
        B = norm(catch F(Erl)),
        case A =:= B of
            true -> true;
            false -> {python, A, erlang, B}
        end
    end).

norm(P) when is_pid(P) -> pid;
norm(pysup) -> mod;
norm(pj_sys) -> mod;
norm({'EXIT', {undef, [Top | _]}}) -> {'EXIT', {undef, [Top]}};
norm({'EXIT', {Reason, _Where}}) -> {'EXIT', norm(Reason)};
norm(T) when is_tuple(T) -> list_to_tuple([norm(E) || E <- tuple_to_list(T)]);
norm(L) when is_list(L) -> [norm(E) || E <- L];
norm(M) when is_map(M) -> maps:from_list([{norm(K), norm(V)} || {K, V} <- maps:to_list(M)]);
norm(X) -> X.

status_items(Ref) ->
    {status, Pid, {module, gen_server}, [_PDict, SysState, Parent, Debug, Misc]} = sys:get_status(Ref),
    {Pid =:= Parent, SysState, Debug, Misc}.

gen_server_checks(P, E) ->
    Both = fun(Name, F) -> same(Name, F, P, E) end,
    Both("gen_server_call", fun(R) -> [gen_server:call(R, inc), gen_server:call(R, inc)] end),
    Both("get_state", fun(R) -> sys:get_state(R) end),
    check("get_state_is_the_map", fun() -> sys:get_state(P, 5000) =:= #{<<"n">> => 2} end),
    Both("get_status", fun status_items/1),
    check("get_status_header", fun() ->
        {_, _, _, [_, _, _, _, [{header, H} | _]]} = sys:get_status(P),
        H =:= "Status for generic server counter"
    end),
    Both("change_code_running", fun(R) -> sys:change_code(R, pj_sys, undefined, []) end),
    Both("suspend", fun(R) -> sys:suspend(R) end),
    Both("call_while_suspended", fun(R) -> gen_server:call(R, get, 300) end),
    Both("get_status_suspended", fun status_items/1),
    Both("change_code_suspended", fun(R) -> sys:change_code(R, pj_sys, undefined, []) end),
    Both("resume", fun(R) -> sys:resume(R) end),
    Both("call_after_resume", fun(R) -> gen_server:call(R, get, 5000) end),
    Both("unknown_system_msg", fun(R) -> gen:call(R, system, foo) end),
    Both("log_get", fun(R) -> sys:log(R, get) end),
    Both("statistics_get", fun(R) -> sys:statistics(R, get) end),
    Both("trace_false", fun(R) -> sys:trace(R, false) end),
    Both("no_debug", fun(R) -> sys:no_debug(R) end),
    Both("unknown_debug", fun(R) -> gen:call(R, system, {debug, nonsense}) end),
    check("replace_state_with_an_erlang_fun", fun() ->
        case catch sys:replace_state(P, fun(S) -> S end) of
            {'EXIT', {{callback_failed, {gen_server, system_replace_state}, {error, {badfun, F}}}, _}} ->
                is_function(F, 1) andalso sys:get_state(P) =:= #{<<"n">> => 2};
            Other -> Other
        end
    end),
    Both("terminate", fun(R) ->
        Ref = monitor(process, R),
        ok = sys:terminate(R, normal),
        receive {'DOWN', Ref, process, _, Reason} -> Reason after 5000 -> no_down end
    end).

supervisor_checks(P, E, Py) ->
    Both = fun(Name, F) -> same(Name, F, P, E) end,
    Mod = fun(R) -> case R of {_, Py} -> pysup; _ -> pj_sys end end,
    Spec = fun(R, Id, Extra) -> maps:merge(#{id => Id, start => {Mod(R), start_worker, []}}, Extra) end,
    Bad = fun(Extra) -> fun(R) -> supervisor:start_child(R, maps:merge(#{id => x, start => {a, b, []}}, Extra)) end end,
    Both("which_children", fun(R) -> supervisor:which_children(R) end),
    Both("count_children", fun(R) -> supervisor:count_children(R) end),
    Both("terminate_child_not_found", fun(R) -> supervisor:terminate_child(R, nope) end),
    Both("restart_child_running", fun(R) -> supervisor:restart_child(R, worker) end),
    Both("delete_child_running", fun(R) -> supervisor:delete_child(R, worker) end),
    Both("terminate_child", fun(R) -> supervisor:terminate_child(R, worker) end),
    Both("which_children_terminated", fun(R) -> supervisor:which_children(R) end),
    Both("terminate_child_again", fun(R) -> supervisor:terminate_child(R, worker) end),
    Both("restart_child", fun(R) -> supervisor:restart_child(R, worker) end),
    Both("start_child_already_started", fun(R) -> supervisor:start_child(R, Spec(R, worker, #{})) end),
    Both("start_child", fun(R) ->
        supervisor:start_child(R, Spec(R, w2, #{restart => temporary, shutdown => 100}))
    end),
    Both("start_child_tuple_spec", fun(R) ->
        supervisor:start_child(R, {w3, {Mod(R), start_worker, []}, transient, brutal_kill, worker, [Mod(R)]})
    end),
    Both("start_child_undef", fun(R) -> supervisor:start_child(R, #{id => w4, start => {nomod, f, [1]}}) end),
    Both("missing_id", fun(R) -> supervisor:start_child(R, #{start => {a, b, []}}) end),
    Both("missing_start", fun(R) -> supervisor:start_child(R, #{id => x}) end),
    Both("invalid_mfa", Bad(#{start => foo})),
    Both("invalid_mfa_args", Bad(#{start => {a, b, c}})),
    Both("invalid_restart_type", Bad(#{restart => bad})),
    Both("invalid_shutdown", Bad(#{shutdown => -1})),
    Both("invalid_child_type", Bad(#{type => bad})),
    Both("invalid_modules", Bad(#{modules => bad})),
    Both("bad_combination", Bad(#{significant => true, restart => transient})),
    Both("invalid_child_spec", fun(R) -> supervisor:start_child(R, 42) end),
    Both("short_tuple_spec", fun(R) -> supervisor:start_child(R, {x, {a, b, []}, permanent, 5000, worker}) end),
    Both("get_childspec", fun(R) -> supervisor:get_childspec(R, w2) end),
    Both("get_childspec_not_found", fun(R) -> supervisor:get_childspec(R, nope) end),
    Both("count_children_more", fun(R) -> supervisor:count_children(R) end),
    Both("which_children_more", fun(R) -> supervisor:which_children(R) end),
    Both("terminate_temporary", fun(R) ->
        [ok, ok] = [supervisor:terminate_child(R, w2), supervisor:terminate_child(R, w3)],
        supervisor:which_children(R)
    end),
    Both("delete_child", fun(R) ->
        [ok, ok, ok] = [supervisor:delete_child(R, w3), supervisor:terminate_child(R, worker),
                        supervisor:delete_child(R, worker)],
        {supervisor:which_children(R), supervisor:delete_child(R, worker)}
    end),
    Both("sys_suspend_resume", fun(R) ->
        ok = sys:suspend(R),
        Blocked = (catch gen_server:call(R, count_children, 300)),
        {_, SysState, _, _} = status_items(R),
        ok = sys:resume(R),
        {Blocked, SysState, supervisor:count_children(R)}
    end),
    check("sys_get_status_supervisor", fun() ->
        {_, running, [], Misc} = status_items(P),
        {supervisor, [{"Callback", 'philipjose.supervisors'}]} =:= lists:keyfind(supervisor, 1, Misc)
    end),
    check("sys_get_state_supervisor", fun() ->
        State = sys:get_state(P),
        element(1, State) =:= state andalso element(2, State) =:= {local, app_top}
            andalso element(3, State) =:= one_for_one
    end),
    check("get_callback_module", fun() -> supervisor:get_callback_module(P) =:= 'philipjose.supervisors' end).
