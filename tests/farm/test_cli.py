"""``philipjose machines`` (add, remove, list, validate) and ``philipjose farm run``, through the real
command line: in-process for ``machines``, real ``python -m philipjose`` subprocesses for ``farm run``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from philipjose.cli import main
from philipjose.farm.cli import describe_error, resolve_machines
from philipjose.farm.errors import MachinesError
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
        "farm@box.example  workers=1  python=/opt/py  ssh: Port=2222 User=x",  # what a farm starts there
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


def test_erlang_nodes_in_the_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = ("machines", "--machines", str(tmp_path / "m.toml"))
    assert _run(capsys, *m, "add", "calc@build-8", "--kind", "erlang", "--workers", "16")[0] == 0
    assert load_machines(tmp_path / "m.toml")["calc@build-8"] == Machine("calc@build-8", 16, kind="erlang")
    assert _run(capsys, *m, "list")[1] == "calc@build-8  erlang node  workers=16\n"
    status, _, err = _run(capsys, *m, "add", "calc", "--kind", "erlang")
    assert status == 2 and "needs the host to be a node name" in err and "Traceback" not in err
    status, out, _ = _run(capsys, *m, "validate")  # nodes are reached by distribution, not ssh
    assert status == 0 and "not validated (Erlang nodes, checked when a farm connects): calc@build-8" in out


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
    assert main(["machines"]) == 2  # an action is needed: usage and one error line


def test_options_after_the_action(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "m.toml"
    assert _run(capsys, "machines", "add", "localhost", "--machines", str(file))[0] == 0
    assert _run(capsys, "machines", "add", "box", "--workers", "3", "--machines", str(file))[0] == 0
    status, out, _ = _run(capsys, "machines", "list", "--machines", str(file))
    assert status == 0
    assert out.splitlines() == [
        f"localhost  workers=one per core ({os.cpu_count()})  python={sys.executable}  (local, no ssh)",
        "box        workers=3  python=python3",
    ]
    assert _run(capsys, "machines", "--machines", str(file), "list") == (0, out, "")
    assert _run(capsys, "machines", "remove", "box", "--machines", str(file))[0] == 0
    assert list(load_machines(file)) == ["localhost"]


# -- philipjose farm run, as a subprocess --------------------------------------------------------------


def _philipjose(
    *argv: str, cwd: Path, config: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m philipjose ARGV`` in ``cwd``, with ``config`` as XDG_CONFIG_HOME (no user registry
    unless the test writes one there)."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "philipjose", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


_ERROR = "philipjose farm run: error: "


@pytest.mark.parametrize(
    ("case", "argv", "expected"),
    [
        ("missing script", ["nonexist.py"], "nonexist.py: no such script"),
        ("no main", ["nomain.py"], "nomain.py: defines no main(farm) function"),
        ("syntax error", ["syntax.py"], "syntax.py, line 2: SyntaxError: "),
        ("bad import", ["badimport.py"], "ModuleNotFoundError: No module named 'no_such_module_zq'"),
        (
            "malformed machines",
            ["ok.py", "--machines", "bad.toml"],
            "bad.toml: machines.box.workers: must be",
        ),
        (
            "missing machines",
            ["ok.py", "--machines", "nonexist.toml"],
            "nonexist.toml: no such machines file",
        ),
        (
            "missing machines first",
            ["--machines", "nonexist.toml", "ok.py"],
            "nonexist.toml: no such machines",
        ),
        ("empty machines", ["ok.py", "--machines", "empty.toml"], "empty.toml: no machines registered in it"),
        ("main raises", ["raises.py", "--workers", "1"], "ValueError: no good (raises.py, line 3, in main)"),
    ],
)
def test_farm_run_user_errors_are_one_line(tmp_path: Path, case: str, argv: list[str], expected: str) -> None:
    _write(tmp_path / "nomain.py", "x = 1\n")
    _write(tmp_path / "syntax.py", "async def main(farm):\n    return (\n")
    _write(tmp_path / "badimport.py", "import no_such_module_zq\nasync def main(farm):\n    pass\n")
    _write(tmp_path / "ok.py", "async def main(farm):\n    return 1\n")
    _write(tmp_path / "bad.toml", "[machines.box]\nworkers = 0\n")
    _write(tmp_path / "empty.toml", "version = 1\n")
    _write(tmp_path / "raises.py", "async def main(farm):\n    x = 1\n    raise ValueError('no good')\n")
    done = _philipjose("farm", "run", *argv, cwd=tmp_path, config=tmp_path / "cfg")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(_ERROR) and expected in lines[0], lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize("flag", [["--debug"], ["--log-level", "DEBUG"], ["--log-level=debug"]])
def test_farm_run_debug_shows_the_traceback(tmp_path: Path, flag: list[str]) -> None:
    _write(tmp_path / "job.py", "import helper_zq\nasync def main(farm):\n    pass\n")
    _write(tmp_path / "helper_zq.py", "x = 1\ny = x / 0\n")
    done = _philipjose("farm", "run", "job.py", *flag, cwd=tmp_path, config=tmp_path / "cfg")
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert 'helper_zq.py", line 2, in <module>' in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last == f"{_ERROR}ZeroDivisionError: division by zero (helper_zq.py, line 2, in <module>)"


def test_farm_run_imports_modules_beside_the_script_and_ships_them(tmp_path: Path) -> None:
    """`cd sub && philipjose farm run job.py` imports helpers.py (and a package) beside the script, as
    `python job.py` would; the workers get those functions by value: they never import them."""
    sub = tmp_path / "sub"
    _write(
        sub / "helpers.py",
        """\
        import sys

        def square(x):
            return x * x, "helpers" in sys.modules, "tools" in sys.modules
        """,
    )
    _write(sub / "tools" / "__init__.py", "")
    _write(sub / "tools" / "maths.py", "def cube(x):\n    return x ** 3\n")
    _write(
        sub / "job.py",
        """\
        import os
        import helpers
        from tools.maths import cube

        async def main(farm):
            squares = await farm.map(helpers.square, range(6))
            cubes = await farm.map(cube, range(4))
            pids = set(await farm.broadcast(os.getpid))
            assert os.getpid() not in pids
            return [s for s, _, _ in squares], {i for _, i, _ in squares}, {t for _, _, t in squares}, cubes
        """,
    )
    elsewhere = tmp_path / "elsewhere"  # the workers' cwd is the farmer's: not the script's folder
    elsewhere.mkdir()
    done = _philipjose("farm", "run", str(sub / "job.py"), "--workers", "2", cwd=elsewhere, config=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "([0, 1, 4, 9, 16, 25], {False}, {False}, [0, 1, 8, 27])\n"
    done = _philipjose("farm", "run", "job.py", "--workers", "1", cwd=sub, config=tmp_path)
    assert done.returncode == 0, done.stderr


def test_farm_run_uses_the_registry_by_default(tmp_path: Path) -> None:
    _write(
        tmp_path / "job.py",
        "async def main(farm):\n    return [m.host for m in farm.machines], len(farm.workers)\n",
    )
    registry = tmp_path / "cfg" / "philipjose" / "machines.toml"
    done = _philipjose("farm", "run", "job.py", "--log-level", "info", cwd=tmp_path, config=tmp_path / "cfg")
    assert done.returncode == 0, done.stderr
    assert f"running on local workers, one per core (no machines registered: {registry} does not exist)" in (
        done.stderr
    )
    assert done.stdout == f"(['localhost'], {os.cpu_count()})\n"
    assert _philipjose(
        "machines", "add", "localhost", "--workers", "1", cwd=tmp_path, config=tmp_path / "cfg"
    )
    assert registry.exists()
    done = _philipjose("--log-level", "INFO", "farm", "run", "job.py", cwd=tmp_path, config=tmp_path / "cfg")
    assert done.returncode == 0, done.stderr
    assert f"running on the machines registered in {registry}: localhost" in done.stderr
    assert done.stdout == "(['localhost'], 1)\n"


def test_worker_output_is_prefixed_with_its_slot(tmp_path: Path) -> None:
    _write(
        tmp_path / "job.py",
        """\
        import sys

        def chatty(x):
            print(f"out {x}\\nsecond {x}", flush=True)
            print(f"err {x}", file=sys.stderr, flush=True)
            print("unended", end="")
            return x

        async def main(farm):
            await farm.broadcast(chatty, 7)
        """,
    )
    done = _philipjose("farm", "run", "job.py", "--workers", "2", cwd=tmp_path, config=tmp_path)
    assert done.returncode == 0, done.stderr
    for slot in ("w0", "w1"):
        out = [line for line in done.stdout.splitlines() if line.startswith(f"[{slot}] ")]
        assert out == [f"[{slot}] out 7", f"[{slot}] second 7", f"[{slot}] unended"], done.stdout
        assert f"[{slot}] err 7" in done.stderr.splitlines()
    assert len(done.stdout.splitlines()) == 6


def test_resolve_machines_decides_where_a_run_goes(tmp_path: Path) -> None:
    registry = tmp_path / "registry.toml"
    assert resolve_machines(3, None, registry) == (3, None, "running on 3 local workers (--workers)")
    workers, machines, said = resolve_machines(None, None, registry)
    assert (workers, machines) == (None, None) and f"{registry} does not exist" in said
    registry.write_text("version = 1\n")
    assert resolve_machines(None, None, registry)[:2] == (None, None)  # an empty registry: local
    registry.write_text('[machines.localhost]\nworkers = 2\n[machines."b@box"]\n')
    workers, machines, said = resolve_machines(None, None, registry)
    assert machines == [Machine("localhost", 2), Machine("b@box")] and workers is None
    assert said == f"running on the machines registered in {registry}: localhost, b@box"
    other = tmp_path / "other.toml"
    with pytest.raises(MachinesError, match="no such machines file"):
        resolve_machines(None, other, registry)
    other.write_text("version = 1\n")
    with pytest.raises(MachinesError, match="no machines registered in it"):
        resolve_machines(None, other, registry)
    with pytest.raises(MachinesError, match="is a folder"):
        resolve_machines(None, tmp_path, registry)


def test_describe_error_is_one_line_naming_the_users_code(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    source = "def main():\n    raise KeyError('k')\n"
    script.write_text(source)
    try:
        exec(compile(source + "main()\n", str(script), "exec"), {})
    except KeyError as exc:
        error: BaseException = exc
    text = describe_error(ExceptionGroup("x", [error]), script)
    assert text.startswith("KeyError: 'k' (") and text.endswith("job.py, line 2, in main)")
    assert describe_error(MachinesError("m.toml: bad\nmore"), script) == "m.toml: bad"
    assert describe_error(RuntimeError(), script) == "RuntimeError"
