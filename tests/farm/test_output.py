"""Workers' output lines: splitting (pure), the slot prefix, and stdout lines around stderr's bar."""

from __future__ import annotations

import io

from philipjose.farm.console import Console
from philipjose.farm.output import LineSplitter, prefixed, write_stdout_line


def test_lines_split_across_reads_and_the_unended_last_line() -> None:
    lines = LineSplitter()
    assert lines.feed(b"one\ntw") == ["one"]
    assert lines.feed(b"o\r\nthr") == ["two"]
    assert lines.feed(b"ee\n\nfour") == ["three", ""]
    assert lines.feed(b"") == ["four"]
    assert lines.feed(b"") == []


def test_bad_utf8_is_replaced_and_long_lines_are_cut() -> None:
    lines = LineSplitter(max_line=4)
    assert lines.feed(b"\xff\xfeok\n") == ["\ufffd\ufffdok"]
    assert lines.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert lines.feed(b"") == ["ij"]


def test_prefix_names_the_slot() -> None:
    assert prefixed("w3", "hello") == "[w3] hello"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stdout_lines_clear_and_redraw_the_bar_on_a_shared_terminal() -> None:
    out, err = _Terminal(), _Terminal()
    bar = Console(err)
    bar.status("[###   ] 3/6")
    bar.write_line("[w0] hi", stream=out)
    assert out.getvalue() == "[w0] hi\n"
    assert err.getvalue() == "\r[###   ] 3/6" + "\r" + " " * 12 + "\r" + "[###   ] 3/6"


def test_stdout_lines_to_a_file_leave_the_bar_alone() -> None:
    out, err = io.StringIO(), _Terminal()
    write_stdout_line("[w1] x", stdout=out, stderr=err)
    write_stdout_line("[w1] y", stdout=out, stderr=err)
    assert out.getvalue() == "[w1] x\n[w1] y\n"
    assert err.getvalue() == ""
