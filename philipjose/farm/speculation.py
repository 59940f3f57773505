"""Speculative execution of stragglers (MapReduce's backup tasks, Spark's ``spark.speculation``). Pure.

Theory of operation
-------------------
Every ``interval`` seconds the farm asks :func:`stragglers` which running tasks deserve a duplicate,
giving it what it knows: each running task's start time (an :class:`Attempt`), the runtimes of the
tasks that finished (a sample of the latest ones), how many finished and how many there are in all,
and the time now. The rule is Spark's: once at least ``quantile`` of the tasks have finished (and
at least one), a task running for longer than ``multiplier`` times the median finished runtime, and
for at least ``min_runtime`` seconds, is a straggler and gets a duplicate on another worker, unless
it is not idempotent or already has ``max_duplicates`` of them. The farm runs the duplicate; the
first copy to succeed resolves the task and the others are stopped as a race's losers are.

A task's runtime is what the farmer can see: from when its worker could start it (its assignment,
or the worker's last report if later: a worker runs its tasks in order) to now. So speculation is
about time, not liveness: a worker that is stopped (SIGSTOP), swapping or cut off, and that has not
yet been found out by the ticks, holds its tasks past the threshold like a slow one, and they get
duplicates elsewhere within about one ``interval`` of crossing it; the tasks queued behind a
straggler on the same worker count from the same start, since they wait for it.

Time is whatever monotonic number the caller passes as ``now``; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Attempt", "Speculation", "speculation_of", "stragglers", "threshold"]


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"Speculation {name} must be a finite number, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Speculation:
    """The speculation policy's knobs (Spark's defaults).

    ``quantile``: the fraction of tasks that must have finished before any task is speculated (0 to
    1; default 0.75); ``multiplier``: how many times the median finished runtime a task must run to
    be a straggler (at least 1; default 1.5); ``min_runtime``: seconds a task must run before it can
    be speculated (default 0.1); ``interval``: seconds between checks (default 0.1);
    ``max_duplicates``: duplicates one task may get (default 1).
    """

    quantile: float = 0.75
    multiplier: float = 1.5
    min_runtime: float = 0.1
    interval: float = 0.1
    max_duplicates: int = 1

    def __post_init__(self) -> None:
        if not 0 <= _number("quantile", self.quantile) <= 1:
            raise ValueError(f"Speculation quantile must be from 0 to 1, not {self.quantile!r}")
        if not _number("multiplier", self.multiplier) >= 1:
            raise ValueError(f"Speculation multiplier must be at least 1, not {self.multiplier!r}")
        if not _number("min_runtime", self.min_runtime) >= 0:
            raise ValueError(f"Speculation min_runtime must be at least 0, not {self.min_runtime!r}")
        if not _number("interval", self.interval) > 0:
            raise ValueError(f"Speculation interval must be positive, not {self.interval!r}")
        if isinstance(self.max_duplicates, bool) or not isinstance(self.max_duplicates, int):
            raise TypeError(f"Speculation max_duplicates must be an int, not {self.max_duplicates!r}")
        if self.max_duplicates < 1:
            raise ValueError(f"Speculation max_duplicates must be at least 1, not {self.max_duplicates}")


def speculation_of(value: bool | Speculation | None) -> Speculation | None:
    """``Farm(speculation=...)`` read: True is the default policy, False or None none."""
    if value is None or value is False:
        return None
    if value is True:
        return Speculation()
    if isinstance(value, Speculation):
        return value
    raise TypeError(f"speculation must be True, False or a farm.Speculation, not {value!r}")


@dataclass(frozen=True, slots=True)
class Attempt:
    """A running task as the policy sees it: its id, when it started (on the ``now`` scale), how many
    duplicates it has had, and whether it may be duplicated at all."""

    task_id: int
    started: float
    duplicates: int = 0
    idempotent: bool = True


def threshold(policy: Speculation, runtimes: Sequence[float]) -> float | None:
    """The runtime past which a task is a straggler: ``multiplier`` times the median of
    ``runtimes``, and at least ``min_runtime``; None without any runtime."""
    if not runtimes:
        return None
    return max(policy.multiplier * _median(runtimes), policy.min_runtime)


def _median(values: Sequence[float]) -> float:
    """The median (``statistics.median``'s, without importing ``statistics`` into every worker)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def stragglers(
    policy: Speculation,
    running: Iterable[Attempt],
    *,
    runtimes: Sequence[float],
    finished: int,
    total: int,
    now: float,
) -> list[int]:
    """The ids of the running tasks that should get a duplicate now, the longest-running first.

    ``runtimes``: seconds taken by finished tasks (all of them, or a sample of the latest);
    ``finished``: how many tasks finished successfully; ``total``: how many there are in all
    (finished, running and queued). None before ``max(1, floor(quantile * total))`` have finished
    (Spark's rule).
    """
    if finished < max(1, math.floor(policy.quantile * total)):
        return []
    limit = threshold(policy, runtimes)
    if limit is None:
        return []
    late = [
        a
        for a in running
        if a.idempotent and a.duplicates < policy.max_duplicates and now - a.started > limit
    ]
    late.sort(key=lambda a: (a.started, a.task_id))
    return [a.task_id for a in late]
