"""Launching worker processes locally and over a real sshd: the secret on stdin, stdin as a lifeline."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import trio
import trio.testing

from philipjose.farm.launch import (
    MAX_SECRET,
    LaunchError,
    WorkerProcess,
    _last_words,
    launch,
    launch_argv,
    read_secret,
    read_secret_file,
    write_secret_file,
)
from philipjose.farm.machines import Machine
from tests.farm.conftest import SshServer

# A stand-in for a worker: reads its secret, reports its pid and the secret's digest, then waits for
# its lifeline to end and says goodbye.
WORKER = """
import hashlib, os, sys, trio
from philipjose.farm.launch import read_secret, wait_for_lifeline
secret = read_secret()
print("up", os.getpid(), hashlib.sha256(secret).hexdigest(), flush=True)
trio.run(wait_for_lifeline)
try:
    print("bye", flush=True)
except BrokenPipeError:  # nobody is listening any more
    pass
"""


@pytest.fixture
def worker_script(tmp_path: Path) -> Path:
    path = tmp_path / "fake_worker.py"
    path.write_text(WORKER)
    return path


async def _read_line(worker: WorkerProcess, buffer: bytearray) -> str:
    stream = worker.process.stdout
    assert stream is not None
    while b"\n" not in buffer:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError(f"worker output ended: {bytes(buffer)!r}")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


def _command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue
    return lines


async def _check_secret_handed_over(worker: WorkerProcess, secret: bytes) -> int:
    buffer = bytearray()
    word, pid, digest = (await _read_line(worker, buffer)).split()
    assert word == "up" and digest == hashlib.sha256(secret).hexdigest()
    if sys.platform == "linux":
        assert not any(secret in line for line in _command_lines())
        assert secret not in Path(f"/proc/{pid}/environ").read_bytes()
    return int(pid)


def test_launch_argv() -> None:
    assert launch_argv(Machine("localhost", python="/py"), ["-m", "philipjose", "worker"]) == [
        "/py",
        "-m",
        "philipjose",
        "worker",
    ]
    remote = Machine("box", python="~/v/bin/python", ssh_options=("Port=2",))
    assert launch_argv(remote, ["-c", "print('a b')"]) == [
        "ssh",
        "-o",
        "Port=2",
        "-o",
        "BatchMode=yes",
        "--",
        "box",
        "~/v/bin/python -c 'print('\"'\"'a b'\"'\"')'",
    ]


async def test_local_worker_gets_its_secret_on_stdin_and_exits_when_the_lifeline_closes(
    worker_script: Path,
) -> None:
    secret = secrets.token_hex(20).encode()
    worker = await launch(Machine("localhost"), [str(worker_script)], secret=secret, stdout=subprocess.PIPE)
    with trio.fail_after(60):
        pid = await _check_secret_handed_over(worker, secret)
        assert pid == worker.pid
        assert worker.returncode is None
        await worker.close_lifeline()
        assert await _read_line(worker, bytearray()) == "bye"
        assert await worker.wait() == 0


async def test_kill_and_aclose(worker_script: Path) -> None:
    secret = secrets.token_hex(20).encode()
    worker = await launch(Machine("localhost"), [str(worker_script)], secret=secret, stdout=subprocess.PIPE)
    with trio.fail_after(60):
        await _check_secret_handed_over(worker, secret)
        worker.kill()
        assert await worker.wait() == -9
        assert await worker.aclose() == -9


async def test_aclose_kills_a_worker_that_ignores_its_lifeline(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    stubborn = tmp_path / "stubborn.py"
    stubborn.write_text("import sys, time\nsys.stdin.readline()\nprint('up', flush=True)\ntime.sleep(1000)\n")
    worker = await launch(Machine("localhost"), [str(stubborn)], secret=b"s", stdout=subprocess.PIPE)
    assert await _read_line(worker, bytearray()) == "up"
    assert await worker.aclose(grace=5) == -9


async def test_launch_failures(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="cannot run"):
        await launch(Machine("localhost", python=str(tmp_path / "nope")), [], secret=b"s")
    for bad in (b"", b"a\nb", b"a\rb", b"a\0b", b"x" * (MAX_SECRET + 1)):
        with pytest.raises(LaunchError, match="secret"):
            await launch(Machine("localhost"), ["-c", "pass"], secret=bad)


async def test_the_last_words_of_a_launch_that_died_name_the_cause() -> None:
    # what ssh writes when it cannot connect, read from its stderr for the LaunchError's message
    stream = trio.testing.MemoryReceiveStream()
    stream.put_data(b"warning: something\nssh: connect to host h port 22: Connection refused\r\n\n")
    stream.put_eof()
    assert await _last_words(stream) == "ssh: connect to host h port 22: Connection refused"
    assert await _last_words(None) == ""


def test_read_secret_from_a_stream() -> None:
    assert read_secret(io.BytesIO(b"cookie\nrest")) == b"cookie"
    assert read_secret(io.BytesIO(b"cookie\r\n")) == b"cookie"
    for bad in (b"", b"no newline", b"\n", b"x" * (MAX_SECRET + 1) + b"\n"):
        with pytest.raises(LaunchError):
            read_secret(io.BytesIO(bad))


def test_read_secret_from_stdin_leaves_the_rest() -> None:
    code = (
        "import sys; from philipjose.farm.launch import read_secret; "
        "s = read_secret(); print(s.decode(), sys.stdin.buffer.read().decode())"
    )
    done = subprocess.run([sys.executable, "-c", code], input=b"abc\nlater", capture_output=True, check=True)
    assert done.stdout == b"abc later\n"
    failed = subprocess.run([sys.executable, "-c", code], input=b"abc", capture_output=True)
    assert failed.returncode != 0 and b"stdin ended before" in failed.stderr


def test_secret_file(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path, b"cookie")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_secret_file(path) == b"cookie"
    with pytest.raises(FileExistsError):
        write_secret_file(tmp_path, b"other")
    os.chmod(path, 0o644)
    with pytest.raises(LaunchError, match="readable or writable by others"):
        read_secret_file(path)


async def test_ssh_worker_gets_its_secret_and_exits_with_the_lifeline(
    sshd_server: SshServer, worker_script: Path
) -> None:
    secret = secrets.token_hex(20).encode()
    machine = sshd_server.machine(python=sys.executable)
    worker = await launch(machine, [str(worker_script)], secret=secret, stdout=subprocess.PIPE)
    with trio.fail_after(120):
        remote_pid = await _check_secret_handed_over(worker, secret)
        assert remote_pid != worker.pid  # the local process is the ssh client
        await worker.close_lifeline()
        assert await _read_line(worker, bytearray()) == "bye"
        assert await worker.wait() == 0


async def test_ssh_worker_dies_with_its_connection(sshd_server: SshServer, worker_script: Path) -> None:
    machine = sshd_server.machine(python=sys.executable)
    secret = secrets.token_hex(20).encode()
    worker = await launch(machine, [str(worker_script)], secret=secret, stdout=subprocess.PIPE)
    with trio.fail_after(120):
        remote_pid = await _check_secret_handed_over(worker, secret)
        remote = psutil.Process(remote_pid)
        worker.kill()  # the farmer's end of the connection is gone
        assert await worker.wait() == -9
        await trio.to_thread.run_sync(remote.wait, 100)
    assert not psutil.pid_exists(remote_pid) or remote.status() == psutil.STATUS_ZOMBIE
