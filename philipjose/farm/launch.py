"""Starting worker processes on machines: a local subprocess (fork+exec), or the same over ssh.

The farmer's side is :func:`launch`: it runs ``PYTHON ARGS...`` with the machine's python (through
``ssh`` unless the machine is ``localhost``), writes the farm's secret (its cookie) as the first line
of the process's standard input, and keeps that stdin open. The worker's side is :func:`read_secret`
(the first line of stdin) and :func:`wait_for_lifeline` (returns when stdin reaches end of file).

Why stdin:

- the secret never appears on a command line, where ``ps`` would show it to every user of the machine
  (nor in the environment, which ``/proc/PID/environ`` shows to the same user and which child
  processes inherit). When stdin is not usable, :func:`write_secret_file` writes it to a new file of
  mode 0600 instead and the worker reads it with :func:`read_secret_file`;
- stdin is a *lifeline*: when the farmer exits, however it exits (SIGKILL included), the pipe closes
  and the worker sees end of file. Over ssh the same happens when the ssh client dies or the
  connection drops: sshd closes the remote command's stdin. So a worker never outlives its farmer.

The process's exit (normal, a crash, a signal) is seen by :meth:`WorkerProcess.wait`; that is one of
the two ways a farmer detects a lost worker (the other is the node connection going down).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import trio

from philipjose.farm.errors import FarmError
from philipjose.farm.machines import Machine

if TYPE_CHECKING:
    from philipjose.farm.slurm import Slurm

__all__ = [
    "MAX_SECRET",
    "WORKER_COMMAND",
    "LaunchError",
    "WorkerProcess",
    "launch",
    "launch_argv",
    "read_secret",
    "read_secret_file",
    "wait_for_lifeline",
    "write_secret_file",
]

MAX_SECRET = 1024
"""The longest secret accepted, in bytes (Erlang cookies are far shorter)."""

_GRACE = 10.0

WORKER_COMMAND = ("-m", "philipjose", "--log-level", "WARNING", "worker")
"""The python arguments that start ``philipjose worker`` (its options follow), as farms and servers do."""


class LaunchError(FarmError, RuntimeError):
    """A worker process could not be started, or its secret could not be handed over or read."""


def _check_secret(secret: bytes) -> bytes:
    if not secret or len(secret) > MAX_SECRET or b"\n" in secret or b"\r" in secret or b"\0" in secret:
        raise LaunchError(f"a secret is 1 to {MAX_SECRET} bytes without newlines or NULs")
    return secret


def launch_argv(machine: Machine, args: Sequence[str], *, ssh: str = "ssh") -> list[str]:
    """The command running ``PYTHON *args`` on ``machine`` (the args are quoted for the remote shell)."""
    if machine.is_local:
        return [machine.python_command(), *args]
    return machine.ssh_command(" ".join([machine.remote_python(), *(shlex.quote(a) for a in args)]), ssh=ssh)


class WorkerProcess:
    """A started worker process: the local ``trio.Process`` (``python``, or the ``ssh`` client).

    ``machine`` is where it runs and ``argv`` the command that started it. Its stdin is the lifeline:
    :meth:`close_lifeline` closes it, which asks the worker to exit.
    """

    def __init__(self, machine: Machine | Slurm, argv: list[str], process: trio.Process) -> None:
        self.machine = machine
        self.argv = argv
        self.process = process

    @property
    def pid(self) -> int:
        """The local OS pid (of the ssh client for a remote machine)."""
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once it has exited (negative: killed by that signal), else None."""
        return self.process.returncode

    async def wait(self) -> int:
        """Wait until the process exits; its exit status (negative for a signal)."""
        return await self.process.wait()

    async def close_lifeline(self) -> None:
        """Close the worker's stdin: it sees end of file and exits."""
        if self.process.stdin is not None:
            await self.process.stdin.aclose()

    def kill(self) -> None:
        """SIGKILL the local process (over ssh: the client; the remote worker then loses its lifeline)."""
        if self.process.returncode is None:
            self.process.kill()

    async def aclose(self, grace: float = _GRACE) -> int:
        """Close the lifeline, give the process ``grace`` seconds to exit, then kill it; its status."""
        await self.close_lifeline()
        with trio.move_on_after(grace):
            return await self.process.wait()
        self.kill()
        return await self.process.wait()


