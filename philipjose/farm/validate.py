"""Machine validation: run a small probe with a machine's python and qualify the machine or not.

PHILIP-JOSE's "validation ... to qualify it or not for the current computation". The probe (the
source of :mod:`philipjose.farm._probe`) is sent on the standard input of ``PYTHON -``: a local
subprocess for ``localhost``, ``ssh [options] HOST 'PYTHON -'`` for every other host. Nothing is
installed or left behind on the machine. The probe reports the python version, whether philipjose is
importable and its version, the usable cores, the memory, and runs the optional user check.

Qualification rules (:func:`judge`), all of which must hold:

1. the probe answered (ssh connected, the python started and printed its report) within the timeout;
2. the python is at least :data:`MIN_PYTHON` (3.11);
3. philipjose is importable there and its version equals the farmer's (``philipjose.__version__``),
   because workers and farmer exchange pickled code and must agree on the protocol;
4. the user check, if one is given as ``module:function``, passes: it is imported with the machine's
   python (from its ``sys.path``, which includes the working directory: the current directory for
   ``localhost``, the login directory over ssh) and called with no arguments; returning None or a
   true value passes, returning a string refuses with that string as the reason, returning another
   false value or raising refuses.

Unknown core count or memory does not disqualify a machine; they are reported as None.

A :class:`~philipjose.farm.slurm.Slurm` source is validated on the cluster (:func:`validate_slurm`):
``sinfo`` must answer and its partition exist (a missing one is the one reason given), then the
probe runs as one task on a compute node (``srun ... PYTHON -``, the probe on the task's stdin) and
is judged by the same rules.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from philipjose._version import __version__
from philipjose.farm.errors import MachinesError
from philipjose.farm.machines import Machine
from philipjose.farm.slurm import Slurm, SlurmError, check_cluster
from philipjose.farm.slurm import probe_argv as slurm_probe_argv

__all__ = [
    "DEFAULT_TIMEOUT",
    "MIN_PYTHON",
    "PROBE_MARKER",
    "Validation",
    "check_spec",
    "judge",
    "parse_probe_output",
    "probe_argv",
    "probe_script",
    "validate_machine",
    "validate_machines",
    "validate_slurm",
]

MIN_PYTHON = (3, 11)
"""The oldest python a worker may run."""

DEFAULT_TIMEOUT = 60.0
"""Seconds a machine has to answer the probe (ssh connection included)."""

PROBE_MARKER = "PHILIPJOSE-PROBE "
"""The prefix of the probe's one report line on stdout."""

_CHECK_SPEC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*")
_STDERR_TAIL = 300


@dataclass(frozen=True, slots=True)
class Validation:
    """What validating one machine found.

    ``qualified`` says whether the farm may use it; ``reason`` says why not (every failed rule, joined
    with ``"; "``), and is empty when it is qualified. The facts are None when the probe did not
    report them: ``python_version`` (major, minor, micro), ``philipjose_version``, ``cores`` (usable
    by this process), ``memory`` and ``memory_available`` (bytes), ``platform`` (``sys.platform``),
    ``hostname``, ``python`` (the interpreter's path there). ``check`` is the user check that ran.
    """

    host: str
    qualified: bool
    reason: str
    python_version: tuple[int, int, int] | None = None
    philipjose_version: str | None = None
    cores: int | None = None
    memory: int | None = None
    memory_available: int | None = None
    platform: str | None = None
    hostname: str | None = None
    python: str | None = None
    check: str | None = None


def check_spec(spec: str) -> str:
    """``spec`` if it reads ``module:function`` (dotted names allowed), else :class:`MachinesError`."""
    if not _CHECK_SPEC.fullmatch(spec):
        raise MachinesError(f"a check must look like module:function (e.g. mychecks:has_gpu), not {spec!r}")
    return spec


def probe_script(check: str | None = None) -> str:
    """The python source sent to the machine: the probe, then a call running it with ``check``."""
    source = Path(__file__).with_name("_probe.py").read_text(encoding="utf-8")
    return f"{source}\n_main({check!r})\n"


def probe_argv(machine: Machine, *, ssh: str = "ssh") -> list[str]:
    """The command that runs the probe (read from stdin) with ``machine``'s python."""
    if machine.is_local:
        return [machine.python_command(), "-"]
    return machine.ssh_command(f"{machine.remote_python()} -", ssh=ssh)


def parse_probe_output(stdout: str) -> dict[str, object] | None:
    """The probe's report from its stdout, or None if there is no well-formed report line.

    Lines before the report (a login banner, a shell's chatter) are ignored; the last report wins.
    """
    report: dict[str, object] | None = None
    for line in stdout.splitlines():
        if line.startswith(PROBE_MARKER):
            try:
                value = json.loads(line[len(PROBE_MARKER) :])
            except ValueError:
                continue
            if isinstance(value, dict):
                report = value
    return report


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _version(value: object) -> tuple[int, int, int] | None:
    if isinstance(value, list) and len(value) == 3 and all(_int_or_none(v) is not None for v in value):
        return (value[0], value[1], value[2])
    return None


