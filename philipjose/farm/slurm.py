"""Workers started through Slurm: :class:`Slurm` (a source of workers beside ``Machine``) and the
allocation it runs them in.

Theory of operation
-------------------
Each worker is one Slurm *job step* of one task: ``srun --jobid=JOB --nodes=1 --ntasks=1 --exact
PYTHON -m philipjose worker ...``, started by the farmer like an ssh worker (:func:`launch`): the
``srun`` client is the local process, the farm's cookie is the first line of its stdin, which srun
forwards to the task, and that stdin stays open as the worker's lifeline. Closing it ends the
worker; killing the ``srun`` client (the farm does, for a worker it gives up on) makes Slurm cancel
the step. ``--exact`` gives each step only its own CPUs, so the steps of one allocation run side by
side (without it, Slurm 21.08+ gives a step every CPU of its node and the next step waits).

The allocation (:class:`Allocation`, one per ``Slurm`` source of a farm):

- inside one (``SLURM_JOB_ID`` is set: the farmer runs in an ``sbatch`` script or an ``salloc``
  shell), the steps go into that job. The farm never cancels it, and when it has ended a launch fails
  (the farmer is normally gone with it);
- outside one, the farm asks for its own as it starts (before ``start_timeout`` counts) with
  ``salloc --ntasks=N --cpus-per-task=C [--partition, --time, --account, extra...]
  --kill-command=TERM -- sh -c 'echo $SLURM_JOB_ID; exec cat'``. That blocks while the job waits in
  the queue (``--immediate=S`` in ``extra`` bounds the wait), then prints the job id. The command,
  run by salloc on the farmer's host, holds the allocation as long as its stdin is open: it is the
  allocation's lifeline, as stdin is a worker's. When the farmer exits in any way (SIGKILL
  included) the pipe closes, salloc relinquishes the job, and nothing is left queued or running on
  the cluster. Closing the farm closes that lifeline, ``scancel``\\ s the job (only a job it
  created) and waits until ``squeue`` no longer lists it.

A worker lost to the scheduler (its step killed, the job cancelled, its time limit reached, the job
preempted or its node failed) is a worker whose process (``srun``) exited: the failure policy
(:mod:`~philipjose.farm.policy`) charges its death as any other, and its keeper launches a
replacement. Before each launch :meth:`Allocation.current_job` checks the job (``squeue``) and, when the
whole allocation is gone, asks Slurm for a new one (one request however many workers are waiting).

Which states a job may still run steps in, what ``sinfo`` says about a partition, what ``salloc``
and ``srun`` are run with: the pure functions below decide, and are tested without Slurm.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

from philipjose.farm.errors import FarmError, MachinesError
from philipjose.farm.launch import LaunchError, WorkerProcess, launch
from philipjose.farm.machines import KINDS, Machine, _python_problem
from philipjose.farm.output import LineSplitter, receive_chunk

__all__ = [
    "ACTIVE_STATES",
    "Allocation",
    "Slurm",
    "SlurmError",
    "allocation_argv",
    "check_cluster",
    "close_allocations",
    "enclosing_job",
    "is_active",
    "is_listed",
    "job_state",
    "open_allocations",
    "partition_problem",
    "probe_argv",
    "slurm_from_table",
    "step_argv",
]

_LOG = logging.getLogger("philipjose.farm.slurm")

ACTIVE_STATES: Final = frozenset({"RUNNING", "CONFIGURING", "SUSPENDED", "RESIZING", "PENDING"})
"""``squeue``'s states (``%T``) of a job that may still run steps; every other state (COMPLETING,
CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL, ...) means its allocation is gone."""

_TIME = re.compile(r"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})")
_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOLDER = 'echo "$SLURM_JOB_ID"; exec cat >/dev/null'  # holds the allocation while its stdin is open
_CLOSE_WAIT: Final = 30.0  # seconds a closing farm waits for its job to leave squeue's listing
_SAID: Final = 64  # lines of salloc's stderr kept to say why it gave up
_SALLOC_GRACE: Final = 5.0  # seconds salloc gets to relinquish a job once its lifeline is closed
_QUERY_TIMEOUT: Final = 30.0  # seconds a sinfo/squeue/scancel call may take


class SlurmError(FarmError):
    """Slurm's commands did not answer, or refused what the farm asked (a missing partition)."""


