"""The farm examples run as their docstrings say (local workers, no Erlang needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_docs import _free_port, _wait_for_port
from tests.tools import require

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, env=env)
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


def test_speculation_example() -> None:
    lines = _run(str(EXAMPLES / "farm_speculation.py"), "10").splitlines()
    assert lines[0] == f"sum of squares below 60: {sum(x * x for x in range(60))}"
    took = float(lines[1].split("the map took ")[1].split(" s")[0])
    assert lines[1].startswith("one worker stopped for 10 s") and took < 10
    started, won = (int(w) for w in lines[2].replace(",", "").split()[2::2])
    assert started >= 1 and won >= 1


def test_journal_example(tmp_path: Path) -> None:
    journal = str(tmp_path / "squares.sqlite")
    run = ("-m", "philipjose", "farm", "run", str(EXAMPLES / "farm_journal.py"), "--workers", "2")
    total = sum(x * x for x in range(50))
    assert (
        _run(*run, "--journal", journal, "50")
        == f"sum of squares below 50: {total} (0 of 50 tasks from the journal)\n"
    )
    assert (
        _run(*run, "--journal", journal, "50")
        == f"sum of squares below 50: {total} (50 of 50 tasks from the journal)\n"
    )
    shown = _run("-m", "philipjose", "farm", "journal", journal)
    assert "50 tasks done, 0 failed" in shown and "map work  50 done, 0 failed" in shown


@pytest.mark.interop
def test_mixed_farm_example() -> None:
    """Two Python workers and an erl node the example starts; then Elixir submits a map to it (a
    private EPMD, so the example's erl does not start the machine's)."""
    tools = [os.path.dirname(require("erl")), os.path.dirname(require("elixir"))]
    port = _free_port()
    epmd_argv = [sys.executable, "-m", "philipjose", "epmd", "--port", str(port), "--address", "127.0.0.1"]
    epmd = subprocess.Popen(epmd_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, epmd)
        path = os.pathsep.join([*tools, os.environ.get("PATH", "")])
        env = dict(os.environ, ERL_EPMD_PORT=str(port), PATH=path)
        lines = _run(str(EXAMPLES / "mixed_farm.py"), env=env).splitlines()
    finally:
        epmd.terminate()
        epmd.wait(10)
    assert lines == [
        f"python: sum of squares below 10000 = {sum(x * x for x in range(10_000))}",
        f"erlang: lists:sum/1 of 10 chunks = {sum(range(10_000))}",
        "race: erlang won, the other was stopped",
        f"elixir: sum of the farm's squares of 1..100 = {sum(x * x for x in range(1, 101))}",
    ]
