"""The ``philipjose`` command line as a user runs it: real ``python -m philipjose`` subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import philipjose


def test_version_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "philipjose", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"philipjose {philipjose.__version__}"


def test_help_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "philipjose", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: philipjose" in out.stdout


def _philipjose(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "philipjose", *argv], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_plain_philipjose_prints_usage_and_exits_2() -> None:
    done = _philipjose()
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("usage: philipjose")
    assert done.stderr.splitlines()[-1] == "philipjose: error: give a command (philipjose --help lists them)"
    done = _philipjose("farm")
    assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith("philipjose farm: error: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "INFO", "run", "TREE"],  # before the command
        ["run", "--log-level", "INFO", "TREE"],  # after it: INFO is not taken for the tree
        ["run", "TREE", "--log-level", "info"],  # after its argument, in lower case
        ["--log-level=Info", "run", "TREE"],
    ],
)
def test_log_level_in_any_position_and_case(tmp_path: Path, argv: list[str]) -> None:
    """`run` with a tree file it cannot read: exit 2 naming that file, whatever the log level's place."""
    tree = tmp_path / "tree.toml"
    tree.write_text("[supervisor]\nstrategy = 'no_such_strategy'\n")
    done = _philipjose(*(str(tree) if a == "TREE" else a for a in argv))
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"philipjose run: {tree}: supervisor: unknown key in the top level" + (
        " (allowed: strategy, intensity, period, auto_shutdown, name, python_path, node, children)\n"
    )


def test_log_level_after_nested_actions_takes_effect(tmp_path: Path) -> None:
    file = tmp_path / "m.toml"
    done = _philipjose("machines", "list", "--machines", str(file), "--log-level", "debug")
    assert done.returncode == 0 and done.stdout == f"no machines registered in {file}\n"
    epmd = _philipjose("epmd", "--names", "--port", "1", "--log-level", "Warning")
    assert epmd.returncode == 1 and "usage" not in epmd.stderr


def test_a_bad_log_level_is_refused() -> None:
    done = _philipjose("--log-level", "loud", "machines", "list")
    assert done.returncode == 2
    assert "invalid choice: 'LOUD'" in done.stderr
