import subprocess
import sys

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
