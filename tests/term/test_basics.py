"""Round trips and encoding choices of the term codec on hand-written values."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from philipjose.term import (
    Atom,
    BitString,
    DecodeError,
    EncodeError,
    ExactFloat,
    ExportFun,
    ImproperList,
    List,
    Map,
    Pid,
    Port,
    Reference,
    binary_to_term,
    decode,
    encode,
    term_to_binary,
)
from philipjose.term.codec import decode as codec_decode

ROUND_TRIP: list[Any] = [
    0,
    255,
    256,
    -1,
    2**31 - 1,
    -(2**31),
    2**31,
    -(2**31) - 1,
    2**64,
    -(2**2040),
    2**2048,
    1.5,
    -0.0,
    Atom("ok"),
    Atom("h\u00e9llo"),
    Atom("\u00e9" * 255),
    True,
    False,
    b"",
    b"abc",
    (),
    (1, 2),
    tuple(range(300)),
    [],
    [1, 2, 3],
    [1000, 2],
    [True, False],
    [[]],
    list(range(256)),
    [7] * 70000,
    {},
    {b"a": 1, Atom("x"): [1]},
    {(1, List([2])): 3, List([1]): 4, Map({Atom("k"): 1}): 5},
    ImproperList((1,), 2),
    ImproperList((Atom("alias"),), Reference("a@b", 1, (1, 2, 3))),
    Pid("a@b", 1, 2, 3),
    Pid("a@b", 2**32 - 1, 2**32 - 1, 2**32 - 1),
    Port("a@b", 7, 4),
    Port("a@b", 2**28, 4),
    Port("a@b", 2**64 - 1, 2**32 - 1),
    Reference("a@b", 3, (1, 2, 3)),
    Reference("a@b", 2**32 - 1, (1, 2, 3, 4, 5)),
    BitString(b"\xa0", 3),
    BitString(b"\x01\xfe", 7),
    ExportFun(Atom("lists"), Atom("map"), 2),
]


@pytest.mark.parametrize("term", ROUND_TRIP, ids=lambda t: repr(t)[:40])
def test_round_trip_is_byte_exact(term: Any) -> None:
    data = term_to_binary(term)
    assert data[0] == 131
    back = binary_to_term(data)
    assert back == term
    assert term_to_binary(back) == data
    assert encode(back) == data


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        (0, b"\x83a\x00"),
        (255, b"\x83a\xff"),
        (256, b"\x83b\x00\x00\x01\x00"),
        (-1, b"\x83b\xff\xff\xff\xff"),
        (2**31, b"\x83n\x04\x00\x00\x00\x00\x80"),
        (-(2**40), b"\x83n\x06\x01\x00\x00\x00\x00\x00\x01"),
        (1.5, b"\x83F" + struct.pack(">d", 1.5)),
        (True, b"\x83w\x04true"),
        (None, b"\x83w\tundefined"),
        ("h\u00e9", b"\x83m\x00\x00\x00\x03h\xc3\xa9"),
        (bytearray(b"ab"), b"\x83m\x00\x00\x00\x02ab"),
        ([1, 2], b"\x83k\x00\x02\x01\x02"),
        ([], b"\x83j"),
        ((), b"\x83h\x00"),
        (ImproperList((1,), 2), b"\x83l\x00\x00\x00\x01a\x01a\x02"),
        (Port("n", 5, 1), b"\x83Yw\x01n\x00\x00\x00\x05\x00\x00\x00\x01"),
    ],
)
def test_encoding_choices(term: Any, expected: bytes) -> None:
    assert term_to_binary(term) == expected


def test_atom_is_not_a_string() -> None:
    assert Atom("ok") != "ok"
    assert binary_to_term(term_to_binary("ok")) == b"ok"
    assert binary_to_term(term_to_binary(Atom("ok"))) is Atom("ok")


def test_map_keys_python_would_merge_stay_apart() -> None:
    # #{1 => a, 1.0 => b, true => c}: three keys in Erlang, one in a naive Python dict.
    data = b"\x83t\x00\x00\x00\x03a\x01w\x01aF" + struct.pack(">d", 1.0) + b"w\x01bw\x04truew\x01c"
    value = binary_to_term(data)
    assert value == {1: Atom("a"), ExactFloat(1.0): Atom("b"), Atom("true"): Atom("c")}
    assert term_to_binary(value) == data


def test_decode_at_offset_returns_the_end() -> None:
    first = term_to_binary((Atom("ctrl"), 1))
    second = term_to_binary([1, 2, 3])
    frame = b"p" + first + second
    term, end = codec_decode(frame, 1)
    assert term == (Atom("ctrl"), 1)
    assert end == 1 + len(first)
    term2, end2 = decode(memoryview(frame), end)
    assert term2 == [1, 2, 3]
    assert end2 == len(frame)


@pytest.mark.parametrize("level", [True, 1, 6, 9])
def test_compression_round_trip(level: bool | int) -> None:
    term = [Atom("x")] * 1000
    data = term_to_binary(term, compressed=level)
    assert data[:2] == b"\x83P"
    assert binary_to_term(data) == term


def test_compression_only_when_smaller() -> None:
    assert term_to_binary(b"ab", compressed=True) == term_to_binary(b"ab")
    assert term_to_binary([1] * 100, compressed=0) == term_to_binary([1] * 100)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), object(), {1, 2}, 1j, [float("nan")]]
)
def test_unencodable_values_raise_encode_error(value: Any) -> None:
    with pytest.raises(EncodeError) as info:
        term_to_binary(value)
    assert isinstance(info.value, TypeError)


def test_encode_error_names_the_type() -> None:
    with pytest.raises(EncodeError, match="complex"):
        term_to_binary([1, (2, 3j)])


def test_cycles_raise_encode_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="contains itself"):
        term_to_binary(loop)


def test_deep_nesting_both_ways() -> None:
    deep: Any = ()
    for _ in range(100_000):
        deep = (deep,)
    data = term_to_binary(deep)
    assert len(data) == 1 + 2 * 100_000 + 2
    assert term_to_binary(binary_to_term(data)) == data


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(DecodeError, match="after the term"):
        binary_to_term(term_to_binary(1) + b"\x00")
