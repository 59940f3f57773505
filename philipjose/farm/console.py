"""One writer for stderr: a status line (the progress bar) and whole lines (log records, workers' output).

A terminal shows one progress line redrawn in place with ``\\r``. Anything else written to the same
stream would land in the middle of it (``...retries 22026-12-01 08:17:23 ERROR``). A :class:`Console`
owns a stream for both: :meth:`Console.write_line` clears the status line, writes the line, and redraws
the status line after it; :meth:`Console.status` replaces the status line. :func:`console_for` gives
the one console of a stream, so every writer to ``sys.stderr`` shares it; :class:`ConsoleHandler` is a
:class:`logging.Handler` that writes through it (``philipjose``'s command line installs one), and
:class:`~philipjose.farm.progress.ProgressWriter` draws its bar through it. Thread-safe: the farm of an
:class:`~philipjose.farm.executor.Executor` logs from its own thread.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

__all__ = ["Console", "ConsoleHandler", "console_for"]


class Console:
    """A text stream shared by a status line and whole lines (see the module docstring)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._status = ""
        self._lock = threading.Lock()

    @property
    def status_line(self) -> str:
        """The status line shown now ("" for none)."""
        return self._status

    def status(self, line: str) -> None:
        """Show ``line`` as the status line, in place of the previous one."""
        with self._lock:
            padding = " " * max(0, len(self._status) - len(line))
            self._status = line
            self._write("\r" + line + padding)

    def end_status(self) -> None:
        """Leave the status line on screen as it is and move to a new line; there is none after."""
        with self._lock:
            if self._status:
                self._status = ""
                self._write("\n")

    def write_line(self, text: str, stream: TextIO | None = None) -> None:
        """Write ``text`` (one or more lines; a newline is added if missing) above the status line.

        ``stream``: write the text there instead (another stream showing on the same screen, such as
        stdout on the terminal of stderr's progress bar); the status line is cleared and redrawn
        around it all the same.
        """
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            if stream is not None and stream is not self.stream:
                if self._status:
                    self._write("\r" + " " * len(self._status) + "\r")
                self._write(text, stream)
                if self._status:
                    self._write(self._status)
            elif self._status:
                self._write("\r" + " " * len(self._status) + "\r" + text + self._status)
            else:
                self._write(text)

    def _write(self, text: str, stream: TextIO | None = None) -> None:
        target = self.stream if stream is None else stream
        try:
            target.write(text)
            target.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more can be shown there
            pass


_consoles: dict[int, tuple[TextIO, Console]] = {}
_consoles_lock = threading.Lock()


def console_for(stream: TextIO | None = None) -> Console:
    """The console of ``stream`` (default: ``sys.stderr`` as it is now), made on first use."""
    target = sys.stderr if stream is None else stream
    with _consoles_lock:
        entry = _consoles.get(id(target))
        if entry is None or entry[0] is not target:
            if len(_consoles) > 64:  # streams come and go (tests swap sys.stderr): forget old ones
                _consoles.clear()
            entry = (target, Console(target))
            _consoles[id(target)] = entry
        return entry[1]


class ConsoleHandler(logging.Handler):
    """A logging handler writing each record as a line through the console of ``stream`` (default:
    whatever ``sys.stderr`` is when the record is emitted), so log lines never overwrite the bar."""

    def __init__(self, stream: TextIO | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # the logging contract: a bad record is reported, never raised
            self.handleError(record)
            return
        console_for(self.stream).write_line(text)
