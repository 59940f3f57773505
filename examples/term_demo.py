"""Encode Erlang terms in Python and, when Erlang is installed, have a live ``erl`` decode them.

    python3 examples/term_demo.py

For each term the demo prints the Python value and its External Term Format bytes. When ``erl``
is on PATH it starts one ``erl -noshell``, sends it the bytes in hex, and Erlang answers with its
own rendering of the term and its own ``term_to_binary`` of it, which Python decodes and compares
with the value it started from. Without Erlang it says so and shows the local round trip only;
either way it exits 0 unless a comparison fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

from philipjose.term import (
    Atom,
    BitString,
    ExportFun,
    ImproperList,
    Pid,
    Reference,
    binary_to_term,
    term_to_binary,
)

TERMS: list[tuple[str, Any]] = [
    ("a tagged tuple", (Atom("ok"), 42)),
    ("a map", {Atom("name"): b"philipjose", Atom("langs"): [Atom("python"), Atom("erlang")]}),
    ("a list of bytes (sent as STRING_EXT)", [104, 105]),
    ("a str (sent as a UTF-8 binary)", "h\u00e9llo \u2603"),
    ("a bignum", 2**100 + 1),
    ("a float", -1.5),
    ("a gen_server call tag", ImproperList((Atom("alias"),), Reference("demo@host", 1, (7, 8, 9)))),
    ("a pid", Pid("demo@host", 85, 0, 3)),
    ("a bitstring", BitString(b"\xa0", 3)),
    ("an export fun", ExportFun(Atom("lists"), Atom("map"), 2)),
    ("true and None", [True, None]),
]

# Reads hex lines on stdin; for each prints "<hex of its own encoding> <its rendering>".
_ERLANG = r"""
Loop = fun Loop() ->
    case io:get_line("") of
        eof -> ok;
        Line ->
            Term = binary_to_term(binary:decode_hex(list_to_binary(string:trim(Line)))),
            Again = binary:encode_hex(term_to_binary(Term, [{minor_version, 2}])),
            Shown = lists:flatten(io_lib:format("~0tp", [Term])),
            io:format("~s ~ts~n", [Again, Shown]),
            Loop()
    end
end,
Loop(),
halt().
"""


def _short(data: bytes, limit: int = 48) -> str:
    text = data.hex()
    return text if len(text) <= limit else text[:limit] + f"... ({len(data)} bytes)"


def _ask_erlang(erl: str, encoded: list[bytes]) -> list[tuple[bytes, str]] | None:
    request = "".join(data.hex() + "\n" for data in encoded)
    try:
        done = subprocess.run(
            [erl, "-noshell", "-eval", _ERLANG],
            input=request.encode(),
            capture_output=True,
            timeout=120,
            check=False,
            env={**os.environ, "ERL_CRASH_DUMP_BYTES": "0"},  # no erl_crash.dump on failure
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"could not run erl: {exc}")
        return None
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    if done.returncode != 0 or len(lines) != len(encoded):
        print(f"erl failed (exit {done.returncode}): {done.stderr.decode(errors='replace')[:500]}")
        return None
    answers = []
    for line in lines:
        hex_part, _, shown = line.partition(" ")
        answers.append((bytes.fromhex(hex_part), shown))
    return answers


def main() -> int:
    encoded = [term_to_binary(term) for _, term in TERMS]
    erl = shutil.which("erl")
    answers = _ask_erlang(erl, encoded) if erl else None
    if erl is None:
        print("erl is not on PATH: showing the local round trip only (install Erlang/OTP to see")
        print("a live Erlang decode these terms).\n")
    elif answers is None:
        print("showing the local round trip only.\n")
    else:
        print(f"a live Erlang ({erl}) decodes each term and sends back its own encoding.\n")

    failures = 1 if erl is not None and answers is None else 0
    for i, ((what, term), data) in enumerate(zip(TERMS, encoded, strict=True)):
        back = binary_to_term(data)
        expected = back  # what Python reads back: str becomes bytes, None becomes 'undefined'
        local_ok = term_to_binary(back) == data
        print(f"{what}:")
        print(f"  python : {term!r}")
        print(f"  bytes  : {_short(data)}")
        print(f"  decoded: {back!r} ({'bytes stable' if local_ok else 'BYTES CHANGED'})")
        failures += not local_ok
        if answers is not None:
            theirs, shown = answers[i]
            same_value = binary_to_term(theirs) == expected
            same_bytes = theirs == data
            print(f"  erlang : {shown}")
            verdict = "same bytes" if same_bytes else "same term" if same_value else "MISMATCH"
            if not same_bytes and same_value:
                verdict += " (Erlang orders map keys its own way)"
            print(f"  erlang re-encoding decoded by Python: {verdict}")
            failures += not same_value
        print()
    if failures:
        print(f"{failures} comparison(s) failed")
        return 1
    print("all terms round-tripped" + (" through Erlang" if answers is not None else " locally"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
