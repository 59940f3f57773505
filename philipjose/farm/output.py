"""Workers' output as the farmer shows it: each line prefixed with the worker's slot (``[w0] ...``).

A worker's stdout and stderr are pipes the farm reads. :class:`LineSplitter` (pure) cuts the bytes
into lines as they come (a line split across reads is held until its end arrives; the last, unended
line is given at the end); :func:`prefixed` names the slot. The farm writes a worker's stderr lines
to the farmer's stderr and its stdout lines to the farmer's stdout, each through
:func:`~philipjose.farm.console.console_for`, so no line lands inside the progress bar (when stdout
is a terminal, its lines clear and redraw the bar on stderr as well: both are one screen).
"""

from __future__ import annotations

import sys
from typing import TextIO

import trio

from philipjose.farm.console import console_for

__all__ = ["LineSplitter", "prefixed", "receive_chunk", "write_stdout_line"]


async def receive_chunk(stream: trio.abc.ReceiveStream) -> bytes | bytearray:
    """The next chunk of a worker's output pipe; ``b""`` at its end, or once it broke or was closed."""
    try:
        return await stream.receive_some(65536)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


def prefixed(slot: str, line: str) -> str:
    """``line`` as shown for the worker in ``slot`` (``"w0"``): ``"[w0] line"``."""
    return f"[{slot}] {line}"


class LineSplitter:
    """Bytes in, whole decoded lines out (UTF-8, bad bytes replaced; ``\\r\\n`` read as ``\\n``)."""

    def __init__(self, max_line: int = 1 << 20) -> None:
        self._pending = b""
        self.max_line = max_line

    def feed(self, chunk: bytes | bytearray) -> list[str]:
        """The lines ``chunk`` completes; an empty ``chunk`` means the end: the rest, if any, too.

        A line longer than ``max_line`` bytes is cut there, so a worker printing without newlines
        cannot make the farmer hold unbounded memory.
        """
        if not chunk:
            rest, self._pending = self._pending, b""
            return [_decode(rest)] if rest else []
        *raw, self._pending = (self._pending + bytes(chunk)).split(b"\n")
        while len(self._pending) > self.max_line:
            raw.append(self._pending[: self.max_line])
            self._pending = self._pending[self.max_line :]
        return [_decode(line) for line in raw]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")


def write_stdout_line(line: str, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
    """Write ``line`` to ``stdout`` (default ``sys.stdout``); on a terminal, around stderr's status line."""
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    bar = console_for(err)
    try:
        shared = bool(bar.status_line) and out.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        shared = False
    if shared:
        bar.write_line(line, stream=out)
    else:
        console_for(out).write_line(line)
