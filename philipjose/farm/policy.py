"""The farm's failure policy: what a lost worker or a failed launch costs, and what happens next.

Pure: no I/O, no trio, no clock. The farm's keepers report what happened to a worker slot (a launch
began, a worker came up, a worker was lost and how) with a monotonic ``now``, and carry out the
:class:`Verdict` they get back. Like :mod:`philipjose.supervisors.strategy`, every rule below is
tested by feeding events.

Theory of operation
-------------------
Every end of a worker is charged to exactly one party:

=====================  ======================================  =========================================
how the worker ended   charged to                              what happens next
=====================  ======================================  =========================================
killed by the farm     nobody (``doomed``: a race loser, a     a replacement starts at once; logged at
on purpose             cancel, a timeout)                      INFO
died running tasks     those tasks (the scheduler's            a replacement starts at once; WARNING;
                       ``max_deaths``, then ``WorkerLost``)    the tasks run again elsewhere
died idle, after it    its machine's crash window (more than   within the intensity: a replacement at
came up                ``intensity`` in ``period`` s: a crash  once (WARNING); past it: the machine is
                       loop)                                   down
never came up (launch  its machine (consecutive failures)      retried after a backoff of 1 s doubling
failed, no connect                                             to 60 s with jitter; after
back)                                                          ``max_launch_failures`` in a row the
                                                               machine is down
=====================  ======================================  =========================================

A machine is UP (it may launch), RETRYING (its launches wait until ``retry_at``) or DOWN (its slots
retire; it is not tried again during the farm's life). A worker coming up on a machine resets its
failure count. Failures of launches that began before the failure already counted (several slots of
one machine failing together, say ssh refusing all of them) count once: each counted failure starts
a new *round*, and a launch is charged only if it began in the current round. Once every machine is
down the farm gives up (:meth:`FailurePolicy.all_down`, :meth:`FailurePolicy.give_up_message`).
Once :meth:`FailurePolicy.shut_down` is called nothing is started again.
"""

from __future__ import annotations

import enum
import logging
import random
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from philipjose.supervisors.intensity import check_restart, whole_seconds

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_JITTER",
    "BACKOFF_MAX",
    "DEFAULT_MAX_LAUNCH_FAILURES",
    "DOWN",
    "RETRYING",
    "UP",
    "FailurePolicy",
    "MachineState",
    "MachineStatus",
    "Verdict",
    "backoff_delay",
    "describe_exit",
]

BACKOFF_FIRST = 1.0
"""Seconds a machine waits after its first failed launch."""

BACKOFF_MAX = 60.0
"""The longest wait between launches on a failing machine (before jitter)."""

BACKOFF_JITTER = 0.25
"""Each wait is scaled by a random factor in ``[1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)``."""

DEFAULT_MAX_LAUNCH_FAILURES = 5
"""Failed launches in a row after which a machine is down."""


class MachineState(enum.Enum):
    """Whether a machine may launch workers."""

    UP = "up"
    RETRYING = "retrying"
    DOWN = "down"


UP = MachineState.UP
RETRYING = MachineState.RETRYING
DOWN = MachineState.DOWN


def backoff_delay(
    failures: int,
    r: float = 0.5,
    *,
    first: float = BACKOFF_FIRST,
    cap: float = BACKOFF_MAX,
    jitter: float = BACKOFF_JITTER,
) -> float:
    """Seconds to wait after ``failures`` (>= 1) failed launches in a row: ``first`` doubling up to
    ``cap``, scaled by ``1 - jitter + 2 * jitter * r`` (``r`` in [0, 1): a random number)."""
    if failures < 1:
        raise ValueError(f"failures must be at least 1, not {failures}")
    base = min(cap, first * 2.0 ** min(failures - 1, 64))
    return base * (1.0 - jitter + 2.0 * jitter * r)


