"""Restart intensity: has a supervisor restarted too often? A pure function of monotonic timestamps.

As in OTP's ``add_restart``: the supervisor keeps the times of its recent restarts (oldest first),
counted across all its children. On each restart it adds the current time and drops the times older
than ``now - period``; if more than ``intensity`` times remain, the supervisor gives up (terminates
its children and exits with ``shutdown``).

Times are whole seconds of the monotonic clock, as OTP's ``erlang:monotonic_time(1)``: a restart at
``t`` still counts at ``t + period`` (the bound is inclusive), so with whole seconds a restart counts
for between ``period`` and ``period + 1`` seconds of real time. Use :func:`whole_seconds` to turn a
``trio.current_time()`` reading into such a timestamp.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

__all__ = ["RestartCheck", "add_restart", "check_restart", "whole_seconds"]


def whole_seconds(now: float) -> int:
    """A monotonic clock reading in whole seconds (floored), like ``erlang:monotonic_time(1)``."""
    return math.floor(now)


def add_restart(restarts: tuple[int, ...], now: int, period: int) -> tuple[int, ...]:
    """The restart history after one more restart at ``now``: the earlier times still inside the
    period (``>= now - period``) followed by ``now``, oldest first.

    ``restarts`` must be in ascending order (as this function returns it); the cut is found by
    bisection and the copy is a C-level slice, so a long history (a high intensity) stays cheap.
    """
    cut = bisect_left(restarts, now - period)
    return (*restarts[cut:], now)


@dataclass(frozen=True, slots=True)
class RestartCheck:
    """The outcome of :func:`check_restart`: the new history, and whether intensity is exceeded."""

    restarts: tuple[int, ...]
    exceeded: bool


def check_restart(restarts: tuple[int, ...], now: int, intensity: int, period: int) -> RestartCheck:
    """Record a restart at ``now`` and say whether more than ``intensity`` restarts now fall within
    ``period`` seconds (then the supervisor must shut down)."""
    history = add_restart(restarts, now, period)
    return RestartCheck(history, len(history) > intensity)
