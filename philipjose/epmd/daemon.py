"""Running a program as a detached Unix daemon that reports back when it is ready.

:func:`detach` double-forks: the intermediate child calls ``setsid()`` (new session, no controlling
terminal) and exits at once; the parent reaps it, so no zombie is left, and the grandchild is
re-parented to init (or the nearest subreaper) and outlives whoever started it. The grandchild
changes to ``/``, points stdin/stdout/stderr at ``/dev/null``, ignores SIGHUP and runs
``body(notify)``. ``notify(message)`` sends one line back through a pipe; the parent returns that
line, so a caller that waits for the parent knows the daemon is ready (e.g. already listening).

Call it before starting any threads or event loop: it uses ``os.fork``.
"""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Callable

__all__ = ["detach"]

_MAX_MESSAGE = 4096


def detach(body: Callable[[Callable[[str], None]], int]) -> str:
    """Run ``body(notify)`` in a detached daemon; return the first line it passes to ``notify``.

    Returns ``""`` if the daemon ended without notifying (its exit status is not visible to the
    parent). Only the parent returns; the daemon exits with ``body``'s return value.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # intermediate child
        os.close(read_fd)
        _become_daemon(body, write_fd)
    os.close(write_fd)
    os.waitpid(pid, 0)  # the intermediate exits at once; reaping it leaves no zombie
    chunks: list[bytes] = []
    with os.fdopen(read_fd, "rb") as pipe:
        while sum(map(len, chunks)) < _MAX_MESSAGE:
            chunk = pipe.read(_MAX_MESSAGE)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace").split("\n", 1)[0]


def _become_daemon(body: Callable[[Callable[[str], None]], int], write_fd: int) -> None:
    status = 1
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        os.chdir("/")
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        if devnull > 2:
            os.close(devnull)
        notified = False

        def notify(message: str) -> None:
            nonlocal notified
            if notified:
                return
            notified = True
            os.write(write_fd, message.replace("\n", " ").encode("utf-8")[: _MAX_MESSAGE - 1] + b"\n")
            os.close(write_fd)

        try:
            status = body(notify)
        except BaseException as exc:  # the daemon's last chance to report; it exits right after
            if not notified:
                notify("error " + "".join(traceback.format_exception_only(exc)).strip())
            status = 1
    finally:
        os._exit(status)
