"""The io protocol's pure decisions (philipjose.io.protocol) and io_lib:format on Python values."""

from __future__ import annotations

from typing import Any

import pytest

from philipjose.io import FormatError, format_string
from philipjose.io.protocol import Decision, Options, Read, decide, parse_envelope, read_reply
from philipjose.term import Atom, Pid

A = Atom
OK, EOF = A("ok"), A("eof")


def s(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_envelope() -> None:
    pid = Pid("a@b", 1)
    assert parse_envelope((A("io_request"), pid, 7, A("getopts"))) == (pid, 7, A("getopts"))
    for bad in [(A("io_request"), pid, 7), (A("io_reply"), pid, 7, 1), [A("io_request"), pid, 7, 1], "x"]:
        assert parse_envelope(bad) is None


@pytest.mark.parametrize(
    ("req", "reply", "text"),
    [
        ((A("put_chars"), A("unicode"), [b"a", s("\u20ac"), 10]), OK, "a\u20ac\n"),
        ((A("put_chars"), A("unicode"), "py str"), OK, "py str"),
        ((A("put_chars"), A("latin1"), b"\xe9"), OK, "\xe9"),
        ((A("put_chars"), A("unicode"), "\u00e9".encode()), OK, "\u00e9"),
        ((A("put_chars"), s("old form")), OK, "old form"),
        ((A("put_chars"), A("latin1"), [256]), (A("error"), A("put_chars")), ""),
        ((A("put_chars"), A("unicode"), A("atom")), OK, "atom"),
        ((A("put_chars"), A("unicode"), 12), (A("error"), A("put_chars")), ""),
        ((A("put_chars"), A("unicode"), A("io_lib"), A("format"), [s("~w~n"), [1]]), OK, "1\n"),
        ((A("put_chars"), A("unicode"), A("io_lib"), A("fwrite"), [s("~p"), [s("ab")]]), OK, '"ab"'),
        ((A("put_chars"), A("unicode"), A("io_lib"), A("write"), [(1, s("a"))]), OK, "{1,[97]}"),
        ((A("put_chars"), A("unicode"), A("io_lib"), A("write"), [[1, 2, 3], 2]), OK, "[1|...]"),
        ((A("put_chars"), A("unicode"), A("io_lib"), A("print"), [s("ab")]), OK, '"ab"'),
        ((A("put_chars"), A("unicode"), A("io_lib"), A("nl"), []), OK, "\n"),
        ((A("put_chars"), A("io_lib"), A("format"), [s("~s"), [s("x")]]), OK, "x"),
        (
            (A("put_chars"), A("unicode"), A("io_lib"), A("format"), [s("~d"), [1]]),
            (A("error"), A("format")),
            "",
        ),
        ((A("put_chars"), A("unicode"), A("os"), A("cmd"), [s("ls")]), (A("error"), A("cmd")), ""),
        (
            (A("put_chars"), A("latin1"), A("io_lib"), A("format"), [s("~ts"), [s("\u20ac")]]),
            (A("error"), (A("no_translation"), A("unicode"), A("latin1"))),
            "",
        ),
        ((A("put_chars"), A("utf16"), s("x")), (A("error"), A("request")), ""),
        (A("getopts"), [(A("binary"), False), (A("encoding"), A("unicode"))], ""),
        ((A("get_line"), A("unicode"), s("p> ")), EOF, ""),
        ((A("get_line"), s("p> ")), EOF, ""),
        ((A("get_chars"), A("unicode"), s(""), 3), EOF, ""),
        ((A("get_until"), A("unicode"), s(""), A("erl_scan"), A("tokens"), [1]), EOF, ""),
        ((A("get_geometry"), A("columns")), (A("error"), A("enotsup")), ""),
        ((A("setopts"), [(A("foo"), 1)]), (A("error"), A("enotsup")), ""),
        ((A("setopts"), A("binary")), (A("error"), A("enotsup")), ""),
        (
            (A("requests"), [(A("put_chars"), A("unicode"), s("a")), (A("put_chars"), A("unicode"), s("b"))]),
            OK,
            "ab",
        ),
        (
            (
                A("requests"),
                [(A("put_chars"), A("unicode"), s("a")), A("bogus"), (A("put_chars"), A("unicode"), s("b"))],
            ),
            (A("error"), A("request")),
            "a",
        ),
        (A("bogus"), (A("error"), A("request")), ""),
        ((), (A("error"), A("request")), ""),
        ({1: 2}, (A("error"), A("request")), ""),
    ],
)
def test_decide(req: Any, reply: Any, text: str) -> None:
    d = decide(req, Options())
    assert (d.reply, d.text, d.read) == (reply, text, None)


def test_setopts_changes_the_options_and_getopts_reports_them() -> None:
    d = decide((A("setopts"), [A("binary"), (A("encoding"), A("latin1"))]), Options())
    assert d.reply == OK and d.options == Options(binary=True, encoding="latin1")
    assert decide(A("getopts"), d.options).reply == [(A("binary"), True), (A("encoding"), A("latin1"))]
    back = decide((A("setopts"), [A("list"), (A("binary"), False), (A("encoding"), A("utf8"))]), d.options)
    assert back.options == Options()


def test_reads_with_an_input_ask_for_it_and_reply_in_the_requested_form() -> None:
    opts = Options(has_input=True)
    d = decide((A("get_line"), A("unicode"), s("name? ")), opts)
    assert d == Decision(EOF, "name? ", opts, Read("name? ", None, "unicode"))
    assert read_reply(d.read, "b\u00e9\n", opts) == s("b\u00e9\n")  # type: ignore[arg-type]
    assert read_reply(Read("", 2, "unicode"), "\u00e9x", Options(binary=True)) == "\u00e9x".encode()
    assert read_reply(Read("", 2, "latin1"), "\u00e9x", Options(binary=True)) == b"\xe9x"
    assert read_reply(Read("", None, "latin1"), "\u20ac", opts)[0] == A("error")
    assert read_reply(Read("", None, "unicode"), "", opts) == EOF
    assert read_reply(Read("", None, "unicode"), None, opts) == EOF
    until = decide((A("get_until"), A("unicode"), s(""), A("io_lib"), A("fread"), [s("~d")]), opts)
    assert until.reply == (A("error"), A("enotsup")) and until.read is None
    assert decide((A("requests"), [(A("get_line"), A("unicode"), s(""))]), opts).reply[0] == A("error")


def test_format_takes_python_values_as_their_erlang_forms() -> None:
    assert (
        format_string("~p ~w ~s ~ts", [None, True, "b\u00e9", "b\u00e9"])
        == "undefined true b\u00c3\u00a9 b\u00e9"
    )
    assert format_string("~p", [{"k": (1, 2.5)}]) == '#{<<"k">> => {1,2.5}}'
    assert format_string("~w|~w", [b"ab", bytearray(b"\x01")]) == "<<97,98>>|<<1>>"
    assert format_string(A("plain"), ()) == "plain"
    me = Pid("me@host", 42, 1, 3)
    other = Pid("other@host", 7, 0, 1)
    assert (
        format_string("~w ~w", [me, other], local_node=A("me@host"), node_index=lambda n: 5)
        == "<0.42.1> <5.7.0>"
    )
    with pytest.raises(FormatError):
        format_string("~w", [object()])
    with pytest.raises(FormatError):
        format_string("~w", 1)
    with pytest.raises(FormatError):
        format_string(12, [])