def judge(
    host: str,
    report: Mapping[str, object],
    *,
    check: str | None = None,
    expected_version: str = __version__,
) -> Validation:
    """Apply the qualification rules (module docstring) to a probe ``report``. Pure."""
    problems: list[str] = []
    python_version = _version(report.get("python_version"))
    if python_version is None:
        problems.append("the probe did not report a python version")
    elif python_version[:2] < MIN_PYTHON:
        found = ".".join(map(str, python_version))
        problems.append(f"python {found} is too old (need {'.'.join(map(str, MIN_PYTHON))} or newer)")

    pj = report.get("philipjose")
    pj_version = _str_or_none(pj.get("version")) if isinstance(pj, dict) else None
    if pj_version is None:
        error = _str_or_none(pj.get("error")) if isinstance(pj, dict) else None
        problems.append(f"philipjose is not importable ({error or 'no report'})")
    elif pj_version != expected_version:
        problems.append(f"philipjose {pj_version} differs from the farmer's {expected_version}")

    if check is not None:
        outcome = report.get("check")
        if not isinstance(outcome, dict):
            problems.append(f"check {check} did not report")
        elif outcome.get("passed") is not True:
            problems.append(f"check {check} failed: {outcome.get('reason') or 'no reason given'}")

    return Validation(
        host=host,
        qualified=not problems,
        reason="; ".join(problems),
        python_version=python_version,
        philipjose_version=pj_version,
        cores=_int_or_none(report.get("cores")),
        memory=_int_or_none(report.get("memory")),
        memory_available=_int_or_none(report.get("memory_available")),
        platform=_str_or_none(report.get("platform")),
        hostname=_str_or_none(report.get("hostname")),
        python=_str_or_none(report.get("executable")),
        check=check,
    )


def _tail(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text if len(text) <= _STDERR_TAIL else "..." + text[-_STDERR_TAIL:]


def _no_report(machine: Machine | Slurm, returncode: int, stderr: bytes) -> str:
    detail = _tail(stderr) or "no error output"
    if isinstance(machine, Slurm):
        return f"srun exited with status {returncode} without a report: {detail}"
    if not machine.is_local and returncode == 255:
        return f"ssh to {machine.host} failed: {detail}"
    if not machine.is_local and returncode == 127:
        return f"{machine.python_command()} was not found on {machine.host}: {detail}"
    return f"{machine.python_command()} exited with status {returncode} without a report: {detail}"


async def _kill(process: trio.Process) -> None:
    """Stop a probe at once: it holds nothing worth a graceful exit (ssh hangs up the remote side)."""
    process.kill()


async def validate_machine(
    machine: Machine | Slurm,
    *,
    check: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    expected_version: str = __version__,
    ssh: str = "ssh",
) -> Validation:
    """Probe ``machine`` and judge it (see the module docstring for the rules).

    Never raises for a machine that is down, unreachable or broken: that is a ``Validation`` with
    ``qualified=False`` and the reason. ``check`` is a ``module:function`` spec (checked with
    :func:`check_spec`); ``timeout`` bounds the whole probe, ssh included (the process is killed
    when it runs out); ``ssh`` is the ssh client to run.
    """
    if check is not None:
        check_spec(check)
    if isinstance(machine, Slurm):
        return await validate_slurm(machine, check=check, timeout=timeout, expected_version=expected_version)
    return await _probe(machine, probe_argv(machine, ssh=ssh), check, timeout, expected_version)


async def validate_slurm(
    slurm: Slurm,
    *,
    check: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    expected_version: str = __version__,
    environ: Mapping[str, str] | None = None,
) -> Validation:
    """Validate a Slurm source: ``sinfo`` answers and its partition exists (else that is the
    reason), then the probe runs as one ``srun`` task on a compute node (a step of the enclosing job
    inside an allocation) and is judged as a machine's is. ``timeout`` bounds the probe's job,
    queueing included."""
    if check is not None:
        check_spec(check)
    try:
        await check_cluster(slurm)
    except SlurmError as exc:
        return Validation(slurm.host, False, str(exc).removeprefix(f"{slurm.host}: "), check=check)
    argv = slurm_probe_argv(slurm, os.environ if environ is None else environ)
    return await _probe(slurm, argv, check, timeout, expected_version)


async def _probe(
    machine: Machine | Slurm, argv: list[str], check: str | None, timeout: float, expected_version: str
) -> Validation:
    script = probe_script(check).encode("utf-8")
    with trio.move_on_after(timeout) as scope:
        try:
            done = await trio.run_process(
                argv,
                stdin=script,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                deliver_cancel=_kill,
            )
        except OSError as exc:
            return Validation(
                machine.host, False, f"cannot run {argv[0]}: {exc.strerror or exc}", check=check
            )
    if scope.cancelled_caught:
        return Validation(machine.host, False, f"no answer within {timeout:g} s", check=check)
    report = parse_probe_output(done.stdout.decode("utf-8", "replace"))
    if report is None:
        return Validation(machine.host, False, _no_report(machine, done.returncode, done.stderr), check=check)
    return judge(machine.host, report, check=check, expected_version=expected_version)


async def validate_machines(
    machines: Iterable[Machine | Slurm],
    *,
    check: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    expected_version: str = __version__,
    concurrency: int = 16,
    ssh: str = "ssh",
) -> list[Validation]:
    """Validate ``machines`` concurrently (at most ``concurrency`` probes at once), in input order."""
    targets: Sequence[Machine | Slurm] = list(machines)
    results: list[Validation | None] = [None] * len(targets)
    limiter = trio.CapacityLimiter(max(1, concurrency))

    async def one(index: int, machine: Machine | Slurm) -> None:
        async with limiter:
            results[index] = await validate_machine(
                machine, check=check, timeout=timeout, expected_version=expected_version, ssh=ssh
            )

    async with trio.open_nursery() as nursery:
        for index, machine in enumerate(targets):
            nursery.start_soon(one, index, machine)
    return [r for r in results if r is not None]
