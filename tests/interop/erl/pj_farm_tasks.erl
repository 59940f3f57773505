%% Erlang tasks for the mixed-farm tests (tests/interop/test_farm_erl.py).
-module(pj_farm_tasks).
-export([where/1, busy_where/1, once_slow/2, wait_file/1, parked/2, gone/1]).

%% Which node ran it.
where(X) -> {node(), X}.

%% As where/1, after 20 ms of work (so that a map is still running when a node is killed).
busy_where(X) -> timer:sleep(20), {node(), X}.

%% The first call given Path (any node) works for 30 s, the others answer {node(), X} at once: a
%% straggler for speculation.
once_slow(Path, X) ->
    case file:open(Path, [write, exclusive]) of
        {ok, File} -> file:close(File), timer:sleep(30000), {node(), X};
        {error, eexist} -> {node(), X}
    end.

%% Returns the contents of the file at Path once it exists (a race's winner that waits for the
%% Python loser to be running).
wait_file(Path) ->
    case file:read_file(Path) of
        {ok, Data} -> Data;
        {error, enoent} -> timer:sleep(10), wait_file(Path)
    end.

%% Registers as Tag, writes Path once running, and waits forever (a loser, a cancelled or timed-out
%% task); a watcher writes the reason it ended with to Path ++ ".down".
parked(Tag, Path) ->
    register(Tag, self()),
    Me = self(),
    spawn(fun() ->
        Ref = monitor(process, Me),
        receive {'DOWN', Ref, process, Me, Reason} ->
            file:write_file(down(Path), io_lib:format("~p", [Reason]))
        end
    end),
    ok = file:write_file(Path, pid_to_list(self())),
    receive after infinity -> ok end.

%% The reason the parked task of Path ended with, once it has (waits up to 20 s).
gone(Path) -> gone(down(Path), 2000).

down(Path) -> iolist_to_binary([Path, ".down"]).

gone(_, 0) -> still_running;
gone(Down, N) ->
    case file:read_file(Down) of
        {ok, Reason} -> binary_to_atom(Reason);
        {error, enoent} -> timer:sleep(10), gone(Down, N - 1)
    end.
