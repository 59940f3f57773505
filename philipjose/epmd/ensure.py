"""Make sure an EPMD answers on this host, starting ``philipjose epmd --daemon`` if none does.

This is what ``erl`` does when a distributed node starts: a node that finds no port mapper starts
one in the background, and that daemon outlives the node (so other nodes keep finding each other).
"""

from __future__ import annotations

import os
import sys

import trio

import philipjose
from philipjose.epmd.client import default_epmd_port, names
from philipjose.epmd.errors import EpmdTimeoutError, EpmdUnreachableError
from philipjose.epmd.server import is_loopback

__all__ = ["ensure_epmd", "start_daemon"]


def _daemon_env() -> dict[str, str]:
    """The environment for the daemon, with this philipjose importable even if not installed."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(philipjose.__file__)))
    paths = [package_parent, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


async def start_daemon(
    *, port: int | None = None, address: str | None = None, timeout: float = 5.0, log_file: str | None = None
) -> bool:
    """Run ``python -m philipjose epmd --port P --daemon`` and wait until it listens.

    Returns True if a new daemon started, False if the port was already taken (by another EPMD,
    presumably). Raises :class:`EpmdUnreachableError` if it could not start in ``timeout`` seconds.
    """
    port = default_epmd_port() if port is None else port
    command = [sys.executable, "-m", "philipjose", "epmd", "--port", str(port), "--daemon"]
    if address is not None:
        command += ["--address", address]
    if log_file is not None:
        command += ["--log-file", log_file]
    try:
        with trio.fail_after(timeout):
            result = await trio.run_process(
                command, capture_stdout=True, capture_stderr=True, check=False, env=_daemon_env()
            )
    except trio.TooSlowError:
        raise EpmdTimeoutError(f"philipjose epmd --daemon did not start within {timeout}s") from None
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip()
        raise EpmdUnreachableError(f"could not start philipjose epmd on port {port}: {detail}")
    return b"started" in result.stdout


async def ensure_epmd(*, port: int | None = None, host: str = "127.0.0.1", timeout: float = 5.0) -> bool:
    """Make sure an EPMD answers at ``host:port``; return True if this call started one.

    ``port`` defaults to ``$ERL_EPMD_PORT``, else 4369. If nothing answers and ``host`` is a
    loopback address, starts ``philipjose epmd --daemon`` (listening on all interfaces, like epmd),
    which keeps running after the caller exits, and waits until it answers NAMES. Raises
    :class:`EpmdUnreachableError` if none can be reached or started, :class:`EpmdTimeoutError` if
    something accepts connections on the port but does not answer, and
    :class:`EpmdProtocolError` if what answers is not an EPMD.
    """
    port = default_epmd_port() if port is None else port
    try:
        await names(host, epmd_port=port, timeout=timeout)
        return False
    except EpmdTimeoutError:
        raise
    except EpmdUnreachableError as exc:
        if not (is_loopback(host) or host == "localhost"):
            raise EpmdUnreachableError(f"no EPMD at {host}:{port}, and that is not this host") from exc
    started = await start_daemon(port=port, timeout=timeout)
    await names(host, epmd_port=port, timeout=timeout)
    return started