async def launch(
    machine: Machine | Slurm,
    args: Sequence[str],
    *,
    secret: bytes,
    ssh: str = "ssh",
    env: Mapping[str, str] | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    argv: Sequence[str] | None = None,
    pass_fds: Sequence[int] = (),
) -> WorkerProcess:
    """Start ``PYTHON *args`` on ``machine`` and hand it ``secret`` as the first line of its stdin.

    ``env`` replaces the environment of the local process (default: inherited); ``stdout`` and
    ``stderr`` are as for ``subprocess`` (default: inherited, so a worker's tracebacks show in the
    farmer's terminal). The process runs in a process group of its own, so a Ctrl-C on the terminal
    (SIGINT to its foreground group) reaches the farmer only, which then stops its workers. Raises
    :class:`LaunchError` if the program cannot be run or the secret
    cannot be written (the process already died); the caller owns the returned process and must
    :meth:`~WorkerProcess.aclose` it. ``argv`` replaces the command that runs ``PYTHON *args``
    (:func:`launch_argv`'s): a Slurm step's ``srun`` (:mod:`philipjose.farm.slurm`). ``pass_fds``:
    descriptors the local process inherits (as for ``subprocess``; a worker's lane).
    """
    _check_secret(secret)
    if argv is None:
        assert isinstance(machine, Machine), "a Slurm worker is started with its srun as argv"
        command = launch_argv(machine, args, ssh=ssh)
    else:
        command = list(argv)
    try:
        process = await trio.lowlevel.open_process(
            command,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            env=None if env is None else dict(env),
            process_group=0,  # not in the terminal's foreground group: Ctrl-C reaches the farmer only
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise LaunchError(f"cannot run {command[0]}: {exc.strerror or exc}") from exc
    worker = WorkerProcess(machine, command, process)
    assert process.stdin is not None
    try:
        await process.stdin.send_all(secret + b"\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        worker.kill()
        status = await worker.wait()
        said = await _last_words(process.stderr)
        text = f"{command[0]} exited (status {status}) before it read its secret"
        raise LaunchError(f"{said} ({text})" if said else f"{text}: {exc}") from exc
    except BaseException:  # cancelled (the farm is closing): the caller never gets the process
        worker.kill()
        with trio.CancelScope(shield=True):
            await worker.wait()
        raise
    return worker


async def _last_words(stream: trio.abc.ReceiveStream | None, limit: int = 65536) -> str:
    """The last non-empty line a dead process wrote to ``stream`` (its stderr, when it is a pipe):
    ssh's message when ssh could not connect. Reads at most ``limit`` bytes, for at most 1 s."""
    if stream is None:
        return ""
    data = b""
    with trio.move_on_after(1.0):
        try:
            while len(data) < limit and (chunk := await stream.receive_some(limit - len(data))):
                data += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def read_secret(stream: BinaryIO | None = None) -> bytes:
    """The worker's side: the secret from the first line of ``stream`` (default: stdin, unbuffered).

    Reads byte by byte so nothing after the first line is consumed (the rest of stdin is the
    lifeline). Raises :class:`LaunchError` on end of file, an empty or too long line.
    """
    if stream is None:
        fd = sys.stdin.fileno()
        line = bytearray()
        while len(line) <= MAX_SECRET:
            byte = os.read(fd, 1)
            if not byte or byte == b"\n":
                break
            line += byte
        else:
            raise LaunchError(f"the secret on stdin is longer than {MAX_SECRET} bytes")
        data = bytes(line)
        ended = bool(byte)
    else:
        raw = stream.readline(MAX_SECRET + 2)
        ended = raw.endswith(b"\n")
        data = raw.rstrip(b"\n")
    if not ended:
        raise LaunchError("stdin ended before the secret's line was complete")
    return _check_secret(data.rstrip(b"\r"))


def write_secret_file(folder: str | os.PathLike[str], secret: bytes, *, name: str = "cookie") -> Path:
    """Write ``secret`` to a new file in ``folder``, created with mode 0600 (never widened); its path.

    Fails (``FileExistsError``) rather than overwrite an existing file, so nobody can plant one.
    """
    _check_secret(secret)
    path = Path(folder) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret + b"\n")
    return path


def read_secret_file(path: str | os.PathLike[str]) -> bytes:
    """The worker's side of :func:`write_secret_file`; refuses a file others can read or write."""
    with open(path, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & 0o077:
            raise LaunchError(f"{path} is readable or writable by others (mode {mode & 0o777:o}); use 0600")
        data = file.read(MAX_SECRET + 2)
    return _check_secret(data.rstrip(b"\n").rstrip(b"\r"))


async def wait_for_lifeline(fd: int | None = None) -> None:
    """The worker's side: return when ``fd`` (default: stdin) reaches end of file or fails.

    Anything read before the end is discarded. Call it after :func:`read_secret`.
    """
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno() if fd is None else fd))
    async with stream:
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass  # a reset pipe or connection is the farmer gone, like end of file
