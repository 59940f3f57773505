"""The (format, arguments) cases that tests/io check against a real erl's io_lib:format/2."""

from __future__ import annotations

from typing import Any

from philipjose.term import Atom, BitString, ExportFun, ImproperList

A = Atom


def s(text: str) -> list[int]:
    """An Erlang string (a list of character codes)."""
    return [ord(c) for c in text]


_FLOATS = [1.0, 0.1, 1.0e15, 1.0e16, 1.0e20, 1.0e21, 1.0e22, 123456789012345680.0, 1.0e-3, 1.0e-4,
           1.0e-5, -0.0, 3.14159, 2.5e-300, 1.7976931348623157e308, 100.0, 1.5e10, 12345.678, -2.5,
           5e-324, 0.30000000000000004, 9.999999e22, 1.0e100, 123.456, 2.0 ** 60, 0.5, 1e7, 1.2e-7]

_ATOMS = [A("a"), A("A"), A("a b"), A("\n"), A(""), A("é"), A("ä"), A("aé"), A("Éa"), A("a@b"),
          A("a.b"), A("_a"), A("\\"), A("it's"), A("\x01\x7f\u20ac"), A("ß"), A("ÿ"), A("a÷"),
          A("case"), A("andalso"), A("ok"), A("nil"), A("x\x80"), A("\u20ac"), A("aB9_@")]

_TERMS: list[Any] = [
    s("a\nb\tc\x1b\"\\"), [1, 127, 8364], s("é"), [200], b"abc\n", bytes([200]), bytes([1, 2]),
    "é".encode(), BitString(b"\x20", 3), BitString(b"ab\x20", 3), {A("a"): 1, b"b": [2]},
    ImproperList((A("a"),), A("b")), (), [], b"", ExportFun("lists", "map", 2),
    ImproperList((97,), A("b")), [127], [7], [97, 0], "€".encode(), s("é€"), (A("ok"), 1),
    (1, 2, (3, [4, (5,)])), {A("k"): {A("n"): [1, 2]}}, [[]], [s("")], True, False, -12,
    2 ** 70, [s("ab"), b"cd", 7], ImproperList((1, 2), 3), b"\x00\xff",
]

