"""Hypothesis properties of the term codec: round trips, stable bytes, offsets, compression."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from philipjose.term import binary_to_term, decode, term_to_binary
from tests.term.strategies import terms

# The recursive strategies have huge reprs; hypothesis warns when it builds one for a report.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@settings(max_examples=100, deadline=None)
@given(terms)
def test_decode_inverts_encode(term: Any) -> None:
    data = term_to_binary(term)
    assert binary_to_term(data) == term


@settings(max_examples=100, deadline=None)
@given(terms)
def test_re_encoding_is_byte_exact(term: Any) -> None:
    data = term_to_binary(term)
    assert term_to_binary(binary_to_term(data)) == data
    assert binary_to_term(bytearray(data)) == binary_to_term(memoryview(data))


@settings(max_examples=60, deadline=None)
@given(terms, st.integers(0, 9), st.booleans())
def test_compressed_round_trip(term: Any, level: int, use_true: bool) -> None:
    data = term_to_binary(term, compressed=True if use_true else level)
    assert binary_to_term(data) == term
    assert len(data) <= len(term_to_binary(term))


@settings(max_examples=60, deadline=None)
@given(terms, terms, st.binary(max_size=8), st.binary(max_size=8))
def test_decode_at_offset(first: Any, second: Any, prefix: bytes, suffix: bytes) -> None:
    a = term_to_binary(first)
    b = term_to_binary(second)
    frame = prefix + a + b + suffix
    value, end = decode(frame, len(prefix))
    assert value == first and end == len(prefix) + len(a)
    value, end = decode(memoryview(frame), end)
    assert value == second and end == len(frame) - len(suffix)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(0, 255)), max_size=300))
def test_integer_runs(values: list[int]) -> None:
    # Long lists of INTEGER_EXT / SMALL_INTEGER_EXT take the run fast path.
    assert binary_to_term(term_to_binary(values)) == values
    assert binary_to_term(term_to_binary(tuple(values))) == tuple(values)
    as_map = {i: v for i, v in enumerate(values)}
    assert binary_to_term(term_to_binary(as_map)) == as_map
