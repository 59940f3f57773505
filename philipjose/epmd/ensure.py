"""Make sure an EPMD answers on this host, starting ``philipjose epmd --daemon`` if none does.

This is what ``erl`` does when a distributed node starts: a node that finds no port mapper starts
one in the background. Unlike OTP's, a daemon started this way does not stay forever: it exits once
no node has been registered with it (and no connection has been open) for ``idle_timeout`` seconds
(:data:`DEFAULT_IDLE_TIMEOUT`, or ``$PHILIPJOSE_EPMD_IDLE_TIMEOUT``), so nodes that come and go within
that time share it, and none is left behind for good. A ``philipjose epmd --daemon`` started by hand
stays up, as OTP's epmd does.

Where it listens follows the node that starts it (:func:`daemon_address`): a node listening on a
loopback address can only be reached from this host, so its daemon listens on loopback only; any
other node gets a daemon on all interfaces, as epmd has it.
"""

from __future__ import annotations

import os
import sys

import trio

import philipjose
from philipjose.epmd.client import default_epmd_port, names
from philipjose.epmd.errors import EpmdTimeoutError, EpmdUnreachableError
from philipjose.epmd.server import is_loopback

__all__ = ["DEFAULT_IDLE_TIMEOUT", "daemon_address", "default_idle_timeout", "ensure_epmd", "start_daemon"]

DEFAULT_IDLE_TIMEOUT = 60.0
"""Seconds an implicitly started daemon stays up with no node registered."""

_IDLE_ENV = "PHILIPJOSE_EPMD_IDLE_TIMEOUT"


def default_idle_timeout(environ: dict[str, str] | None = None) -> float:
    """``$PHILIPJOSE_EPMD_IDLE_TIMEOUT`` (seconds, > 0) if set, else :data:`DEFAULT_IDLE_TIMEOUT`;
    ``ValueError`` for a value that is not a positive number."""
    text = (os.environ if environ is None else environ).get(_IDLE_ENV, "").strip()
    if not text:
        return DEFAULT_IDLE_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{_IDLE_ENV} must be a number of seconds, not {text!r}") from None
    if not value > 0:
        raise ValueError(f"{_IDLE_ENV} must be positive, not {text!r}")
    return value


def daemon_address(listen_host: str | None) -> str | None:
    """Where a daemon started for a node listening on ``listen_host`` listens: loopback only
    (``"127.0.0.1"``, plus ``"::1"`` for an IPv6 loopback node) when the node itself listens on
    loopback, else None (all interfaces)."""
    if listen_host is None or not (is_loopback(listen_host) or listen_host == "localhost"):
        return None
    return "127.0.0.1,::1" if ":" in listen_host else "127.0.0.1"


def _daemon_env() -> dict[str, str]:
    """The environment for the daemon, with this philipjose importable even if not installed."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(philipjose.__file__)))
    paths = [package_parent, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


async def start_daemon(
    *,
    port: int | None = None,
    address: str | None = None,
    timeout: float = 5.0,
    log_file: str | None = None,
    idle_timeout: float | None = None,
) -> bool:
    """Run ``python -m philipjose epmd --port P --daemon`` and wait until it listens.

    ``address``: its ``--address`` (None: all interfaces); ``idle_timeout``: its ``--idle-timeout``
    (None: it stays up). Returns True if a new daemon started, False if the port was already taken
    (by another EPMD, presumably). Raises :class:`EpmdUnreachableError` if it could not start in
    ``timeout`` seconds.
    """
    port = default_epmd_port() if port is None else port
    command = [sys.executable, "-m", "philipjose", "epmd", "--port", str(port), "--daemon"]
    if address is not None:
        command += ["--address", address]
    if log_file is not None:
        command += ["--log-file", log_file]
    if idle_timeout is not None:
        command += ["--idle-timeout", f"{idle_timeout:g}"]
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


async def ensure_epmd(
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    timeout: float = 5.0,
    address: str | None = None,
    idle_timeout: float | None = None,
) -> bool:
    """Make sure an EPMD answers at ``host:port``; return True if this call started one.

    ``port`` defaults to ``$ERL_EPMD_PORT``, else 4369. If nothing answers and ``host`` is a
    loopback address, starts ``philipjose epmd --daemon`` listening on ``address`` (None: all
    interfaces, like epmd; see :func:`daemon_address`), which outlives the caller and exits once no
    node has been registered for ``idle_timeout`` seconds (default :func:`default_idle_timeout`),
    and waits until it answers NAMES. Raises :class:`EpmdUnreachableError` if none can be reached or
    started, :class:`EpmdTimeoutError` if something accepts connections on the port but does not
    answer, and :class:`EpmdProtocolError` if what answers is not an EPMD.
    """
    port = default_epmd_port() if port is None else port
    idle = default_idle_timeout() if idle_timeout is None else idle_timeout
    try:
        await names(host, epmd_port=port, timeout=timeout)
        return False
    except EpmdTimeoutError:
        raise
    except EpmdUnreachableError as exc:
        if not (is_loopback(host) or host == "localhost"):
            raise EpmdUnreachableError(f"no EPMD at {host}:{port}, and that is not this host") from exc
    started = await start_daemon(port=port, address=address, timeout=timeout, idle_timeout=idle)
    await names(host, epmd_port=port, timeout=timeout)
    return started
