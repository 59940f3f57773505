#!/usr/bin/env escript
%% -*- erlang -*-
%% Prints OTP's own encodings of a broad set of terms, one per line, for tests/term/test_otp.py:
%%   t Name Hex            term_to_binary(T, [{minor_version, 2}])
%%   z Name HexZ HexPlain  the same term compressed, and not
%%   o Name HexIn HexOut   bytes in an old or non-canonical form, and OTP's re-encoding of them
-mode(compile).

main(_) ->
    [emit(Name, T) || {Name, T} <- terms()],
    [emit_compressed(Name, T) || {Name, T} <- compressed_terms()],
    [emit_old(Name, In) || {Name, In} <- old_forms()],
    ok.

enc(T) -> term_to_binary(T, [{minor_version, 2}]).

hex(B) -> binary:encode_hex(B).

emit(Name, T) ->
    io:format("t ~s ~s~n", [Name, hex(enc(T))]).

emit_compressed(Name, T) ->
    io:format("z ~s ~s ~s~n", [Name, hex(term_to_binary(T, [compressed, {minor_version, 2}])),
                               hex(enc(T))]).

emit_old(Name, In) ->
    io:format("o ~s ~s ~s~n", [Name, hex(In), hex(enc(binary_to_term(In)))]).

deep_tuple(0, Acc) -> Acc;
deep_tuple(N, Acc) -> deep_tuple(N - 1, {Acc}).

deep_list(0, Acc) -> Acc;
deep_list(N, Acc) -> deep_list(N - 1, [Acc]).

