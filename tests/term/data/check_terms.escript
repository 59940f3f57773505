#!/usr/bin/env escript
%% -*- erlang -*-
%% Reads lines "Name<TAB>Hex<TAB>Expr" from the file named on the command line. For each, decodes
%% the bytes with binary_to_term, evaluates Expr (an Erlang expression, or "-" for none) and prints
%%   Name Equal Same
%% where Equal is ok | mismatch | skip (Decoded =:= Expr) and Same is same | differ (whether
%% term_to_binary(Decoded, [{minor_version, 2}]) gives back exactly Hex). A line that does not
%% decode prints "Name badarg badarg".
-mode(compile).

main([Path]) ->
    {ok, Data} = file:read_file(Path),
    Lines = [L || L <- binary:split(Data, <<"\n">>, [global]), L =/= <<>>],
    [check(binary:split(L, <<"\t">>, [global])) || L <- Lines],
    ok.

check([Name, Hex, Expr]) ->
    Bin = binary:decode_hex(Hex),
    case catch binary_to_term(Bin) of
        {'EXIT', _} ->
            io:format("~s badarg badarg~n", [Name]);
        Term ->
            Equal = case Expr of
                        <<"-">> -> skip;
                        _ -> case Term =:= eval(Expr) of true -> ok; false -> mismatch end
                    end,
            Same = case term_to_binary(Term, [{minor_version, 2}]) =:= Bin of
                       true -> same;
                       false -> differ
                   end,
            io:format("~s ~s ~s~n", [Name, Equal, Same])
    end.

eval(Expr) ->
    {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Expr) ++ "."),
    {ok, Exprs} = erl_parse:parse_exprs(Tokens),
    {value, Value, _} = erl_eval:exprs(Exprs, []),
    Value.
