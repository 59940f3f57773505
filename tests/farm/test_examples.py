"""The farm examples run as their docstrings say (local workers, no Erlang needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*argv: str) -> str:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_primes_example() -> None:
    assert (
        _run(str(EXAMPLES / "farm_primes.py"), "100000", "2")
        == "9592 primes below 100000 (5 tasks on 2 workers)\n"
    )


def test_primes_example_through_farm_run() -> None:
    out = _run(
        "-m", "philipjose", "farm", "run", str(EXAMPLES / "farm_primes.py"), "--workers", "2", "100000"
    )
    assert out.startswith("9592 primes below 100000")


def test_race_example() -> None:
    lines = _run(str(EXAMPLES / "farm_race.py"), "2").splitlines()
    assert lines[0].startswith("pi ~ 3.1")
    assert lines[1].startswith("first nonce found: ") and "-> 00000" in lines[1]
    assert lines[2] == "sum of squares below 1000: 332833500"
