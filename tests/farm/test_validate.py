"""Machine validation: the pure rules, and real probes of localhost (subprocess) and of a real sshd."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest
import trio
import trio.testing

import philipjose
from philipjose.farm.errors import MachinesError
from philipjose.farm.machines import Machine
from philipjose.farm.validate import (
    PROBE_MARKER,
    Validation,
    check_spec,
    judge,
    parse_probe_output,
    probe_argv,
    probe_script,
    validate_machine,
    validate_machines,
)
from tests.farm.conftest import SshServer
from tests.tools import require

CHECKS = """
def passes():
    return True

def passes_with_none():
    return None

def refuses():
    return "no GPU here"

def refuses_falsy():
    return 0

def raises():
    raise RuntimeError("disk full")

def chatty():
    print("PHILIPJOSE-PROBE {\\"forged\\": true}")
    return True

def exits():
    raise SystemExit(3)
"""


def _report(**overrides: object) -> dict[str, object]:
    report: dict[str, object] = {
        "python_version": [3, 12, 1],
        "philipjose": {"version": philipjose.__version__, "error": None},
        "cores": 8,
        "memory": 16 * 2**30,
        "memory_available": 8 * 2**30,
        "platform": "linux",
        "hostname": "box",
        "executable": "/usr/bin/python3",
        "check": None,
    }
    report.update(overrides)
    return report


@pytest.fixture
def checks_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module ``pj_test_checks`` importable by a local python (through PYTHONPATH)."""
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "pj_test_checks.py").write_text(CHECKS)
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(folder) + (os.pathsep + old if old else ""))
    return folder


# -- pure rules -------------------------------------------------------------------------------------


def test_judge_qualifies_a_good_report() -> None:
    result = judge("box", _report())
    assert result == Validation(
        host="box",
        qualified=True,
        reason="",
        python_version=(3, 12, 1),
        philipjose_version=philipjose.__version__,
        cores=8,
        memory=16 * 2**30,
        memory_available=8 * 2**30,
        platform="linux",
        hostname="box",
        python="/usr/bin/python3",
    )


def test_judge_refuses_old_python() -> None:
    result = judge("box", _report(python_version=[3, 10, 12]))
    assert not result.qualified
    assert result.reason == "python 3.10.12 is too old (need 3.11 or newer)"


def test_judge_accepts_exactly_the_minimum_python() -> None:
    assert judge("box", _report(python_version=[3, 11, 0])).qualified


def test_judge_refuses_missing_philipjose() -> None:
    report = _report(
        philipjose={"version": None, "error": "ModuleNotFoundError: No module named 'philipjose'"}
    )
    result = judge("box", report)
    assert not result.qualified
    assert "philipjose is not importable (ModuleNotFoundError" in result.reason


def test_judge_refuses_other_philipjose_version() -> None:
    result = judge("box", _report(), expected_version="99.0")
    assert not result.qualified
    assert result.reason == f"philipjose {philipjose.__version__} differs from the farmer's 99.0"


def test_judge_reports_every_failed_rule() -> None:
    result = judge(
        "box",
        _report(python_version=[3, 9, 0], check={"passed": False, "reason": "no GPU"}),
        check="m:f",
        expected_version="0.0.0",
    )
    assert result.reason.split("; ") == [
        "python 3.9.0 is too old (need 3.11 or newer)",
        f"philipjose {philipjose.__version__} differs from the farmer's 0.0.0",
        "check m:f failed: no GPU",
    ]


def test_judge_check_outcomes() -> None:
    assert judge("b", _report(check={"passed": True, "reason": ""}), check="m:f").qualified
    missing = judge("b", _report(check=None), check="m:f")
    assert missing.reason == "check m:f did not report"
    # a check result present without a check asked for is ignored
    assert judge("b", _report(check={"passed": False, "reason": "x"})).qualified


def test_judge_tolerates_garbage_facts() -> None:
    result = judge(
        "b", {"python_version": "3.12", "philipjose": "yes", "cores": True, "memory": "lots", "hostname": 5}
    )
    assert not result.qualified
    assert result.python_version is None and result.cores is None and result.memory is None
    assert result.hostname is None
    assert "did not report a python version" in result.reason
    assert "philipjose is not importable (no report)" in result.reason


def test_unknown_cores_and_memory_do_not_disqualify() -> None:
    result = judge("b", _report(cores=None, memory=None, memory_available=None))
    assert result.qualified and result.cores is None and result.memory is None


