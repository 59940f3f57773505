"""Running tasks the farm has asked to stop, and when their workers are due to be killed. Pure.

Theory of operation
-------------------
To stop a running task (cancelled, timed out, a race's loser) the farm first asks its worker
(``pj_revoke``: the worker raises ``TaskCancelled`` in the task's thread) and records the request
here with :meth:`Stopping.ask`. A worker that reports the task (with anything) is done with it:
:meth:`Stopping.reported`. One that has not reported it when the grace period (default
:data:`STOP_GRACE`) has passed is returned by :meth:`Stopping.due`, with the reason of its oldest
request, and the farm kills it (``doomed``). Time is whatever monotonic number the loop passes.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final

__all__ = ["STOP_GRACE", "Stopping"]

STOP_GRACE: Final = 0.25
"""Seconds a worker gets to report a task it was asked to stop before the farm kills it."""


class Stopping:
    """Stop requests in flight: ``(worker, task_id) -> (deadline, reason)``."""

    def __init__(self, grace: float = STOP_GRACE) -> None:
        if not grace >= 0:
            raise ValueError(f"grace must be at least 0, not {grace}")
        self.grace = grace
        self._asked: dict[tuple[Hashable, int], tuple[float, str]] = {}

    def ask(self, worker: Hashable, task_id: int, reason: str, now: float) -> float:
        """``worker`` was asked at ``now`` to stop ``task_id`` (for ``reason``); its deadline."""
        key = (worker, task_id)
        if key not in self._asked:
            self._asked[key] = (now + self.grace, reason)
        return self._asked[key][0]

    def reported(self, worker: Hashable, task_id: int) -> None:
        """``worker`` reported ``task_id``: it has stopped (or finished) it."""
        self._asked.pop((worker, task_id), None)

    def forget(self, worker: Hashable) -> None:
        """``worker`` is gone (dead, or being killed): nothing to wait for any more."""
        for key in [k for k in self._asked if k[0] == worker]:
            del self._asked[key]

    def due(self, now: float) -> list[tuple[Hashable, str]]:
        """The workers whose grace ran out by ``now``, each once with its earliest request's reason;
        they are forgotten (the farm kills them)."""
        late: dict[Hashable, tuple[float, str]] = {}
        for (worker, _), (deadline, reason) in self._asked.items():
            if deadline <= now and (worker not in late or deadline < late[worker][0]):
                late[worker] = (deadline, reason)
        for worker in late:
            self.forget(worker)
        return [(worker, reason) for worker, (_, reason) in late.items()]

    def next_deadline(self) -> float | None:
        """The earliest deadline, or None when no request waits."""
        return min((deadline for deadline, _ in self._asked.values()), default=None)
