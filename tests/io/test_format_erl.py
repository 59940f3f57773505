"""philipjose.io's io_lib:format against a real erl's, case by case (tests/io/format_corpus.py), on
each Erlang/OTP installation (``otp`` fixture: OTP 25 here, and OTP 27 where .ci/run made its chroot)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from philipjose.io._format import FormatError, format
from philipjose.term import Atom, binary_to_term, term_to_binary
from tests.io.format_corpus import CASES
from tests.tools import Otp, require

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def erl_results(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> list[Any]:
    erl, erlc = require("erl", otp), require("erlc", otp)
    work = tmp_path_factory.mktemp(f"erl_format-{otp}")
    subprocess.run([erlc, "-o", str(work), str(HERE / "erl_format.erl")], check=True, timeout=60)
    cases = work / "cases.bin"
    out = work / "out.bin"
    cases.write_bytes(term_to_binary([(fmt, args) for fmt, args in CASES]))
    subprocess.run(
        [
            erl,
            "-noshell",
            "-pa",
            str(work),
            "-run",
            "erl_format",
            "main",
            str(cases),
            str(out),
            "-s",
            "init",
            "stop",
        ],
        check=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    results = binary_to_term(out.read_bytes())
    assert len(results) == len(CASES)
    return list(results)


def _ours(fmt: Any, args: Any) -> Any:
    try:
        return (Atom("ok"), format(fmt, args))
    except FormatError:
        return Atom("error")


def _multikey_map(term: Any) -> bool:
    if isinstance(term, dict):
        return len(term) > 1 or any(_multikey_map(v) for v in term.values())
    if isinstance(term, (list, tuple)):
        return any(_multikey_map(x) for x in term)
    return False


@pytest.mark.parametrize("index", range(len(CASES)))
def test_same_as_erl(erl_results: list[Any], index: int, otp: Otp) -> None:
    fmt, args = CASES[index]
    theirs = erl_results[index]
    if theirs != Atom("error"):
        theirs = (theirs[0], theirs[1].decode())
    ours = _ours(fmt, args)
    if otp.name != "otp25" and _multikey_map(args) and ours != Atom("error") and theirs != Atom("error"):
        # OTP 26+ prints a map's atom keys in its internal atom-table order, which no other node can
        # know: the same characters, maybe in another order (the keys' order is the only freedom)
        assert sorted(ours[1]) == sorted(theirs[1]), (fmt, args, ours, theirs)
        return
    assert ours == theirs, (fmt, args)