def describe_exit(status: int | None, *, nodedown: bool = False) -> str:
    """How a worker ended, for people: ``exited with status 3``, ``killed by SIGKILL``, or (no exit
    status, ``nodedown``) ``its connection was lost``."""
    if status is None:
        return "its connection was lost" if nodedown else "it was lost"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by {name}"
    return f"exited with status {status}"


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """A machine as the farm sees it: ``host``, its ``state``, how many ``workers`` are up there, the
    failed launches in a row (``failures``), the ``last_error`` (None if none yet) and, while
    RETRYING, when the next launch may start (``retry_at``, on the farm's monotonic clock)."""

    host: str
    state: MachineState
    workers: int
    failures: int
    last_error: str | None
    retry_at: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do after a worker slot lost its worker (or failed to launch one).

    ``relaunch``: start a new worker in the slot, not before ``at`` (None: retire the slot, its machine
    is down or the farm is shutting down). ``level`` and ``message``: the one log line to write (an empty
    message: write nothing). ``machine_down``: this event took the machine down. ``give_up``: no machine
    can run a worker any more; the farm must fail with this message.
    """

    relaunch: bool
    at: float | None
    level: int
    message: str
    machine_down: bool = False
    give_up: str | None = None


@dataclass(slots=True)
class _Health:
    host: str
    state: MachineState = UP
    workers: int = 0
    failures: int = 0
    round: int = 0
    retry_at: float = float("-inf")
    last_error: str | None = None
    crashes: tuple[int, ...] = field(default_factory=tuple)


class FailurePolicy:
    """The failure policy of one farm over its machines (see the module docstring).

    ``hosts``: the machines (their names, as the farm reports them). ``max_launch_failures`` (default
    5, at least 1): failed launches in a row before a machine is down. ``intensity`` (>= 0) and
    ``period`` (> 0 s): more than ``intensity`` idle crashes of a machine's workers within ``period``
    seconds is a crash loop, and the machine is down. ``random``: the jitter's source (for tests).
    ``allow_none``: an empty ``hosts`` is allowed (a farm whose workers all join on their own).
    """

    def __init__(
        self,
        hosts: Iterable[str],
        *,
        max_launch_failures: int = DEFAULT_MAX_LAUNCH_FAILURES,
        intensity: int = 10,
        period: int = 60,
        random: Callable[[], float] = random.random,
        first: float = BACKOFF_FIRST,
        cap: float = BACKOFF_MAX,
        allow_none: bool = False,
    ) -> None:
        if max_launch_failures < 1:
            raise ValueError(f"max_launch_failures must be at least 1, not {max_launch_failures}")
        if intensity < 0 or period <= 0:
            raise ValueError(f"intensity must be >= 0 and period > 0, not {intensity} and {period}")
        self.max_launch_failures = max_launch_failures
        self.intensity = intensity
        self.period = period
        self._random = random
        self._first = first
        self._cap = cap
        self._machines: dict[str, _Health] = {}
        for host in hosts:
            self._machines.setdefault(host, _Health(host))
        if not self._machines and not allow_none:
            raise ValueError("a failure policy needs at least one machine")
        self._shutting_down = False

    # -- queries ----------------------------------------------------------------------------------

    def status(self) -> list[MachineStatus]:
        """Every machine's status, in the order given."""
        return [
            MachineStatus(
                h.host,
                h.state,
                h.workers,
                h.failures,
                h.last_error,
                h.retry_at if h.state is RETRYING else None,
            )
            for h in self._machines.values()
        ]

    def state(self, host: str) -> MachineState:
        """The state of machine ``host`` (``KeyError`` for one not given)."""
        return self._machines[host].state

    def launch_at(self, host: str) -> float | None:
        """The earliest time a launch may begin on ``host``; None if it may never (down, or shutting
        down). A time in the past means now."""
        health = self._machines[host]
        if self._shutting_down or health.state is DOWN:
            return None
        return health.retry_at if health.state is RETRYING else float("-inf")

    def all_down(self, hosts: Iterable[str] | None = None) -> bool:
        """True when no machine (of ``hosts``, default all) can run a worker any more: every one is
        down, and no worker started before its machine went down is still up."""
        chosen = self._machines.values() if hosts is None else [self._machines[h] for h in hosts]
        return all(h.state is DOWN and h.workers == 0 for h in chosen)

    def give_up_message(self) -> str:
        """Why the farm gives up: each machine and its last error."""
        parts = [f"{h.host}: {h.last_error or 'no error recorded'}" for h in self._machines.values()]
        return "no machine can run a worker; the farm gave up (" + "; ".join(parts) + ")"

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # -- events -----------------------------------------------------------------------------------

    def shut_down(self) -> None:
        """The farm is closing: from now on every verdict retires its slot."""
        self._shutting_down = True

    def launching(self, host: str) -> int:
        """A launch begins on ``host``; returns the token to give to :meth:`lost` for it."""
        return self._machines[host].round

    def worker_up(self, host: str) -> None:
        """A worker launched on ``host`` connected back: the machine works, its failures reset."""
        health = self._machines[host]
        health.workers += 1
        if health.failures or health.state is RETRYING:
            health.round += 1  # launches still out from the failing period are not charged
        health.failures = 0
        if health.state is RETRYING:
            health.state = UP

    def lost(
        self,
        host: str,
        now: float,
        *,
        token: int,
        came_up: bool,
        how: str,
        worker: str = "a worker",
        doomed: str | None = None,
        tasks: int = 0,
    ) -> Verdict:
        """A worker slot on ``host`` lost its worker at ``now``; what next.

        ``token``: from :meth:`launching` for this worker's launch. ``came_up``: the worker had connected
        back (and :meth:`worker_up` was called). ``how``: how it ended, for the log (see
        :func:`describe_exit`, or a launch error such as ssh's message). ``worker``: its name for the
        log. ``doomed``: why the farm killed it on purpose (``"race"``, ``"cancel"``, ``"timeout"``),
        None if it did not. ``tasks``: how many live tasks it held (charged to them by the scheduler).
        """
        health = self._machines[host]
        if came_up:
            health.workers = max(0, health.workers - 1)
        if self._shutting_down:
            return Verdict(False, None, logging.DEBUG, "")
        if health.state is DOWN:
            give_up = self.give_up_message() if self.all_down() else None
            return Verdict(False, None, logging.DEBUG, "", give_up=give_up)
        if doomed is not None:
            return Verdict(
                True, now, logging.INFO, f"replacing {worker} on {host}, stopped by the farm ({doomed})"
            )
        if came_up and tasks:
            plural = "s" if tasks != 1 else ""
            return Verdict(
                True,
                now,
                logging.WARNING,
                f"{worker} on {host} {how} while running {tasks} task{plural} (charged to "
                f"{'them' if tasks != 1 else 'it'}); a new worker starts",
            )
        health.last_error = f"{worker} {how}"
        if came_up:
            check = check_restart(health.crashes, whole_seconds(now), self.intensity, self.period)
            health.crashes = check.restarts
            if not check.exceeded:
                return Verdict(
                    True, now, logging.WARNING, f"{worker} on {host} {how} while idle; restarting it"
                )
            health.last_error = (
                f"its workers died more than {self.intensity} times in {self.period} s without running "
                f"a task (last: {worker} {how})"
            )
            return self._down(health)
        health.last_error = how
        if token != health.round:  # a launch from a round already charged: the same outage
            return Verdict(True, max(now, health.retry_at), logging.DEBUG, "")
        health.failures += 1
        health.round += 1
        if health.failures >= self.max_launch_failures:
            health.last_error = f"{health.failures} launches failed in a row (last: {how})"
            return self._down(health)
        delay = backoff_delay(health.failures, self._random(), first=self._first, cap=self._cap)
        health.state = RETRYING
        health.retry_at = now + delay
        return Verdict(
            True,
            health.retry_at,
            logging.INFO,
            f"a worker could not start on {host} ({how}); retrying in {delay:.1f} s "
            f"(failure {health.failures} of {self.max_launch_failures})",
        )

    def _down(self, health: _Health) -> Verdict:
        health.state = DOWN
        give_up = self.give_up_message() if self.all_down() else None
        return Verdict(
            False,
            None,
            logging.WARNING,
            f"machine {health.host} is down: {health.last_error}",
            machine_down=True,
            give_up=give_up,
        )
