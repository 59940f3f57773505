"""Fixtures for the farm tests: a real ``sshd`` on a loopback port.

``sshd_server`` starts OpenSSH's ``sshd`` in the foreground (``-D -e``) with a throwaway host key, a
throwaway user key in ``authorized_keys``, and a ``known_hosts`` file pinning the host key, all under
the test's ``tmp_path``; it listens on a free port of 127.0.0.1 and is stopped (and waited for) when
the test ends. It logs in as the user running the tests. The server accepts ``PYTHONPATH`` and
``PHILIPJOSE_*`` variables sent with ssh's ``SetEnv``, so a test can point the remote python at
modules it wrote. :meth:`SshServer.machine` gives a :class:`~philipjose.farm.machines.Machine` that
reaches it. Reused by the ssh worker tests.

When running as root, sshd insists on its privilege separation directory (``/run/sshd`` on Debian);
the fixture creates it if it is missing (as the openssh-server service would) and leaves it there.
"""

from __future__ import annotations

import getpass
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from philipjose.farm.machines import Machine
from tests.tools import require

_PRIVSEP_DIR = Path("/run/sshd")
_READY_TIMEOUT = 30.0


@dataclass
class SshServer:
    """A running test sshd: where it listens and the client-side files that reach it."""

    host: str
    port: int
    user: str
    identity: Path
    known_hosts: Path
    log: list[str] = field(default_factory=list)

    def ssh_options(self) -> tuple[str, ...]:
        """The ``Key=Value`` client options that log into this server with the test key, strictly."""
        return (
            f"Port={self.port}",
            f"User={self.user}",
            f"IdentityFile={self.identity}",
            "IdentitiesOnly=yes",
            f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=30",
        )

    def machine(self, *extra_options: str, python: str | None = None, workers: int | None = None) -> Machine:
        """A machine record for this server (``extra_options`` appended to the ssh options)."""
        return Machine(self.host, workers, python, (*self.ssh_options(), *extra_options))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _keygen(ssh_keygen: str, path: Path) -> None:
    subprocess.run(
        [ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", "philipjose-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _wait_ready(process: subprocess.Popen[bytes], log: list[str]) -> bool:
    """Read sshd's stderr (unbuffered) until it says it listens (True) or exits (False)."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    deadline = time.monotonic() + _READY_TIMEOUT
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            *lines, pending = (pending + chunk).split(b"\n")
            log.extend(line.decode("utf-8", "replace") for line in lines)
            if any(line.startswith(b"Server listening on") for line in lines):
                return True


def _drain(process: subprocess.Popen[bytes], log: list[str]) -> None:
    assert process.stderr is not None
    fd = process.stderr.fileno()
    while chunk := os.read(fd, 65536):
        log.extend(chunk.decode("utf-8", "replace").splitlines())


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def sshd_server(tmp_path: Path) -> Iterator[SshServer]:
    sshd = require("sshd")
    require("ssh")
    ssh_keygen = require("ssh-keygen")
    if os.geteuid() == 0 and not _PRIVSEP_DIR.is_dir():
        _PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    home = tmp_path / "sshd"
    home.mkdir()
    host_key, user_key = home / "host_key", home / "user_key"
    _keygen(ssh_keygen, host_key)
    _keygen(ssh_keygen, user_key)
    authorized = home / "authorized_keys"
    authorized.write_text(Path(f"{user_key}.pub").read_text())
    authorized.chmod(0o600)
    user = getpass.getuser()

    for _attempt in range(5):  # another process may take the free port before sshd binds it
        port = _free_port()
        config = home / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {port}",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    "PidFile none",
                    "StrictModes no",
                    "UsePAM no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {user}",
                    "AcceptEnv PYTHONPATH PHILIPJOSE_*",
                    "PrintMotd no",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        log: list[str] = []
        process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        if _wait_ready(process, log):
            break
        _stop(process)
    else:
        pytest.fail("sshd did not start:\n" + "\n".join(log))

    known_hosts = home / "known_hosts"
    key_type, key_data = Path(f"{host_key}.pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
    drainer = threading.Thread(target=_drain, args=(process, log), daemon=True)
    drainer.start()
    server = SshServer("127.0.0.1", port, user, user_key, known_hosts, log)
    try:
        yield server
    finally:
        _stop(process)
        drainer.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def python_without_philipjose(tmp_path: Path) -> Path:
    """A python (a fresh venv without system site-packages) that cannot import philipjose."""
    venv = tmp_path / "venv-without-philipjose"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"
