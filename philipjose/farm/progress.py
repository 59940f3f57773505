"""Showing a farm's progress: a one-line bar on a terminal, and a callback for library users.

:func:`format_progress` is pure: counters and elapsed seconds in, one line out::

    [##########----------]  512/1000  51%  123.4 tasks/s  eta 4s  workers 4  retries 2  failed 1

:class:`ProgressWriter` redraws that line in place (``\\r``) on a stream, at most every
``min_interval`` seconds, and only when the stream is a terminal: written to a file or a pipe it
stays quiet, so logs are not filled with bars. A :data:`ProgressCallback` receives each
:class:`~philipjose.farm.scheduler.Counters` snapshot instead, for programs that show progress their
own way. The bar is drawn through the stream's :class:`~philipjose.farm.console.Console`, so log lines
written through it (:class:`~philipjose.farm.console.ConsoleHandler`) clear the bar and redraw it after.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from philipjose.farm.console import console_for
from philipjose.farm.scheduler import Counters

__all__ = ["ProgressCallback", "ProgressWriter", "format_duration", "format_progress"]

ProgressCallback = Callable[[Counters], None]
"""Called with the counters each time they change (tasks resolved, workers up or down, retries)."""


def format_duration(seconds: float) -> str:
    """``seconds`` as ``42s``, ``3m07s`` or ``2h05m``."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def format_progress(counters: Counters, elapsed: float, *, width: int = 20) -> str:
    """One progress line for ``counters`` after ``elapsed`` seconds; ``width`` is the bar's length.

    The rate is resolved tasks per second since the start; the ETA is shown once a task has been
    resolved and some remain. Retries and failures are shown only when there are some.
    """
    total, done = counters.submitted, counters.resolved
    fraction = done / total if total else 0.0
    filled = min(width, int(fraction * width))
    parts = [
        "[" + "#" * filled + "-" * (width - filled) + "]",
        f"{done}/{total}",
        f"{int(fraction * 100):3d}%",
    ]
    rate = done / elapsed if elapsed > 0 else 0.0
    parts.append(f"{rate:.1f} tasks/s")
    if rate > 0 and done < total:
        parts.append(f"eta {format_duration((total - done) / rate)}")
    parts.append(f"workers {counters.workers}")
    if counters.retries:
        parts.append(f"retries {counters.retries}")
    if counters.failed:
        parts.append(f"failed {counters.failed}")
    if counters.cancelled:
        parts.append(f"cancelled {counters.cancelled}")
    if counters.duplicates_started:
        parts.append(f"speculated {counters.duplicates_started} (won {counters.duplicates_won})")
    if counters.replayed:
        parts.append(f"from journal {counters.replayed}")
    if counters.machines_down:
        parts.append(f"machines down {counters.machines_down}")
    return "  ".join(parts)


class ProgressWriter:
    """Draws the progress line on ``stream`` (default ``sys.stderr``) when it is a terminal.

    Call :meth:`update` with every new snapshot (it is usable as a :data:`ProgressCallback`); it
    redraws at most every ``min_interval`` seconds (default 0.1), and always for the final snapshot
    (all submitted tasks resolved). :meth:`close` ends the line. ``force`` draws even when the stream
    is not a terminal; ``clock`` (default ``time.monotonic``) is for tests.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        min_interval: float = 0.1,
        force: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = force or _is_tty(self.stream)
        self.min_interval = min_interval
        self._clock = clock
        self._start = clock()
        self._last_draw: float | None = None

    def __call__(self, counters: Counters) -> None:
        self.update(counters)

    def update(self, counters: Counters) -> None:
        """Redraw for ``counters`` if enabled and the last draw is old enough (or this one is final)."""
        if not self.enabled:
            return
        now = self._clock()
        final = counters.submitted > 0 and counters.resolved == counters.submitted
        if not final and self._last_draw is not None and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        console_for(self.stream).status(format_progress(counters, now - self._start))

    def close(self) -> None:
        """End the progress line (a newline), if anything was drawn."""
        if self.enabled and self._last_draw is not None:
            console_for(self.stream).end_status()
            self._last_draw = None


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
