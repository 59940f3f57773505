"""The README's first Quick start command: ``python3 examples/term_demo.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import Otp, require

DEMO = Path(__file__).resolve().parents[2] / "examples" / "term_demo.py"


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
        cwd=cwd,
    )


@pytest.mark.interop
def test_demo_with_a_live_erlang(tmp_path: Path, otp: Otp) -> None:
    require("erl")
    env = dict(os.environ)  # the demo runs the erl on PATH: the test's installation's
    env["PATH"] = os.pathsep.join([*otp.path_dirs(), env.get("PATH", "")])
    done = _run(env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all terms round-tripped through Erlang" in done.stdout
    assert "MISMATCH" not in done.stdout
    assert list(tmp_path.iterdir()) == []  # no crash dump or other droppings


def test_demo_without_erlang(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = str(tmp_path)  # an empty directory: no erl
    root = str(DEMO.parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = _run(env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "erl is not on PATH" in done.stdout
    assert "all terms round-tripped locally" in done.stdout