def _options_problem(options: object) -> str | None:
    if not isinstance(options, (list, tuple)):
        return f'must be a list of option strings ("--qos=debug"), not {type(options).__name__}'
    for index, option in enumerate(options):
        if not isinstance(option, str):
            return f"[{index}] must be a string, not {type(option).__name__}"
        if not option.startswith("-") or _CONTROL.search(option):
            return f'[{index}] must be one option starting with "-" ("--qos=debug"), not {option!r}'
    return None


def _name_problem(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value.startswith("-"):
        return f"must be a Slurm name (letters, digits, _.+-, not starting with -), not {value!r}"
    return None


def _time_problem(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and (_TIME.fullmatch(value) or value.upper() in ("INFINITE", "UNLIMITED")):
        return None
    return f'must be a Slurm time limit ("30", "1:00:00", "2-12"; minutes by default), not {value!r}'


def _count_problem(value: object, largest: int = 1 << 20) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
        return f"must be an integer from 1 to {largest}, not {value!r}"
    return None


@dataclass(frozen=True, slots=True)
class Slurm:
    """A source of ``workers`` workers started through Slurm, usable in ``Farm(machines=[...])``.

    - ``workers``: how many (each one job step of one task);
    - ``partition``, ``time`` (a Slurm time limit: ``"30"`` minutes, ``"1:00:00"``, ``"2-12"``),
      ``account``: the allocation's ``--partition``, ``--time``, ``--account`` (default: the cluster's);
    - ``cpus_per_worker``: CPUs each worker gets (``--cpus-per-task``, default 1);
    - ``extra``: more options for the allocation's ``salloc`` (and for the validation probe's
      ``srun``), each one string: ``["--qos=short", "--mem-per-cpu=2G", "--constraint=avx2"]``;
    - ``step_options``: more options for each worker's ``srun``;
    - ``python``: the interpreter the workers run (default: the farmer's own ``sys.executable``,
      which on a cluster is on the shared filesystem);
    - ``name``: how the farm names this source (its ``Farm.machines`` entry, its workers' node
      names); default ``slurm``, or ``slurm-PARTITION``.

    Inside an allocation (``SLURM_JOB_ID`` set) the workers run in it and the allocation options are
    not used. A bad value raises :class:`~philipjose.farm.errors.MachinesError`.
    """

    workers: int = 1
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    extra: tuple[str, ...] = ()
    step_options: tuple[str, ...] = ()
    cpus_per_worker: int = 1
    python: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        for key in ("extra", "step_options"):
            if isinstance(getattr(self, key), list):
                object.__setattr__(self, key, tuple(getattr(self, key)))
        for key, problem in (
            ("workers", _count_problem(self.workers)),
            ("partition", _name_problem(self.partition)),
            ("time", _time_problem(self.time)),
            ("account", _name_problem(self.account)),
            ("extra", _options_problem(self.extra)),
            ("step_options", _options_problem(self.step_options)),
            ("cpus_per_worker", _count_problem(self.cpus_per_worker, 4096)),
            ("python", _python_problem(self.python)),
            ("name", _name_problem(self.name)),
        ):
            if problem is not None:
                raise MachinesError(f"Slurm {key} {problem}")

    @property
    def host(self) -> str:
        """This source's name in the farm (see ``name``)."""
        if self.name is not None:
            return self.name
        return "slurm" if self.partition is None else f"slurm-{self.partition}"

    @property
    def is_local(self) -> bool:
        """False: the workers run wherever Slurm puts them."""
        return False

    def python_command(self) -> str:
        """The interpreter the workers run."""
        return self.python or sys.executable

    def to_table(self) -> dict[str, object]:
        """This source's keys as written under ``[machines.NAME]`` with ``kind = "slurm"``."""
        table: dict[str, object] = {"kind": "slurm", "workers": self.workers}
        for key in ("partition", "time", "account", "python"):
            if getattr(self, key) is not None:
                table[key] = getattr(self, key)
        if self.cpus_per_worker != 1:
            table["cpus_per_worker"] = self.cpus_per_worker
        for key in ("extra", "step_options"):
            if getattr(self, key):
                table[key] = list(getattr(self, key))
        return table


def slurm_from_table(name: str, table: Mapping[str, object], source: str) -> Slurm:
    """The :class:`Slurm` of a machines file's ``[machines.NAME]`` table with ``kind = "slurm"``
    (its keys: ``KINDS["slurm"]``, checked by ``parse_machines``); :class:`MachinesError` naming
    ``source`` and the key for a bad value."""
    values = {key: table[key] for key in KINDS["slurm"] if key in table}
    for key in ("extra", "step_options"):
        if key in values and (problem := _options_problem(values[key])) is not None:
            raise MachinesError(f"{source}: machines.{name}.{key}: {problem}")
    try:
        return Slurm(name=name, **values)  # type: ignore[arg-type]
    except MachinesError as exc:
        raise MachinesError(f"{source}: machines.{name}: {exc}") from None


# -- what is run (pure) ----------------------------------------------------------------------------


def enclosing_job(environ: Mapping[str, str]) -> str | None:
    """The job the farmer runs inside (``SLURM_JOB_ID``), or None outside an allocation."""
    job = environ.get("SLURM_JOB_ID", "").strip()
    return job if job.isdigit() else None


def _allocation_options(slurm: Slurm) -> list[str]:
    options = []
    for key in ("partition", "time", "account"):
        value = getattr(slurm, key)
        if value is not None:
            options.append(f"--{key}={value}")
    return options


def allocation_argv(slurm: Slurm, job_name: str, *, salloc: str = "salloc") -> list[str]:
    """The ``salloc`` that asks for ``slurm``'s allocation and holds it while its stdin is open;
    it prints the job id on stdout once the job is granted."""
    return [
        salloc,
        f"--job-name={job_name}",
        f"--ntasks={slurm.workers}",
        f"--cpus-per-task={slurm.cpus_per_worker}",
        *_allocation_options(slurm),
        *slurm.extra,
        "--kill-command=TERM",  # when Slurm revokes the job (scancel, time limit), the holder ends
        "--",
        "sh",
        "-c",
        _HOLDER,
    ]


def step_argv(slurm: Slurm, job: str, args: Sequence[str], *, srun: str = "srun") -> list[str]:
    """The ``srun`` that runs one worker (``PYTHON *args``) as a one-task step of ``job``."""
    return [
        srun,
        f"--jobid={job}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={slurm.cpus_per_worker}",
        "--exact",  # only this step's CPUs: the workers' steps run side by side
        "--quiet",
        *slurm.step_options,
        slurm.python_command(),
        *args,
    ]


def probe_argv(slurm: Slurm, environ: Mapping[str, str], *, srun: str = "srun") -> list[str]:
    """The ``srun`` that runs the validation probe (read from stdin) as one task on a compute node:
    a step of the enclosing job inside an allocation, else a one-task job of its own."""
    job = enclosing_job(environ)
    where = [f"--jobid={job}", "--exact"] if job is not None else [*_allocation_options(slurm), *slurm.extra]
    return [srun, *where, "--nodes=1", "--ntasks=1", "--quiet", slurm.python_command(), "-"]


def partition_problem(sinfo_partitions: str, partition: str | None) -> str | None:
    """What is wrong with ``partition`` given ``sinfo -h -o %P``'s output (one partition a line, the
    default one marked ``*``), or None. ``partition=None`` needs a default partition."""
    names = [line.strip() for line in sinfo_partitions.splitlines() if line.strip()]
    plain = [name.rstrip("*") for name in names]
    listed = ", ".join(plain) or "none"
    if partition is None:
        if not any(name.endswith("*") for name in names):
            return f"the cluster has no default partition: give one (partitions: {listed})"
        return None
    if partition not in plain:
        return f"partition {partition!r} does not exist on this cluster (partitions: {listed})"
    return None


def job_state(returncode: int, stdout: str, stderr: str = "") -> str | None:
    """The job's state from ``squeue -h -t all -j JOB -o %T`` (its exit status and output): the
    state, ``""`` when Slurm no longer knows the job (it has ended: squeue lists nothing, or says
    ``Invalid job id`` once the record is purged, ``MinJobAge`` after the end), or None when squeue
    failed for another reason (the controller did not answer: nothing is known)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if returncode == 0:
        return lines[0].split()[0] if lines else ""
    return "" if "invalid job id" in stderr.lower() else None


def is_active(state: str | None) -> bool:
    """Whether a job in ``state`` (see :func:`job_state`) may still run steps: an unknown state
    (squeue did not answer) counts as active, so a launch tries and its failure is charged."""
    return state is None or state.rstrip("+") in ACTIVE_STATES


def is_listed(state: str | None) -> bool:
    """Whether ``squeue`` (without ``-t``) still lists a job in ``state``: active or COMPLETING
    (its processes are being killed). An unknown state (squeue did not answer) counts as listed."""
    return is_active(state) or (state or "").rstrip("+") == "COMPLETING"


async def _first_line(stream: trio.abc.ReceiveStream, limit: int = 64) -> str:
    """The first line of ``stream`` (at most ``limit`` bytes), stripped; what came if it ended first."""
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        chunk = await receive_chunk(stream)
        if not chunk:
            break
        line += chunk
    return line.decode("ascii", "replace").strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- Slurm's commands ------------------------------------------------------------------------------


async def _query(argv: list[str], timeout: float = _QUERY_TIMEOUT) -> tuple[int, str, str]:
    """Run a Slurm client command; (exit status, stdout, stderr). SlurmError if it cannot run."""
    with trio.move_on_after(timeout) as scope:
        try:
            done = await trio.run_process(
                argv, stdin=subprocess.DEVNULL, capture_stdout=True, capture_stderr=True, check=False
            )
        except OSError as exc:
            raise SlurmError(
                f"cannot run {argv[0]}: {exc.strerror or exc} (are Slurm's commands on PATH?)"
            ) from exc
    if scope.cancelled_caught:
        raise SlurmError(f"{argv[0]} did not answer within {timeout:g} s")
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


async def check_cluster(slurm: Slurm, *, sinfo: str = "sinfo") -> None:
    """Raise :class:`SlurmError` unless ``sinfo`` answers and ``slurm``'s partition exists (outside
    an allocation; inside one the job's own partition is used)."""
    code, out, err = await _query([sinfo, "-h", "-o", "%P"])
    if code != 0:
        raise SlurmError(f"sinfo did not answer: {_last_line(err) or f'exit status {code}'}")
    problem = partition_problem(out, slurm.partition)
    if problem is not None and enclosing_job(os.environ) is None:
        raise SlurmError(f"{slurm.host}: {problem}")


async def _state_of(job: str) -> str | None:
    try:
        code, out, err = await _query(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"])
    except SlurmError:
        return None
    return job_state(code, out, err)


class Allocation:
    """The Slurm job the workers of one :class:`Slurm` source run in (see the module docstring).

    :meth:`launch` starts a worker in it (asking Slurm for the job first when there is none or it has
    ended); :meth:`aclose` cancels the job if this object created it. ``job_name`` names the jobs it
    creates (the farm's: ``philipjose-farm-ID``).
    """

    def __init__(self, slurm: Slurm, job_name: str, environ: Mapping[str, str] | None = None) -> None:
        self.slurm = slurm
        self.job_name = job_name
        self.enclosing = enclosing_job(os.environ if environ is None else environ)
        self.job: str | None = self.enclosing
        self.created: list[str] = []  # the jobs this allocation asked for, in order
        self._holder: trio.Process | None = None
        self._lock = trio.Lock()
        self._closed = False

    async def current_job(self) -> str:
        """The job to start a step in: the current one while it is active, else a new one (one
        request at a time, whoever asks). Raises ``LaunchError`` when it cannot have one."""
        async with self._lock:
            if self._closed:
                raise LaunchError("the farm is closing: no new Slurm job")
            held = self._holder is None or self._holder.returncode is None  # its salloc holds it
            if self.job is not None and held and is_active(await _state_of(self.job)):
                return self.job
            if self.enclosing is not None:
                raise LaunchError(
                    f"the allocation this farm runs in (SLURM_JOB_ID={self.enclosing}) has ended"
                )
            if self.job is not None:
                _LOG.warning(
                    "%s: Slurm job %s has ended; asking for a new allocation", self.slurm.host, self.job
                )
                await self._release()
            self.job = await self._allocate()
            return self.job

    async def _allocate(self) -> str:
        argv = allocation_argv(self.slurm, self.job_name)
        try:
            holder = await trio.lowlevel.open_process(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,  # a Ctrl-C reaches the farmer, which then closes the farm
            )
        except OSError as exc:
            raise LaunchError(
                f"cannot run salloc: {exc.strerror or exc} (are Slurm's commands on PATH?)"
            ) from exc
        self._holder = holder
        assert holder.stdout is not None and holder.stderr is not None
        said: deque[str] = deque(maxlen=_SAID)  # salloc's last lines until the job is granted
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._hear_salloc, holder.stderr, said)
                job = await _first_line(holder.stdout)
                if job.isdigit():
                    nursery.cancel_scope.cancel()
                else:  # salloc gave up: its last words say why
                    nursery.cancel_scope.deadline = trio.current_time() + _SALLOC_GRACE
        except BaseException:  # cancelled while queued: salloc withdraws its request on SIGTERM
            with trio.CancelScope(shield=True):
                await self._release(terminate=True)
                await self._cancel_by_name()
            raise
        if not job.isdigit():
            with trio.CancelScope(shield=True):
                await self._release()
            errors = [line for line in said if "error:" in line] or said  # its last error says why
            text = errors[-1] if errors else f"salloc exited with status {holder.returncode}"
            raise LaunchError(f"no Slurm allocation: {text}")
        self.created.append(job)
        _LOG.info("%s: Slurm job %s granted (%d workers)", self.slurm.host, job, self.slurm.workers)
        return job

    async def _hear_salloc(self, stream: trio.abc.ReceiveStream, said: deque[str]) -> None:
        """Keep salloc's stderr lines in ``said``; log those saying the job waits in the queue at
        INFO (``salloc: job 41 queued and waiting for resources``)."""
        lines = LineSplitter()
        while True:
            chunk = await receive_chunk(stream)
            for line in lines.feed(chunk):
                if line.strip():
                    said.append(line.strip())
                    if "queued" in line or "Pending" in line:
                        _LOG.info("%s: %s", self.slurm.host, line.strip())
            if not chunk:
                return

    async def _release(self, *, terminate: bool = False, then: str | None = None) -> None:
        """End the holder of the current job (if this object made one): close its lifeline (or, with
        ``terminate``, SIGTERM salloc: it withdraws a queued request) and give salloc
        ``_SALLOC_GRACE`` seconds to relinquish the job; then ``scancel`` job ``then`` (if given)
        and kill salloc if it is still there. (Slurm 22.05's salloc sometimes spins instead of
        exiting when its job is revoked while its command ends: its job is over, so it is killed.)"""
        holder, self._holder = self._holder, None
        if terminate and holder is not None and holder.returncode is None:
            holder.terminate()
        if holder is not None and holder.stdin is not None:
            await holder.stdin.aclose()
        if holder is not None:
            with trio.move_on_after(_SALLOC_GRACE):
                await holder.wait()
        if then is not None:
            try:
                await _query(["scancel", then])
            except SlurmError as exc:
                _LOG.warning("%s: scancel %s: %s", self.slurm.host, then, exc)
        if holder is not None and holder.returncode is None:
            _LOG.debug("%s: salloc did not exit within %g s; killing it", self.slurm.host, _SALLOC_GRACE)
            holder.kill()
            await holder.wait()

    async def _cancel_by_name(self) -> None:
        """scancel this allocation's queued request by its job name (salloc was interrupted before it
        told the job id); the name holds the farm's random id, so it is no one else's job."""
        try:
            await _query(["scancel", f"--name={self.job_name}", f"--user={os.getuid()}"])
        except SlurmError as exc:
            _LOG.warning("%s: %s", self.slurm.host, exc)

    async def launch(self, machine: Machine | Slurm, args: Sequence[str], **options: Any) -> WorkerProcess:
        """Start one worker (``PYTHON *args``) as a step of the current job, as
        :func:`philipjose.farm.launch.launch` does (same arguments and result; ``machine`` is this
        allocation's source; ``ssh`` is not used)."""
        job = await self.current_job()
        return await launch(self.slurm, args, argv=step_argv(self.slurm, job, args), **options)

    async def aclose(self) -> None:
        """End the job this object created (never the enclosing one): close its holder's lifeline
        (salloc relinquishes it), ``scancel`` it, and wait (at most 30 s) until ``squeue`` no longer
        lists it."""
        async with self._lock:
            self._closed = True
            job = None if self.job == self.enclosing else self.job
            if job is None:
                return
            await self._release(then=job)
            state: str | None = None
            with trio.move_on_after(_CLOSE_WAIT) as waited:
                delay = 0.05
                while is_listed(state := await _state_of(job)):
                    await trio.sleep(delay)  # Slurm tells nobody when a job has left: ask again
                    delay = min(1.0, delay * 2)
            if waited.cancelled_caught:
                _LOG.warning(
                    "%s: Slurm job %s is still %s %g s after scancel",
                    self.slurm.host,
                    job,
                    state,
                    _CLOSE_WAIT,
                )
            else:
                _LOG.info("%s: Slurm job %s cancelled", self.slurm.host, job)


async def open_allocations(sources: Sequence[object], job_name: str) -> dict[str, Allocation]:
    """An :class:`Allocation` for each :class:`Slurm` among a farm's ``sources``, by name, with its
    job: :func:`check_cluster` must find the cluster answering and the partition there, and then
    the job is asked for (outside an allocation: ``salloc`` waits in the queue as long as Slurm
    keeps it there, unless ``extra`` has ``--immediate=S``). Raises :class:`SlurmError` at once
    when Slurm refuses the job (with salloc's reason), after giving back the jobs already made."""
    allocations: dict[str, Allocation] = {}
    try:
        for source in sources:
            if isinstance(source, Slurm):
                await check_cluster(source)
                allocation = allocations[source.host] = Allocation(source, job_name)
                try:
                    await allocation.current_job()
                except LaunchError as exc:
                    raise SlurmError(f"{source.host}: {exc}") from None
    except BaseException:
        await close_allocations(allocations)
        raise
    return allocations


async def close_allocations(allocations: Mapping[str, Allocation]) -> None:
    """:meth:`Allocation.aclose` them all, at once; shielded from cancellation (a farm closing
    because it was cancelled still gives back its jobs)."""
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as nursery:
            for allocation in allocations.values():
                nursery.start_soon(allocation.aclose)
