"""Without the ``dashboard`` extra: one line saying how to install it, exit 2 (a subprocess in which
importing Starlette fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from philipjose import dashboard
from tests.supervisors.test_cli import REPO, _env

_WITHOUT = "import sys; sys.modules['starlette'] = None; from philipjose.cli import main; sys.exit(main())"
_FARM = """
import sys
sys.modules['starlette'] = None
from philipjose import farm
try:
    farm.Farm(workers=1, dashboard=0)
except ImportError as exc:
    print(type(exc).__name__, exc)
"""


def _run(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(
    ("command", "target", "text"),
    [
        (["farm", "run", "--dashboard", "0"], "script.py", "def main(farm):\n    return 1\n"),
        (["run", "--dashboard", "127.0.0.1:0"], "tree.toml", 'strategy = "one_for_one"\n'),
    ],
)
def test_a_dashboard_without_the_extra_says_how_to_install_it(
    tmp_path: Path, command: list[str], target: str, text: str
) -> None:
    (tmp_path / target).write_text(text)
    done = _run("-c", _WITHOUT, *command, str(tmp_path / target))
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr == (
        f"philipjose {' '.join(command[:-2])}: error: the dashboard needs starlette, which is not "
        f"installed: {dashboard.INSTALL}\n"
    )


def test_a_farm_with_a_dashboard_without_the_extra_raises() -> None:
    done = _run("-c", _FARM)
    assert done.returncode == 0, done
    assert done.stdout == (
        f"DashboardUnavailable the dashboard needs starlette, which is not installed: {dashboard.INSTALL}\n"
    )