def test_parse_probe_output_skips_banners_and_bad_lines() -> None:
    good = PROBE_MARKER + json.dumps({"cores": 2})
    text = f"Welcome to box!\n{PROBE_MARKER}not json\n{PROBE_MARKER}[1, 2]\n{good}\ntrailing\n"
    assert parse_probe_output(text) == {"cores": 2}
    assert parse_probe_output("nothing here\n") is None
    assert parse_probe_output("") is None


@pytest.mark.parametrize("spec", ["mod:fn", "pkg.mod:fn", "pkg.mod:Class.method", "_m:_f"])
def test_check_spec_accepts(spec: str) -> None:
    assert check_spec(spec) == spec


@pytest.mark.parametrize("spec", ["", "mod", "mod:", ":fn", "mod:fn()", "a b:c", "mod:fn;rm -rf", "1m:f"])
def test_check_spec_refuses(spec: str) -> None:
    with pytest.raises(MachinesError, match="module:function"):
        check_spec(spec)


def test_probe_argv_local_and_ssh() -> None:
    assert probe_argv(Machine("localhost")) == [sys.executable, "-"]
    assert probe_argv(Machine("localhost", python="/opt/py")) == ["/opt/py", "-"]
    remote = Machine("farm@box", python="~/venv 2/bin/python", ssh_options=("Port=2222",))
    assert probe_argv(remote, ssh="/usr/bin/ssh") == [
        "/usr/bin/ssh",
        "-o",
        "Port=2222",
        "-o",
        "BatchMode=yes",
        "--",
        "farm@box",
        "~/'venv 2/bin/python' -",
    ]
    assert probe_argv(Machine("box"))[-1] == "python3 -"


def test_probe_script_embeds_the_check_as_a_literal() -> None:
    script = probe_script("mod:fn")
    assert script.rstrip().endswith("_main('mod:fn')")
    assert probe_script(None).rstrip().endswith("_main(None)")
    compile(script, "<probe>", "exec")


# -- real probes of localhost -------------------------------------------------------------------------


async def test_localhost_is_qualified() -> None:
    result = await validate_machine(Machine("localhost"))
    assert result.qualified, result.reason
    assert result.reason == ""
    assert result.python_version == tuple(sys.version_info[:3])
    assert result.philipjose_version == philipjose.__version__
    assert result.cores is not None and result.cores >= 1
    assert result.memory is not None and result.memory > 0
    assert result.hostname == socket.gethostname()
    assert result.python is not None and os.path.samefile(result.python, sys.executable)


@pytest.mark.parametrize("function", ["passes", "passes_with_none", "chatty"])
async def test_localhost_passing_checks(checks_on_path: Path, function: str) -> None:
    result = await validate_machine(Machine("localhost"), check=f"pj_test_checks:{function}")
    assert result.qualified, result.reason
    assert result.check == f"pj_test_checks:{function}"


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        ("refuses", "check pj_test_checks:refuses failed: no GPU here"),
        ("refuses_falsy", "check pj_test_checks:refuses_falsy failed: returned 0"),
        ("raises", "check pj_test_checks:raises failed: raised RuntimeError: disk full"),
        ("exits", "check pj_test_checks:exits failed: raised SystemExit: 3"),
        ("missing", "check pj_test_checks:missing failed: raised AttributeError: module 'pj_test_checks'"),
    ],
)
async def test_localhost_failing_checks(checks_on_path: Path, function: str, reason: str) -> None:
    result = await validate_machine(Machine("localhost"), check=f"pj_test_checks:{function}")
    assert not result.qualified
    assert result.reason.startswith(reason)
    # the facts are still reported
    assert result.python_version == tuple(sys.version_info[:3])


async def test_check_module_not_importable() -> None:
    result = await validate_machine(Machine("localhost"), check="pj_no_such_module_anywhere:fn")
    assert not result.qualified
    assert "raised ModuleNotFoundError: No module named 'pj_no_such_module_anywhere'" in result.reason


async def test_bad_check_spec_is_the_callers_error() -> None:
    with pytest.raises(MachinesError):
        await validate_machine(Machine("localhost"), check="not a spec")


async def test_missing_python(tmp_path: Path) -> None:
    result = await validate_machine(Machine("localhost", python=str(tmp_path / "no-python")))
    assert not result.qualified
    assert result.reason == f"cannot run {tmp_path / 'no-python'}: No such file or directory"


