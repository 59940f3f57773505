"""Fuzzing ``binary_to_term``: whatever the bytes, it returns a term or raises ``DecodeError``.

Inputs are valid encodings of generated terms, then mutated (bytes flipped, inserted, deleted),
truncated and spliced together; and nests built to stress Python's own recursion (deep keys,
duplicate deep keys, deep maps in maps). Anything else escaping (``RecursionError``,
``MemoryError``, ``IndexError``, ``struct.error``, ``TypeError``, ...) fails the test.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from philipjose.term import DecodeError, binary_to_term, decode, term_to_binary
from philipjose.term._decode import CONTAINER_FLOOR
from tests.term.strategies import terms

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_refuses(data: bytes) -> None:
    try:
        value = binary_to_term(data, max_decompressed=1 << 16)
    except DecodeError:
        return
    term_to_binary(value)  # whatever decodes encodes again
    with contextlib.suppress(DecodeError):  # the same, with a container budget
        decode(data, 0, max_decompressed=1 << 16, container_ratio=3)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(term_to_binary(draw(terms), compressed=draw(st.booleans())))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


@_SETTINGS
@given(mutated())
def test_mutated_encodings_decode_or_raise_decode_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@_SETTINGS
@given(terms, terms, st.integers(0, 1000), st.integers(0, 1000))
def test_spliced_encodings_decode_or_raise_decode_error(a: Any, b: Any, i: int, j: int) -> None:
    x, y = term_to_binary(a), term_to_binary(b)
    _decodes_or_refuses(x[: i % (len(x) + 1)] + y[1 + j % len(y) :])


@_SETTINGS
@given(st.binary(max_size=64))
def test_random_bytes_after_the_version_byte(body: bytes) -> None:
    _decodes_or_refuses(b"\x83" + body)
    _decodes_or_refuses(b"\x83P" + struct.pack(">I", len(body) + 3) + zlib.compress(body))


_OPENERS = {
    "tuple": (b"h\x01", b""),
    "list": (b"l\x00\x00\x00\x01", b"j"),
    "map": (b"t\x00\x00\x00\x01a\x00", b""),
    "map-key": (b"t\x00\x00\x00\x01", b"a\x00"),
}


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(sorted(_OPENERS)), st.integers(1, 1_500), st.booleans())
def test_deep_keys_and_duplicate_deep_keys(kind: str, depth: int, duplicate: bool) -> None:
    opener, closer = _OPENERS[kind]
    key = opener * depth + b"a\x01" + closer * depth
    pairs = 2 if duplicate else 1
    data = b"\x83t" + struct.pack(">I", pairs) + (key + b"a\x02") * pairs
    _decodes_or_refuses(data)


@pytest.mark.parametrize("kind", sorted(_OPENERS))
def test_a_map_with_duplicate_keys_2000_deep_raises_decode_error(kind: str) -> None:
    opener, closer = _OPENERS[kind]
    key = opener * 2000 + b"a\x01" + closer * 2000
    data = b"\x83t\x00\x00\x00\x02" + key + b"a\x01" + key + b"a\x02"
    with pytest.raises(DecodeError):
        binary_to_term(data)


def test_container_ratio_bounds_what_a_term_builds() -> None:
    n = 2 * CONTAINER_FLOOR  # past the floor plus one per 3 bytes
    nils = b"\x83l" + struct.pack(">I", n) + b"j" * (n + 1)
    assert len(binary_to_term(nils)) == n  # unlimited by default, as OTP
    with pytest.raises(DecodeError, match="container budget"):
        decode(nils, 0, container_ratio=3)
    # Ordinary data is far within one container per 3 bytes.
    rows = term_to_binary([(i, b"x", [1, 2]) for i in range(10_000)])
    assert len(decode(rows, 0, container_ratio=3)[0]) == 10_000


def test_the_container_floor_lets_ordinary_lists_of_nils_through() -> None:
    """A list of 100,000 empty Erlang strings (one byte of nil each) is ordinary data: within the
    budget's floor (``CONTAINER_FLOOR``), whatever the ratio."""
    strings = term_to_binary([[] for _ in range(100_000)])
    assert decode(strings, 0, container_ratio=3)[0] == [[] for _ in range(100_000)]
