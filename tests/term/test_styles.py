"""TermStyle (``binaries="str"``, ``none="nil"``): what a node shows of decoded terms and sends, and
that a decoded term re-encodes to the same bytes in every style."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from philipjose.term import Atom, ImproperList, binary_to_term, term_to_binary
from philipjose.term.styles import DEFAULT_STYLE, TermStyle
from philipjose.term.types import ExportFun, List, Map
from tests.term.strategies import terms

STYLES = [TermStyle("str", "undefined"), TermStyle("bytes", "nil"), TermStyle("str", "nil")]
NIL = Atom("nil")


def test_the_default_changes_nothing() -> None:
    assert not DEFAULT_STYLE.converts_input and not DEFAULT_STYLE.converts_output
    term = [b"x", NIL, None]
    assert DEFAULT_STYLE.decoded(term) == term and DEFAULT_STYLE.encoding(term) is term


def test_binaries_and_nil_everywhere_in_a_term() -> None:
    style = TermStyle("str", "nil")
    term = {
        b"a": [b"x", (NIL, b"\xff")],
        List([b"k", NIL]): ImproperList((b"h",), b"t"),
        Map({b"q": 1}): Atom("undefined"),
        NIL: ExportFun("m", "f", 1),
    }
    shown = style.decoded(term)
    assert shown == {
        "a": ["x", (None, b"\xff")],
        List(["k", None]): ImproperList(("h",), "t"),
        Map({"q": 1}): Atom("undefined"),
        None: ExportFun("m", "f", 1),
    }
    assert term_to_binary(style.encoding(shown)) == term_to_binary(term)
    assert style.encoding((None, [None], {None: None})) == (NIL, [NIL], {NIL: NIL})
    assert TermStyle("str").encoding((None,)) == (None,)  # None goes out as undefined, by the codec


def test_deep_terms_do_not_recurse() -> None:
    deep: list[Any] = [b"x"]
    for _ in range(100_000):
        deep = [deep]
    shown = TermStyle("str", "nil").decoded(deep)
    for _ in range(100_000):
        shown = shown[0]
    assert shown == ["x"]


@pytest.mark.parametrize(("binaries", "none"), [("text", "nil"), ("str", None), ("bytes", "null")])
def test_bad_values_are_refused(binaries: Any, none: Any) -> None:
    with pytest.raises(ValueError):
        TermStyle(binaries, none)


@given(terms, st.sampled_from(STYLES))
def test_decoded_terms_reencode_to_the_same_bytes(term: Any, style: TermStyle) -> None:
    data = term_to_binary(term)
    assert term_to_binary(style.encoding(style.decoded(binary_to_term(data)))) == data
