"""Hostile input: every malformed, truncated or oversized term raises DecodeError, quickly.

No test here times anything: "quickly" is shown by inputs whose naive handling would allocate
gigabytes, recurse 100,000 deep or do billions of comparisons, which would blow the test timeout.
"""

from __future__ import annotations

import random
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from philipjose.term import (
    MAX_KEY_DEPTH,
    Atom,
    BitString,
    DecodeError,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    binary_to_term,
    decode,
    term_to_binary,
)
from tests.term.strategies import terms

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_FUN = Fun(
    arity=1,
    uniq=bytes(range(16)),
    index=3,
    module=Atom("m"),
    old_index=3,
    old_uniq=12345678,
    pid=Pid("a@b", 1, 0, 2),
    free_vars=(1, [Atom("x")], b"y"),
)

CORPUS: list[Any] = [
    (Atom("ok"), 42),
    [(Atom("row"), 2**31 + 5, b"x" * 32, 1.5, [1, 2, 3]) for _ in range(3)],
    {b"k1": 1, b"k2": [1000, 2000, 3000] * 4, (1, 2): {Atom("n"): -(2**100)}},
    [*range(250, 290), 2**80],
    ImproperList((1, Atom("a")), b"tail"),
    [Pid("a@b", 1, 2, 3), Port("a@b", 2**40, 1), Reference("a@b", 1, (1, 2, 3))],
    [BitString(b"\xff\x80", 1), ExportFun(Atom("m"), Atom("f"), 2), _FUN],
    "h\u00e9llo",
]


def _must_decode_or_fail_cleanly(data: bytes) -> None:
    try:
        value = binary_to_term(data, max_decompressed=1 << 16)
    except DecodeError:
        return
    term_to_binary(value)  # whatever decodes must encode again


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x83",
        b"\x82a\x01",
        b"\x83\x00",
        b"\x83\xff",
        b"\x83l\xff\xff\xff\xff",  # a 6-byte input claiming a list of 4 Gi elements
        b"\x83m\xff\xff\xff\xffab",  # a 4 GiB binary
        b"\x83i\xff\xff\xff\xff",  # a tuple of 4 Gi elements
        b"\x83t\xff\xff\xff\xff",  # a map of 4 Gi pairs
        b"\x83k\xff\xffab",  # a 65535-byte string with 2 bytes
        b"\x83o\xff\xff\xff\xff\x00\x01",  # a bignum of 4 GiB
        b"\x83n\x05\x00\x01",
        b"\x83n\x01\x02\x01",  # bignum sign byte 2
        b"\x83w\x05ab",
        b"\x83v\xff\xffab",
        b"\x83d\x01\x00" + b"a" * 256,  # latin-1 atom of 256 characters
        b"\x83v\x01\x00" + b"a" * 256,  # UTF-8 atom of 256 characters
        b"\x83w\x02\xc3\x28",  # invalid UTF-8
        b"\x83w\x03\xed\xa0\x80",  # an encoded surrogate
        b"\x83F" + struct.pack(">d", float("nan")),
        b"\x83F" + struct.pack(">d", float("inf")),
        b"\x83F\x00\x00",
        b"\x83c" + b"nan".ljust(31, b"\x00"),
        b"\x83c" + b"garbage".ljust(31, b"\x00"),
        b"\x83R\x00",  # ATOM_CACHE_REF outside a distribution header
        b"\x83u\x00\x00\x00\x00",  # FUN_EXT, removed in OTP 23
        b"\x83y\x00",  # LOCAL_EXT
        b"\x83\x83a\x01",
        b"\x83h\x02a\x01P\x00\x00\x00\x01x\x9c",  # nested compressed tag
        b"\x83Z\x00\x00w\x01a\x00\x00\x00\x01",  # reference with no id words
        b"\x83Z\x00\x06w\x01a\x00\x00\x00\x01" + b"\x00" * 24,  # reference with 6 id words
        b"\x83Xa\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01",  # pid node is not an atom
        b"\x83M\x00\x00\x00\x01\x00\xff",  # bitstring with 0 bits in its last byte
        b"\x83M\x00\x00\x00\x01\x09\xff",  # ... with 9
        b"\x83M\x00\x00\x00\x00\x03",  # empty bitstring with 3 bits
        b"\x83qw\x01mw\x01fb\x00\x00\x01\x00",  # export fun of arity 256
        b"\x83qw\x01mw\x01fm\x00\x00\x00\x00",  # export fun arity not an integer
        b"\x83t\x00\x00\x00\x02a\x01w\x01aa\x01w\x01b",  # duplicate map key
        b"\x83a\x01\x00",  # a byte after the term
    ],
)
def test_malformed_inputs_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        binary_to_term(data)


def test_decode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        binary_to_term(b"\x83l\xff\xff\xff\xff")


def test_every_truncation_of_valid_terms_raises_decode_error() -> None:
    for term in CORPUS:
        data = term_to_binary(term)
        for cut in range(len(data)):
            with pytest.raises(DecodeError):
                binary_to_term(data[:cut])


def test_fun_with_wrong_size_field() -> None:
    data = bytearray(term_to_binary(_FUN))
    assert data[1] == 112
    size = struct.unpack_from(">I", data, 2)[0]
    struct.pack_into(">I", data, 2, size + 1)
    with pytest.raises(DecodeError, match="size"):
        binary_to_term(bytes(data) + b"\x00")
    struct.pack_into(">I", data, 2, size - 1)
    with pytest.raises(DecodeError):
        binary_to_term(bytes(data))