terms() ->
    Self = self(),
    Ref = make_ref(),
    Alias = alias(),
    [Port | _] = erlang:ports(),
    N = byte_size(term_to_binary(Self)),
    Closure = fun(X) -> X + N end,
    NoFree = fun() -> ok end,
    Rich = fun(A, B) -> {A, B, Self, Ref, [N], #{k => Self}, <<"bin">>} end,
    Node = <<"other@host">>,
    NodeAtom = <<119, (byte_size(Node)), Node/binary>>,
    ExtPid = binary_to_term(<<131, 88, NodeAtom/binary, 1:32, 2:32, 16#FFFFFFFF:32>>),
    ExtPidBig = binary_to_term(<<131, 88, NodeAtom/binary, 16#FFFFFFFF:32, 16#FFFFFFFF:32, 7:32>>),
    ExtRef3 = binary_to_term(<<131, 90, 3:16, NodeAtom/binary, 16#FFFFFFFE:32, 1:32, 2:32, 3:32>>),
    ExtRef5 = binary_to_term(<<131, 90, 5:16, NodeAtom/binary, 9:32, 1:32, 2:32, 3:32, 4:32, 5:32>>),
    ExtPort = binary_to_term(<<131, 89, NodeAtom/binary, 5:32, 16#FFFFFFFF:32>>),
    ExtPortV4 = binary_to_term(<<131, 120, NodeAtom/binary, (1 bsl 40):64, 3:32>>),
    ExtPortMax = binary_to_term(<<131, 120, NodeAtom/binary, (1 bsl 64 - 1):64, 3:32>>),
    BigMap = maps:from_list([{list_to_atom("key" ++ integer_to_list(I)), I} || I <- lists:seq(1, 40)]),
    IntMap = maps:from_list([{I, I * I} || I <- lists:seq(-50, 150)]),
    BinMap = maps:from_list([{integer_to_binary(I), I} || I <- lists:seq(1, 1000)]),
    [{"small_int_0", 0}, {"small_int_255", 255}, {"int_256", 256}, {"int_neg1", -1},
     {"int_max32", 2147483647}, {"int_min32", -2147483648},
     {"big_2_31", 2147483648}, {"big_neg_2_31_minus1", -2147483649},
     {"big_2_64", 1 bsl 64}, {"big_neg_2_64", -(1 bsl 64)},
     {"big_255_bytes", 1 bsl 2039}, {"big_256_bytes", 1 bsl 2040},
     {"big_10000_bits", -(1 bsl 10000) + 12345}, {"big_huge", 1 bsl 80000 - 1},
     {"float_0", 0.0}, {"float_neg0", -0.0}, {"float_1_5", 1.5}, {"float_max", 1.7976931348623157e308},
     {"float_denormal", 5.0e-324}, {"float_pi", math:pi()}, {"float_neg", -123.456e-7},
     {"atom_ok", ok}, {"atom_empty", ''}, {"atom_true", true}, {"atom_false", false},
     {"atom_undefined", undefined}, {"atom_latin1", 'h\x{e9}llo'},
     {"atom_255_ascii", list_to_atom(lists:duplicate(255, $a))},
     {"atom_255_emoji", list_to_atom(lists:duplicate(255, 16#1F600))},
     {"atom_127_two_byte", list_to_atom(lists:duplicate(127, 16#E9))},
     {"atom_128_two_byte", list_to_atom(lists:duplicate(128, 16#E9))},
     {"bin_empty", <<>>}, {"bin_abc", <<"abc">>},
     {"bin_all_bytes", list_to_binary(lists:seq(0, 255))},
     {"bin_100k", binary:copy(list_to_binary(lists:seq(0, 255)), 400)},
     {"bits_1", <<1:1>>}, {"bits_3", <<5:3>>}, {"bits_7", <<127:7>>}, {"bits_long", <<"abc", 3:2>>},
     {"tuple_empty", {}}, {"tuple_1", {a}}, {"tuple_mixed", {ok, 1, <<"x">>, [1, 2], 2.5}},
     {"tuple_255", list_to_tuple(lists:seq(1, 255))}, {"tuple_256", list_to_tuple(lists:seq(1, 256))},
     {"nil", []}, {"string_abc", "abc"}, {"string_latin1", "h\x{e9}llo"},
     {"string_with_zero", [0, 1, 0]},
     {"string_65535", lists:duplicate(65535, 7)}, {"list_65536_small", lists:duplicate(65536, 7)},
     {"list_seq_70000", lists:seq(1, 70000)}, {"list_unicode", [1000, 2000, 16#1F600]},
     {"list_256", [256]}, {"list_neg", [-1]}, {"list_mixed", [1, a, <<"b">>, 2.0, {c}]},
     {"list_nested", [[1], [2, [3, []]], []]}, {"list_of_nil", [[]]},
     {"list_string_then_big", [1, 2, 300]},
     {"improper_atom", [a | b]}, {"improper_ints", [1, 2 | 3]},
     {"improper_alias_ref", [alias | Alias]}, {"improper_string_head", [$a, $b | <<"c">>]},
     {"improper_float", [1 | 2.5]},
     {"map_empty", #{}}, {"map_small", #{a => 1, <<"b">> => [2], 3 => {c}}},
     {"map_40_atoms", BigMap}, {"map_ints", IntMap}, {"map_1000_bins", BinMap},
     {"map_compound_keys", #{[1, 2] => a, {1, [2]} => b, #{x => [y]} => c, [] => d, {} => e,
                             [a | b] => f, <<"k">> => g, [[1], #{}] => h}},
     {"map_python_equal_keys", #{1 => a, 1.0 => b, true => c, 0 => d, 0.0 => e, false => f}},
     {"map_nested", #{a => #{b => #{c => [#{}]}}}},
     {"map_float_keys", #{1.5 => x, 2.0 => y, 2 => z}},
     {"pid_self", Self}, {"pid_ext", ExtPid}, {"pid_ext_big", ExtPidBig},
     {"ref_local", Ref}, {"ref_alias", Alias}, {"ref_ext3", ExtRef3}, {"ref_ext5", ExtRef5},
     {"port_local", Port}, {"port_ext", ExtPort}, {"port_v4", ExtPortV4}, {"port_v4_max", ExtPortMax},
     {"fun_closure", Closure}, {"fun_no_free", NoFree}, {"fun_rich", Rich},
     {"fun_export", fun lists:map/2}, {"fun_export_bif", fun erlang:self/0},
     {"fun_export_arity0", fun erlang:node/0},
     {"call_tag", {'$gen_call', {Self, [alias | Alias]}, {get, key}}},
     {"deep_tuple_100000", deep_tuple(100000, {})},
     {"deep_list_10000", deep_list(10000, [])},
     {"everything", {ok, [#{k => [Self, Ref, Port]}], <<"x">>, <<1:2>>, [a | b], Closure,
                     fun lists:map/2, -(1 bsl 300), 'h\x{e9}', 3.25, "str"}}].

compressed_terms() ->
    [{"zc_list", lists:duplicate(100, 1)},
     {"zc_atoms", lists:duplicate(500, hello)},
     {"zc_small", <<"ab">>},
     {"zc_random", list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, 64)])},
     {"zc_map", maps:from_list([{I, <<"value">>} || I <- lists:seq(1, 300)])}].

old_forms() ->
    [{"old_atom_ext", <<131, 100, 0, 2, "ok">>},
     {"old_small_atom_ext", <<131, 115, 2, "ok">>},
     {"old_atom_latin1", <<131, 100, 0, 5, "h", 233, "llo">>},
     {"old_atom_true", <<131, 100, 0, 4, "true">>},
     {"old_pid_ext", <<131, 103, 100, 0, 3, "a@b", 1:32, 2:32, 3:8>>},
     {"old_port_ext", <<131, 102, 100, 0, 3, "a@b", 9:32, 2:8>>},
     {"old_reference_ext", <<131, 101, 100, 0, 3, "a@b", 77:32, 1:8>>},
     {"old_new_reference_ext", <<131, 114, 3:16, 100, 0, 3, "a@b", 2:8, 1:32, 2:32, 3:32>>},
     {"old_new_port_big_id", <<131, 89, 119, 3, "a@b", 16#10000000:32, 2:32>>},
     {"old_v4_port_small_id", <<131, 120, 119, 3, "a@b", 5:64, 2:32>>},
     {"old_float_ext", <<131, 99, "1.50000000000000000000e+00", 0, 0, 0, 0, 0>>},
     {"old_bit_binary_8", <<131, 77, 2:32, 8, 1, 2>>},
     {"old_small_big_small", <<131, 110, 1, 0, 5>>},
     {"old_small_big_int", <<131, 110, 2, 1, 0, 1>>},
     {"old_integer_small", <<131, 98, 0:32>>},
     {"old_list_of_bytes", <<131, 108, 2:32, 97, 1, 97, 2, 106>>},
     {"old_large_tuple_small", <<131, 105, 1:32, 97, 1>>},
     {"old_list_tail_list", <<131, 108, 1:32, 97, 1, 107, 0, 1, 2>>}].