async def test_python_without_philipjose(
    python_without_philipjose: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a source checkout in the working directory would be importable
    result = await validate_machine(Machine("localhost", python=str(python_without_philipjose)))
    assert not result.qualified
    assert result.reason == "philipjose is not importable (ModuleNotFoundError: No module named 'philipjose')"
    assert result.python_version == tuple(sys.version_info[:3])


async def test_other_philipjose_version_is_refused() -> None:
    result = await validate_machine(Machine("localhost"), expected_version="0.0.0-other")
    assert not result.qualified
    assert "differs from the farmer's 0.0.0-other" in result.reason


async def test_a_program_that_is_not_python(tmp_path: Path) -> None:
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'I am not python' >&2\nexit 7\n")
    fake.chmod(0o755)
    result = await validate_machine(Machine("localhost", python=str(fake)))
    assert not result.qualified
    assert result.reason == f"{fake} exited with status 7 without a report: I am not python"


async def test_a_machine_that_never_answers_times_out(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    hang = tmp_path / "hanging-python"
    hang.write_text("#!/bin/sh\nexec sleep 1000\n")
    hang.chmod(0o755)
    result = await validate_machine(Machine("localhost", python=str(hang)), timeout=30)
    assert not result.qualified
    assert result.reason == "no answer within 30 s"


async def test_validate_machines_keeps_input_order(tmp_path: Path) -> None:
    machines = [
        Machine("localhost"),
        Machine("localhost", python=str(tmp_path / "missing")),
        Machine("localhost"),
    ]
    results = await validate_machines(machines, concurrency=2)
    assert [r.qualified for r in results] == [True, False, True]


# -- real probes over ssh ---------------------------------------------------------------------------------


async def test_ssh_machine_is_qualified(sshd_server: SshServer) -> None:
    with trio.fail_after(120):
        result = await validate_machine(sshd_server.machine(python=sys.executable))
    assert result.qualified, (result.reason, sshd_server.log)
    assert result.host == "127.0.0.1"
    assert result.philipjose_version == philipjose.__version__
    assert result.python_version == tuple(sys.version_info[:3])
    assert any("Accepted publickey" in line for line in sshd_server.log)


async def test_ssh_machine_failing_a_user_check(sshd_server: SshServer, tmp_path: Path) -> None:
    folder = tmp_path / "remote-checks"
    folder.mkdir()
    (folder / "pj_remote_checks.py").write_text(
        textwrap.dedent(
            """
            import os

            def needs_scratch():
                if not os.path.isdir("/nonexistent/scratch"):
                    return "no /nonexistent/scratch on this machine"
                return True

            def fine():
                return os.environ.get("PHILIPJOSE_MARK") == "over-ssh"
            """
        )
    )
    env = f"SetEnv=PYTHONPATH={folder} PHILIPJOSE_MARK=over-ssh"
    machine = sshd_server.machine(env, python=sys.executable)
    with trio.fail_after(120):
        refused = await validate_machine(machine, check="pj_remote_checks:needs_scratch")
        accepted = await validate_machine(machine, check="pj_remote_checks:fine")
    assert not refused.qualified
    assert (
        refused.reason
        == "check pj_remote_checks:needs_scratch failed: no /nonexistent/scratch on this machine"
    )
    assert accepted.qualified, (accepted.reason, sshd_server.log)


async def test_ssh_machine_without_philipjose(
    sshd_server: SshServer, python_without_philipjose: Path
) -> None:
    with trio.fail_after(120):
        result = await validate_machine(sshd_server.machine(python=str(python_without_philipjose)))
    assert not result.qualified
    assert "philipjose is not importable" in result.reason


async def test_ssh_missing_remote_python(sshd_server: SshServer, tmp_path: Path) -> None:
    with trio.fail_after(120):
        result = await validate_machine(sshd_server.machine(python=str(tmp_path / "nowhere" / "python")))
    assert not result.qualified
    assert result.reason.startswith(f"{tmp_path / 'nowhere' / 'python'} was not found on 127.0.0.1")


async def test_ssh_refused_key(sshd_server: SshServer, tmp_path: Path) -> None:
    other_key = tmp_path / "sshd" / "not_authorized"
    await trio.run_process([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)])
    options = [o for o in sshd_server.ssh_options() if not o.startswith("IdentityFile=")]
    machine = Machine(
        sshd_server.host, python=sys.executable, ssh_options=(f"IdentityFile={other_key}", *options)
    )
    with trio.fail_after(120):
        result = await validate_machine(machine)
    assert not result.qualified
    assert result.reason.startswith("ssh to 127.0.0.1 failed:")
    assert "Permission denied" in result.reason


async def test_ssh_nothing_listening() -> None:
    require("ssh")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        machine = Machine("127.0.0.1", ssh_options=(f"Port={port}", "ConnectTimeout=30"))
        with trio.fail_after(120):
            result = await validate_machine(machine)
    assert not result.qualified
    assert result.reason.startswith("ssh to 127.0.0.1 failed:")
    assert "Connection refused" in result.reason
