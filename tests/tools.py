"""Finding the real peers the interop tests need (erl, escript, epmd, elixir, sshd, openssl), on each
Erlang/OTP installation the interop suites run against.

``require("erl")`` returns the tool's path. When the tool is missing the test is skipped with the
reason, except when ``PHILIPJOSE_REQUIRE_ERLANG=1`` (CI sets it): then the test fails, so a CI machine
that lost its Erlang cannot pass by skipping.

Two installations: ``otp25`` is the ``erl``/``elixir`` on ``PATH`` (OTP 25 and Elixir 1.14, Debian
bookworm's packages, in CI); ``otp27`` is OTP 27 and Elixir 1.18 in a Debian trixie chroot whose
directory is ``PHILIPJOSE_OTP27_ROOT`` (``.ci/run`` makes it). A test that uses the ``otp`` fixture
(``tests/conftest.py``) runs once per installation, and while it runs ``require()`` answers with that
installation's tools: for the chroot, a small wrapper script that runs the tool inside it
(``chroot DIR``, in the caller's working directory). ``chroot`` and the Debian ``erl``/``elixir``
scripts ``exec``, so the pid of the process a test starts is the pid of the ``beam.smp``: killing it
kills the node, as on the host. The chroot shares the host's network (loopback, EPMD) and sees the
host's temporary directory and this repository at the same paths (bind mounts that ``.ci/run``
makes), so code paths, escripts and certificates a test passes resolve the same inside.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_EXTRA_DIRS = ("/usr/sbin", "/usr/lib/erlang/bin")
# The tools an Erlang/OTP (+ Elixir) installation provides; the others (sshd, openssl...) are the host's.
OTP_TOOLS = frozenset({"erl", "erlc", "escript", "epmd", "elixir", "elixirc", "iex", "mix", "run_erl"})
_CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OTP27_ROOT_VARIABLE = "PHILIPJOSE_OTP27_ROOT"
ROOT = Path(__file__).resolve().parents[1]


def _required() -> bool:
    return os.environ.get("PHILIPJOSE_REQUIRE_ERLANG") == "1"


def _missing(reason: str) -> None:
    if _required():
        pytest.fail(f"{reason}, and PHILIPJOSE_REQUIRE_ERLANG=1 requires it")
    pytest.skip(reason)


@dataclass(eq=False)
class Otp:
    """One Erlang/OTP installation: the host's (``root`` None) or a chroot's.

    ``tool("erl")`` is an executable path that runs that installation's ``erl`` (None when missing);
    ``release`` is the OTP major release (``erlang:system_info(otp_release)``) once checked.
    """

    name: str
    root: Path | None = None
    bin_dir: Path | None = None  # where the chroot's wrapper scripts are written
    release: str = ""
    elixir: str = ""
    _wrappers: dict[str, str] = field(default_factory=dict)

    def tool(self, tool: str) -> str | None:
        if self.root is None:
            return shutil.which(tool) or shutil.which(tool, path=os.pathsep.join(_EXTRA_DIRS))
        inside = _find_inside(self.root, tool)
        if inside is None:
            return None
        if tool not in self._wrappers:
            assert self.bin_dir is not None
            self.bin_dir.mkdir(parents=True, exist_ok=True)
            wrapper = self.bin_dir / tool
            # cd to the caller's directory inside the chroot when it is visible there (chroot(8) cds to
            # /); the chroot's own PATH (the host's may hold these wrappers, visible inside: elixir
            # runs erl from PATH)
            run = f'cd "$0" 2>/dev/null || cd /; PATH={_CHROOT_PATH}; exec "$@"'
            wrapper.write_text(
                "#!/bin/sh\n"
                f"exec {shlex.quote(_chroot())} {shlex.quote(str(self.root))} /bin/sh -c "
                f'{shlex.quote(run)} "$PWD" {shlex.quote(inside)} "$@"\n'
            )
            wrapper.chmod(0o755)
            self._wrappers[tool] = str(wrapper)
        return self._wrappers[tool]

    def major(self) -> int:
        """The OTP major release of this installation's ``erl`` (run once, then remembered)."""
        if not self.release:
            erl = require("erl", self)
            code = 'io:format("~s", [erlang:system_info(otp_release)]), halt().'
            done = subprocess.run(
                [erl, "-noshell", "-start_epmd", "false", "-eval", code],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            self.release = done.stdout.strip()
        return int(self.release)

    def path_dirs(self) -> list[str]:
        """Directories to put first on ``PATH`` so that a shell finds this installation's tools."""
        if self.root is None:
            return []
        for tool in OTP_TOOLS:
            self.tool(tool)
        return [str(self.bin_dir)]

    def __str__(self) -> str:
        return self.name


def _chroot() -> str:
    return shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin") or "chroot"


def _find_inside(root: Path, tool: str) -> str | None:
    for directory in ("/usr/bin", "/usr/sbin", "/usr/lib/erlang/bin"):
        if os.access(root / directory.lstrip("/") / tool, os.X_OK):
            return f"{directory}/{tool}"
    return None


HOST = Otp("otp25")
_current: Otp | None = None


@contextmanager
def using(otp: Otp | None) -> Iterator[None]:
    """``require()`` answers with ``otp``'s tools inside the block (None: the host's)."""
    global _current
    previous, _current = _current, otp
    try:
        yield
    finally:
        _current = previous


def current() -> Otp:
    """The installation of the running test (the host's when it has none)."""
    return _current or HOST


def require(tool: str, otp: Otp | None = None) -> str:
    """The path of ``tool``: from ``otp``, else the installation of the running test, else the host."""
    installation = otp or _current or HOST
    path = installation.tool(tool) if tool in OTP_TOOLS else HOST.tool(tool)
    if path is not None:
        return path
    where = "" if installation.root is None else f" in the {installation.name} chroot {installation.root}"
    _missing(f"{tool} is not installed on this machine{where}")
    raise AssertionError("unreachable")


_PROBE = (
    'io:format("OTP ~s~n", [erlang:system_info(otp_release)]),'
    ' [io:format("MISSING ~s~n", [D]) || D <- [{dirs}], not filelib:is_dir(D)], halt().'
)


def check_chroot(otp: Otp, visible: list[Path]) -> str | None:
    """Run the chroot's erl and elixir once: None when healthy (sets ``otp.release``, ``otp.elixir``),
    else why not.

    ``visible`` are host directories the tests pass to erl (temporary files, this repository): each
    must be the same directory inside the chroot.
    """
    assert otp.root is not None
    if not (otp.root / "proc" / "self").exists():
        return f"{otp.root}/proc is not mounted (mount -t proc proc {otp.root}/proc)"
    erl, elixir = otp.tool("erl"), otp.tool("elixir")
    if erl is None or elixir is None:
        return f"{otp.root} has no {'erl' if erl is None else 'elixir'}"
    dirs = ", ".join(f'"{d}"' for d in visible)
    probe = [erl, "-noshell", "-start_epmd", "false", "-eval", _PROBE.format(dirs=dirs)]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=120, check=False)
        version = subprocess.run(
            [elixir, "--version"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"erl in {otp.root} did not run: {exc}"
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not any(line.startswith("OTP ") for line in lines):
        return f"erl in {otp.root} failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-500:]}"
    missing = [line.split(" ", 1)[1] for line in lines if line.startswith("MISSING ")]
    if missing:
        return f"not visible inside {otp.root} (bind-mount them at the same paths): {', '.join(missing)}"
    elixirs = [line.split()[1] for line in version.stdout.splitlines() if line.startswith("Elixir ")]
    if version.returncode != 0 or not elixirs:
        return f"elixir in {otp.root} failed: {(version.stdout + version.stderr).strip()[-500:]}"
    otp.release = next(line.split()[1] for line in lines if line.startswith("OTP "))
    otp.elixir = elixirs[0]
    return None


def chroot_installation(name: str, bin_dir: Path, visible: list[Path]) -> Otp:
    """The chroot of ``PHILIPJOSE_OTP27_ROOT``, checked; skips (or fails, under
    ``PHILIPJOSE_REQUIRE_ERLANG=1`` with the variable set) when it is unset, missing or broken."""
    root = os.environ.get(OTP27_ROOT_VARIABLE)
    if not root:
        pytest.skip(f"{OTP27_ROOT_VARIABLE} is not set (.ci/run makes an OTP 27 chroot and sets it)")
    otp = Otp(name, Path(root), bin_dir)
    if not otp.root or not otp.root.is_dir():
        problem: str | None = f"{OTP27_ROOT_VARIABLE}={root} is not a directory"
    else:
        problem = check_chroot(otp, visible)
    if problem is not None:
        _missing(f"the {name} chroot is broken: {problem}")
    return otp
