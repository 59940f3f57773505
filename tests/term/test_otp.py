"""The codec against real OTP: byte-exact re-encoding of OTP's output, and OTP decoding ours.

``otp_encodings`` runs ``data/otp_terms.escript`` once per session; it prints OTP 25's
``term_to_binary(T, [{minor_version, 2}])`` of about a hundred terms covering every tag (and
compressed and old forms). ``erlang_verdicts`` writes what Python encodes to a file and runs
``data/check_terms.escript``, which decodes each with ``binary_to_term``, compares it with an
Erlang expression, and says whether OTP's own encoding of the result is the same bytes.

Both run on each Erlang installation (``otp25``, ``otp27``); on OTP 26 and later the comparisons use
OTP 26's port encoding (see ``_ports_as_the_otp_encodes_them``).
"""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from philipjose.term import (
    Atom,
    BitString,
    ExactFloat,
    ExportFun,
    Fun,
    ImproperList,
    List,
    Map,
    Pid,
    Port,
    Reference,
    _encode,
    binary_to_term,
    term_to_binary,
)
from tests.tools import Otp, require

pytestmark = pytest.mark.interop

DATA = Path(__file__).parent / "data"


def _run_escript(*args: str, otp: Otp | None = None) -> str:
    escript = require("escript", otp)
    done = subprocess.run([escript, *args], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def otp_encodings(otp: Otp) -> dict[str, list[tuple[str, list[bytes]]]]:
    out = _run_escript(str(DATA / "otp_terms.escript"), otp=otp)
    kinds: dict[str, list[tuple[str, list[bytes]]]] = {"t": [], "z": [], "o": []}
    for line in out.splitlines():
        kind, name, *hexes = line.split()
        kinds[kind].append((name, [bytes.fromhex(h) for h in hexes]))
    return kinds


@pytest.fixture(autouse=True)
def _ports_as_the_otp_encodes_them(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """On OTP 26 and later, compare with philipjose encoding every port as V4_PORT_EXT.

    philipjose encodes as OTP 25 does: NEW_PORT_EXT (tag 89) for port numbers below 2**28, else
    V4_PORT_EXT (120). OTP 26 made the 64-bit node containers mandatory and its ``term_to_binary``
    writes every port as V4_PORT_EXT. Both forms decode the same on both releases;
    ``test_ports_are_the_one_difference_of_otp26`` pins that this is the only difference.
    """
    if "otp" in request.fixturenames and request.getfixturevalue("otp").major() >= 26:
        monkeypatch.setattr(_encode, "_MAX_V3_PORT", -1)


def test_otp_produced_every_kind(otp_encodings: dict[str, list[tuple[str, list[bytes]]]], otp: Otp) -> None:
    assert len(otp_encodings["t"]) >= 90
    assert len(otp_encodings["z"]) >= 5
    assert len(otp_encodings["o"]) >= 15
    tags = {data[1] for _, (data,) in otp_encodings["t"]}
    # Every tag OTP 25 emits for a plain term_to_binary with minor_version 2 (OTP 26+: no NEW_PORT_EXT).
    assert tags >= {70, 77, 88, 90, 97, 98, 104, 105, 106, 107, 108, 109, 110, 111, 112}
    assert tags >= {113, 116, 118, 119, 120}
    assert (89 in tags) == (otp.major() < 26)


@pytest.mark.parametrize("otp", ["otp27"], indirect=True)
def test_ports_are_the_one_difference_of_otp26(
    otp_encodings: dict[str, list[tuple[str, list[bytes]]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_encode, "_MAX_V3_PORT", (1 << 28) - 1)  # the OTP 25 rule, philipjose's
    # (name, OTP 27's bytes, philipjose's re-encoding) of every term that differs
    cases = [(name, data, data) for name, (data,) in otp_encodings["t"]]
    cases += [(name, old, otp_again) for name, (old, otp_again) in otp_encodings["o"]]
    differ = {}
    for name, source, otp_bytes in cases:
        ours = term_to_binary(binary_to_term(source))
        if ours != otp_bytes:
            differ[name] = (otp_bytes, ours)
    assert sorted(differ) == ["everything", "old_port_ext", "old_v4_port_small_id", "port_ext", "port_local"]
    for name, (otp_bytes, ours) in differ.items():
        assert binary_to_term(ours) == binary_to_term(otp_bytes), name
        assert len(otp_bytes) - len(ours) == 4, name  # a 64-bit port number instead of 32 bits
        assert b"Y" in ours and b"x" in otp_bytes, name  # NEW_PORT_EXT, V4_PORT_EXT


def test_otp_terms_re_encode_byte_exact(
    otp_encodings: dict[str, list[tuple[str, list[bytes]]]],
) -> None:
    wrong = []
    for name, (data,) in otp_encodings["t"]:
        again = term_to_binary(binary_to_term(data))
        if again != data:
            wrong.append(name)
    assert wrong == []


def test_otp_terms_decode_to_the_documented_python_values(
    otp_encodings: dict[str, list[tuple[str, list[bytes]]]],
) -> None:
    terms = {name: binary_to_term(data) for name, (data,) in otp_encodings["t"]}
    assert terms["small_int_255"] == 255
    assert terms["big_256_bytes"] == 1 << 2040
    assert terms["big_huge"] == (1 << 80000) - 1
    assert terms["float_neg0"] == 0.0 and str(terms["float_neg0"]) == "-0.0"
    assert terms["atom_true"] is True and terms["atom_false"] is False
    assert terms["atom_undefined"] == Atom("undefined")
    assert terms["atom_255_emoji"] == Atom("\U0001f600" * 255)
    assert terms["atom_latin1"] == Atom("h\u00e9llo")
    assert terms["bin_abc"] == b"abc"
    assert terms["bits_3"] == BitString(b"\xa0", 3)
    assert terms["string_abc"] == [97, 98, 99]
    assert terms["tuple_256"] == tuple(range(1, 257))
    assert terms["improper_atom"] == ImproperList((Atom("a"),), Atom("b"))
    assert terms["improper_alias_ref"].elements == (Atom("alias"),)
    assert type(terms["improper_alias_ref"].tail) is Reference
    assert terms["map_small"] == {Atom("a"): 1, b"b": [2], 3: (Atom("c"),)}
    keys = terms["map_compound_keys"]
    assert keys[List([1, 2])] == Atom("a")
    assert keys[(1, List([2]))] == Atom("b")
    assert keys[Map({Atom("x"): List([Atom("y")])})] == Atom("c")
    assert keys[List([List([1]), Map({})])] == Atom("h")
    assert keys[ImproperList((Atom("a"),), Atom("b"))] == Atom("f")
    equal_keys = terms["map_python_equal_keys"]
    assert len(equal_keys) == 6
    assert equal_keys[1] == Atom("a") and equal_keys[ExactFloat(1.0)] == Atom("b")
    assert equal_keys[Atom("true")] == Atom("c")
    assert terms["pid_ext"] == Pid("other@host", 1, 2, 0xFFFFFFFF)
    assert terms["ref_ext5"] == Reference("other@host", 9, (1, 2, 3, 4, 5))
    assert terms["port_v4_max"] == Port("other@host", 2**64 - 1, 3)
    assert terms["fun_export"] == ExportFun(Atom("lists"), Atom("map"), 2)
    closure = terms["fun_closure"]
    assert type(closure) is Fun and closure.arity == 1 and len(closure.free_vars) == 1
    assert type(closure.free_vars[0]) is int
    assert closure.module.startswith("otp_terms")
    assert any(type(v) is Pid for v in terms["fun_rich"].free_vars)
    depth = 0
    node: Any = terms["deep_tuple_100000"]
    while node != ():
        (node,) = node
        depth += 1
    assert depth == 100_000


def test_compressed_otp_terms(otp_encodings: dict[str, list[tuple[str, list[bytes]]]]) -> None:
    for name, (packed, plain) in otp_encodings["z"]:
        term = binary_to_term(packed)
        assert term_to_binary(term) == plain, name
        ours = term_to_binary(term, compressed=True)
        # Same decision as OTP: compress only when it saves bytes.
        assert (ours[1] == 80) == (packed[1] == 80), name
        if packed[1] == 80:
            assert ours[2:6] == packed[2:6], name
            assert zlib.decompress(ours[6:]) == zlib.decompress(packed[6:]) == plain[1:], name
        else:
            assert ours == packed, name


def test_old_and_non_canonical_forms_re_encode_like_otp(
    otp_encodings: dict[str, list[tuple[str, list[bytes]]]],
) -> None:
    wrong = []
    for name, (old, otp_again) in otp_encodings["o"]:
        if term_to_binary(binary_to_term(old)) != otp_again:
            wrong.append(name)
    assert wrong == []


# --- Python encodes, Erlang decodes ----------------------------------------------------------

_DEEP: Any = ()
for _ in range(100_000):
    _DEEP = (_DEEP,)

# (name, value, Erlang expression or "-", whether OTP must re-encode the value to the same bytes)
PY_TO_ERLANG: list[tuple[str, Any, str, bool]] = [
    ("atom", Atom("ok"), "ok", True),
    ("atom_unicode", Atom("h\u00e9llo"), "'h\\x{e9}llo'", True),
    ("atom_255_emoji", Atom("\U0001f600" * 255), "list_to_atom(lists:duplicate(255, 16#1F600))", True),
    ("true", True, "true", True),
    ("none", None, "undefined", True),
    ("small", 7, "7", True),
    ("int", -300, "-300", True),
    ("big", 2**100, "1 bsl 100", True),
    ("huge", -(2**30000) + 1, "-(1 bsl 30000) + 1", True),
    ("float", 1.5, "1.5", True),
    ("float_tiny", 5e-324, "5.0e-324", True),
    ("binary", b"abc", '<<"abc">>', True),
    ("str", "h\u00e9llo \u2603", '<<"h\\x{e9}llo \\x{2603}"/utf8>>', True),
    ("string", [1, 2, 3], "[1,2,3]", True),
    ("string_max", [7] * 65535, "lists:duplicate(65535, 7)", True),
    ("list_long", [7] * 65536, "lists:duplicate(65536, 7)", True),
    ("list", [1000, Atom("a"), b"b"], '[1000, a, <<"b">>]', True),
    ("nil", [], "[]", True),
    ("tuple", (Atom("ok"), 42), "{ok, 42}", True),
    ("tuple_large", tuple(range(300)), "list_to_tuple(lists:seq(0, 299))", True),
    ("improper", ImproperList((1, 2), 3), "[1, 2 | 3]", True),
    ("map", {b"a": 1, Atom("b"): [Atom("c")]}, '#{<<"a">> => 1, b => [c]}', False),
    (
        "map_compound_keys",
        {List([1]): 2, (1, List([2])): 3, Map({Atom("a"): 1}): 4},
        "#{[1] => 2, {1, [2]} => 3, #{a => 1} => 4}",
        False,
    ),
    (
        "map_exact_keys",
        {ExactFloat(1.0): Atom("a"), 1: Atom("b"), Atom("true"): Atom("c")},
        "#{1.0 => a, 1 => b, true => c}",
        False,
    ),
    ("bits", BitString(b"\xa0", 3), "<<5:3>>", True),
    ("export_fun", ExportFun(Atom("lists"), Atom("map"), 2), "fun lists:map/2", True),
    ("pid", Pid("a@b", 1, 2, 3), "-", True),
    ("pid_big_creation", Pid("a@b", 5, 0, 0xFFFFFFFF), "-", True),
    ("ref", Reference("a@b", 7, (1, 2, 3)), "-", True),
    ("port", Port("a@b", 9, 2), "-", True),
    ("port_v4", Port("a@b", 2**40, 2), "-", True),
    ("deep_tuple", _DEEP, "lists:foldl(fun(_, A) -> {A} end, {}, lists:seq(1, 100000))", True),
    ("compressed", [Atom("x")] * 1000, "lists:duplicate(1000, x)", False),
]


@pytest.fixture(scope="session")
def erlang_verdicts(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> dict[str, tuple[str, str]]:
    path = tmp_path_factory.mktemp(f"terms-{otp}") / "cases.tsv"
    lines = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        if otp.major() >= 26:  # as _ports_as_the_otp_encodes_them
            monkeypatch.setattr(_encode, "_MAX_V3_PORT", -1)
        for name, value, expr, _canonical in PY_TO_ERLANG:
            data = term_to_binary(value, compressed=9 if name == "compressed" else False)
            lines.append(f"{name}\t{data.hex()}\t{expr}\n")
    path.write_text("".join(lines), encoding="utf-8")
    out = _run_escript(str(DATA / "check_terms.escript"), str(path), otp=otp)
    verdicts = {}
    for line in out.splitlines():
        name, equal, same = line.split()
        verdicts[name] = (equal, same)
    return verdicts


@pytest.mark.parametrize(("name", "canonical"), [(case[0], case[3]) for case in PY_TO_ERLANG])
def test_erlang_decodes_what_python_encodes(
    erlang_verdicts: dict[str, tuple[str, str]], name: str, canonical: bool
) -> None:
    equal, same = erlang_verdicts[name]
    assert equal in ("ok", "skip"), (name, equal)
    if canonical:
        assert same == "same", name


def test_erlang_round_trips_a_fun_from_otp(
    otp_encodings: dict[str, list[tuple[str, list[bytes]]]], tmp_path: Path
) -> None:
    funs = {n: d for n, (d,) in otp_encodings["t"] if n.startswith("fun_") or n == "everything"}
    path = tmp_path / "funs.tsv"
    path.write_text(
        "".join(f"{n}\t{term_to_binary(binary_to_term(d)).hex()}\t-\n" for n, d in funs.items()),
        encoding="utf-8",
    )
    out = _run_escript(str(DATA / "check_terms.escript"), str(path))
    assert sorted(out.split()) == sorted([*funs, *["skip"] * len(funs), *["same"] * len(funs)])
