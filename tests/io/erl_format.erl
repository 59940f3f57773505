%% Formats each {Fmt, Args} of a term file with io_lib:format/2 and writes the results as a term:
%% {ok, UTF-8 binary} or error. Used by tests/io/test_format_erl.py.
-module(erl_format).
-export([main/1]).

main([In, Out]) ->
    {ok, Bin} = file:read_file(In),
    Cases = binary_to_term(Bin),
    Results = [one(Fmt, Args) || {Fmt, Args} <- Cases],
    ok = file:write_file(Out, term_to_binary(Results)).

one(Fmt, Args) ->
    try unicode:characters_to_binary(io_lib:format(Fmt, Args)) of
        B when is_binary(B) -> {ok, B}
    catch _:_ -> error
    end.