def test_deep_nesting_decodes() -> None:
    n = 100_000
    for opener in (b"h\x01", b"l\x00\x00\x00\x01", b"t\x00\x00\x00\x01w\x01k"):
        closer = b"j" if opener[0] == ord("l") else b""
        data = b"\x83" + opener * n + b"w\x01z" + closer * n
        value = binary_to_term(data)
        assert term_to_binary(value) == data


def test_map_key_nested_too_deep_is_refused() -> None:
    depth = MAX_KEY_DEPTH + 10
    key = b"h\x01" * depth + b"a\x01"
    data = b"\x83t\x00\x00\x00\x01" + key + b"a\x02"
    with pytest.raises(DecodeError, match="nested deeper"):
        binary_to_term(data)
    ok_key = b"h\x01" * 500 + b"a\x01"
    assert len(binary_to_term(b"\x83t\x00\x00\x00\x01" + ok_key + b"a\x02")) == 1


def test_map_keys_with_colliding_hashes_are_refused() -> None:
    # Python hashes n * (2**61 - 1) to 0 for every n: a dict of 20,000 such keys would take
    # ~200 million comparisons. The decoder refuses the map instead.
    modulus = 2**61 - 1
    pairs = b"".join(term_to_binary(i * modulus)[1:] + b"a\x00" for i in range(1, 20_001))
    data = b"\x83t" + struct.pack(">I", 20_000) + pairs
    with pytest.raises(DecodeError, match="colliding"):
        binary_to_term(data)


def _compressed(body: bytes, declared: int | None = None) -> bytes:
    size = len(body) if declared is None else declared
    return b"\x83P" + struct.pack(">I", size) + zlib.compress(body)


def test_compressed_inputs() -> None:
    body = term_to_binary([Atom("x")] * 100)[1:]
    assert binary_to_term(_compressed(body)) == [Atom("x")] * 100
    for bad in (
        _compressed(body, len(body) + 1),  # inflates to less than declared
        _compressed(body, len(body) - 1),  # inflates to more than declared
        _compressed(body + b"a\x01"),  # a byte after the inner term
        _compressed(body)[:-3],  # truncated zlib stream
        b"\x83P\x00\x00\x00\x05garbage",
        b"\x83P\x00\x00",
        _compressed(body) + b"\x00",  # a byte after the compressed term
    ):
        with pytest.raises(DecodeError):
            binary_to_term(bad)


def test_decompression_cap() -> None:
    bomb_body = b"m" + struct.pack(">I", 50_000_000) + bytes(50_000_000)
    bomb = _compressed(bomb_body)
    assert len(bomb) < 100_000
    with pytest.raises(DecodeError, match="cap"):
        binary_to_term(bomb, max_decompressed=1 << 20)
    # A liar: declares a small size, inflates to much more; inflating stops at the declared size.
    liar = _compressed(bomb_body, 1000)
    with pytest.raises(DecodeError):
        binary_to_term(liar)


def test_decode_offset_errors() -> None:
    data = term_to_binary(1)
    with pytest.raises(DecodeError):
        decode(data, len(data))
    with pytest.raises(DecodeError):
        decode(b"xx" + data, 1)
    with pytest.raises(DecodeError):
        decode(memoryview(data), -1)


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(40):
        buf = bytearray(data)
        kind = rng.randrange(5)
        i = rng.randrange(len(buf))
        if kind == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buf[i] = rng.randrange(256)
        elif kind == 2:
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        elif kind == 3:
            del buf[i : i + rng.randrange(1, 5)]
        else:
            buf = buf[:i]
        if len(buf) > 1 and rng.random() < 0.1:
            buf[rng.randrange(1, len(buf))] = rng.choice(b"\xff\x7f\x00\x80")
        out.append(bytes(buf))
    return out


def test_mutation_fuzz_only_raises_decode_error() -> None:
    rng = random.Random(2024)
    corpus = [term_to_binary(t) for t in CORPUS]
    corpus += [term_to_binary(t, compressed=True) for t in CORPUS]
    for _ in range(60):
        for data in corpus:
            for mutant in _mutations(data, rng):
                _must_decode_or_fail_cleanly(mutant)


@settings(max_examples=100, deadline=None)
@given(terms, st.data())
def test_mutation_fuzz_hypothesis(term: Any, data: st.DataObject) -> None:
    encoded = term_to_binary(term)
    i = data.draw(st.integers(0, len(encoded) - 1))
    kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
    buf = bytearray(encoded)
    if kind == "flip":
        buf[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "set":
        buf[i] = data.draw(st.integers(0, 255))
    elif kind == "insert":
        buf[i:i] = data.draw(st.binary(min_size=1, max_size=6))
    elif kind == "delete":
        del buf[i : i + data.draw(st.integers(1, 6))]
    else:
        del buf[i:]
    _must_decode_or_fail_cleanly(bytes(buf))


def test_random_bytes_only_raise_decode_error() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        n = rng.randrange(1, 40)
        data = b"\x83" + bytes(rng.randrange(256) for _ in range(n))
        _must_decode_or_fail_cleanly(data)


def test_unencodable_values_name_their_type() -> None:
    from philipjose.term import EncodeError

    class Thing:
        pass

    with pytest.raises(EncodeError, match="Thing"):
        term_to_binary({Atom("k"): [Thing()]})
    with pytest.raises(EncodeError):
        term_to_binary(Atom("x" * 256))
    with pytest.raises(EncodeError):
        term_to_binary(Pid("a@b", 2**32, 0, 0))
    with pytest.raises(EncodeError):
        term_to_binary(Reference("a@b", 0, ()))
    with pytest.raises(EncodeError):
        term_to_binary("\ud800")