_BIG: list[Any] = [
    list(range(1, 41)),
    (A("ok"), [(A("aaaaaaaaaaaaaaa"), A("bbbbbbbbbbbbbbbbbbbbb")), (A("ccccccccccccccccccccc"), A("ddddddddddddddddd")),
               (A("eeeeeeeeeeeeeeeeeeeee"), A("fffffffffffffffffff"))]),
    [(A("aaaaaaaaaaaaaaa"), A("bbbbbbbbbbbbbbbbbbbbb")), (A("ccccccccccccccccccccc"), A("ddddddddddddddddd")),
     (A("eeeeeeeeeeeeeeeeeeeee"), A("fffffffffffffffffff"))],
    {A("aaaaaaaaaaaaaaaaaaaa"): A("bbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
     A("ccccccccccccccccccccccccc"): A("ddddddddddddddddddddddddd"), A("e"): A("f")},
    [s("abcdef")] * 30,
    [s("a" * 100)],
    (1, 2, 3, list(range(1, 31)), b"a" * 73),
    bytes(range(256)),
    {A(f"key{i}"): list(range(i)) for i in range(12)},
    (A("error"), (A("badmatch"), list(range(50))), [(A("mod"), A("fun"), 2, [(A("file"), s("src/mod.erl")), (A("line"), 42)])]),
    [(A("state"), A("running"), list(range(20)), {A("pid_count"): 12345, A("name"): s("worker")})] * 3,
    (A("very_long_tag_name_for_a_tuple_here"), list(range(40)), s("x" * 30)),
    ImproperList(tuple(range(40)), A("tail_atom_here")),
    [{A("a"): (A("b"), list(range(30)))}],
    (A("t"), {A("a" * 30): list(range(25)), A("b"): 1}),
    [bytes(range(100))],
    [[list(range(12)), list(range(12))], [list(range(12))] * 4],
]

CASES: list[tuple[Any, list[Any]]] = [
    *((s("~w"), [x]) for x in _FLOATS),
    *((s("~w|~tw|~p|~tp"), [x, x, x, x]) for x in _ATOMS),
    *((s("~w|~p|~tp|~lp"), [x, x, x, x]) for x in _TERMS),
    *((s("~p"), [x]) for x in _BIG),
    *((s("prefix: ~p~n"), [x]) for x in _BIG[:4]),
    *((s("~P|~W"), [x, 4, x, 4]) for x in _BIG[:5] + _TERMS[:12]),
    *((s("~P"), [x, d]) for x in _BIG[:4] for d in (1, 2, 3, 7)),
    (s("~ts|~s"), ["é".encode(), "é".encode()]),
    (s("~ts|~s"), [s("€"), s("ab")]),
    (s("~ts|~s"), [A("abc"), A("abc")]),
    (s("~ts|~s"), [[b"a", 98, s("c")], [b"a", 98]]),
    (s("~s"), [s("€")]),
    (s("~10s|~-10s|~.2s|~10.2s|~10.5.*s|~*s|~.5s|~-*s"), [s("abc")] * 4 + [ord("x"), s("abc"), 5, s("ab"), s("ab"), -6, s("q")]),
    (s("~5c|~5.2c|~c|~-5.2c|~tc|~c"), [97, 98, 99, 100, 8364, 8364]),
    (s("~f|~.2f|~10.3f|~-10.3f|~e|~.3e|~g|~.3g|~g|~g|~e"), [3.14159, 2.5, 2.5, 2.5, 3.14159, 12345.6789, 0.05, 123456.0, 1.0e10, 100.0, 0.0]),
    *((s("~f|~e|~g|~.3f|~.2e|~.2g|~15.4f|~-15.4e"), [x] * 8) for x in _FLOATS),
    (s("~f"), [1]), (s("~.1e"), [1.0]), (s("~.0f"), [2.5]), (s("~.1f"), [0.25]), (s("~.2f"), [1.005]),
    (s("~.1f|~.1f|~.3f"), [0.05, 0.35, 2.0005]),
    (s("~b|~B|~.16B|~.16b|~.2B|~-8.16B|~8.16B|~X|~x|~#|~+|~.36B|~3B|~.16#|~.16+"),
     [-10, 255, 255, 255, 5, 255, 255, 255, s("0x"), -255, s("0x"), 255, 255, 35, 12345, -255, 255]),
    (s("~i~w~~~n|~10w|~-10w|~3w|~10p|~3p"), [A("skip"), A("x"), A("abc"), A("abc"), A("abcdef"), A("abc"), A("abcdef")]),
    (s("~10.5w|~5.3.0B|~5..0B|~5.10.xB|~-5.10.xB"), [A("abcdefgh"), 7, 7, 7, 7]),
    (s("~w ~s~n"), [A("hello"), s("world")]),
    (b"binary format ~w\n", [1]), (A("atom_fmt"), []), ("~ts", ["héllo"]),
    (s("~s"), [A("foo")]), (s("~s"), [[1000]]), (s("~s"), [1]), (s("~w"), []), (s("~w ~w"), [1]),
    (s("~z"), [1]), (s("abc"), [1]), (s("~"), []), (s("~5"), [1]), (s("~c"), [A("a")]),
    (s("~p"), [A("undefined")]), (s("~4n~3~"), []), (s("~-3c"), [120]), (s("~x"), [1, 2]),
    (s("~.1B"), [1]), (s("~.37B"), [1]), (s("~B"), [1.0]), (s("~e"), [1]), (s("~s"), [[-1]]),
    (s("~tp"), [[s("é"), "é".encode(), "€".encode(), bytes([200])]]),
    (s("~p"), [b"a\"b\\c\x7f"]), (s("~p"), [s("tab\there")]),
]
