"""``philipjose machines``: add, remove, list, validate, through the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from philipjose.cli import main
from philipjose.farm.machines import Machine, load_machines


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "m.toml"
    m = ("machines", "--machines", str(file))
    assert _run(capsys, *m, "add", "localhost", "--workers", "2") == (
        0,
        f"registered localhost in {file}\n",
        "",
    )
    status, _, _ = _run(
        capsys,
        *m,
        "add",
        "farm@box.example",
        "--python",
        "/opt/py",
        "--ssh-opt",
        "Port=2222",
        "--ssh-opt=User=x",
    )
    assert status == 0
    assert load_machines(file) == {
        "localhost": Machine("localhost", 2),
        "farm@box.example": Machine("farm@box.example", None, "/opt/py", ("Port=2222", "User=x")),
    }
    status, out, _ = _run(capsys, *m, "list")
    assert status == 0
    assert out.splitlines() == [
        f"localhost         workers=2  python={sys.executable}  (local, no ssh)",
        "farm@box.example  workers=one per core  python=/opt/py  ssh: Port=2222 User=x",
    ]
    status, _, err = _run(capsys, *m, "add", "localhost")
    assert status == 2 and "localhost is already registered" in err
    assert _run(capsys, *m, "add", "localhost", "--workers", "3", "--replace")[0] == 0
    assert load_machines(file)["localhost"].workers == 3
    status, out, err = _run(capsys, *m, "remove", "farm@box.example", "nobody")
    assert status == 1
    assert out == f"removed farm@box.example from {file}\n"
    assert f"nobody is not registered in {file}" in err
    assert list(load_machines(file)) == ["localhost"]


def test_list_empty_and_default_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    expected = tmp_path / "cfg" / "philipjose" / "machines.toml"
    assert _run(capsys, "machines", "list") == (0, f"no machines registered in {expected}\n", "")
    assert _run(capsys, "machines", "add", "localhost")[0] == 0
    assert expected.exists()


def test_bad_input_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "m.toml"
    status, _, err = _run(capsys, "machines", "--machines", str(file), "add", "box", "--ssh-opt", "Port 22")
    assert status == 2 and 'must look like "Key=Value"' in err
    file.write_text("[machines.box]\nworkers = 0\n")
    status, _, err = _run(capsys, "machines", "--machines", str(file), "list")
    assert status == 2
    assert err.startswith(f"philipjose machines: error: {file}: machines.box.workers: must be an integer")
    with pytest.raises(SystemExit):
        main(["machines", "--machines", str(file), "add", "box", "--workers", "0"])


def test_validate_localhost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "m.toml"
    main(["machines", "--machines", str(file), "add", "localhost"])
    main(["machines", "--machines", str(file), "add", "broken", "--ssh-opt", "Port=1"])
    capsys.readouterr()
    status, out, _ = _run(capsys, "machines", "--machines", str(file), "validate", "localhost")
    assert status == 0
    assert out.startswith("localhost  qualified      python ")
    status, out, _ = _run(capsys, "machines", "--machines", str(file), "validate", "--timeout", "60")
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith("localhost  qualified")
    assert lines[1].startswith("broken     NOT qualified")
    assert lines[2].startswith("           reason: ssh to broken failed: ")


def test_validate_with_a_failing_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "m.toml"
    status, out, _ = _run(
        capsys, "machines", "--machines", str(file), "validate", "localhost", "--check", "os:getcwd"
    )
    assert status == 1
    assert "note: not registered, probed with default settings: localhost" in out
    assert "NOT qualified" in out and "reason: check os:getcwd failed: " in out
    status, _, err = _run(
        capsys, "machines", "--machines", str(file), "validate", "localhost", "--check", "oops"
    )
    assert status == 2 and "module:function" in err


def test_validate_with_nothing_registered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "machines", "--machines", str(tmp_path / "m.toml"), "validate")
    assert status == 1 and "no machines registered" in err


def test_help_of_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "philipjose", "machines", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for action in ("add", "remove", "list", "validate", "--machines FILE"):
        assert action in out
    assert (
        "machines"
        in subprocess.run(
            [sys.executable, "-m", "philipjose", "--help"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert main(["machines"]) == 0
