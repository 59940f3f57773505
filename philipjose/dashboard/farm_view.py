"""The farm page: progress, one row per worker slot, machines, a task stream and the last failures.

Everything shown is bounded, whatever the number of tasks: the counters are the scheduler's
aggregates (the progress bar's, :attr:`Farm.counters`); the task stream is the last
:data:`~philipjose.farm.history.TASKS_PER_WORKER` tasks of each worker slot and the failures the last
:data:`~philipjose.farm.history.FAILURES_KEPT` (:mod:`philipjose.farm.history`); the throughput
sparkline is one sample a second for the last :data:`SPARK_SECONDS` seconds. A snapshot costs
O(worker slots x tasks kept per slot), not O(tasks).

Worker states: ``starting`` (launched, not connected back yet), ``up`` (idle), ``busy`` (holding
tasks), ``backing off`` (its machine's launches failed: waiting before the next), ``down`` (its
worker was lost and no other runs in its slot yet, or the slot retired with its machine). Erlang
nodes serving as workers (``Farm(erlang_nodes=...)``) follow the slots, ``up`` or ``down``. CPU (percent
of one core since the previous snapshot) and RSS come from psutil, for workers on this host.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import psutil
import trio

from philipjose.dashboard.node_view import serve_node
from philipjose.dashboard.server import View
from philipjose.farm.policy import RETRYING

if TYPE_CHECKING:
    from philipjose.farm.farm import Farm

__all__ = ["SPARK_SECONDS", "FarmView", "serve_farm", "slot_state"]

SPARK_SECONDS: Final = 120
"""Seconds of throughput history drawn in the sparkline."""

_RATE_WINDOW: Final = 10  # seconds over which the rate (and so the ETA) is measured


def slot_state(
    *, up: bool, busy: bool, launched: bool, connected: bool, backing_off: bool, kept: bool
) -> str:
    """A worker slot's state for people (see the module docstring): ``up``/``busy``: its worker is
    in the scheduler's hands; ``launched``: its OS process runs, ``connected``: that process came up;
    ``backing_off``: its machine is waiting to retry; ``kept``: a keeper still looks after the slot."""
    if up:
        return "busy" if busy else "up"
    if launched and not connected:
        return "starting"
    if backing_off and kept:
        return "backing off"
    if kept and not launched:
        return "starting"
    return "down"


class _Usage:
    """CPU and RSS of local worker processes, by OS pid (psutil; dead ones forgotten)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, os_pids: set[int]) -> dict[int, tuple[float, int]]:
        for gone in set(self._procs) - os_pids:
            del self._procs[gone]
        out = {}
        for os_pid in os_pids:
            try:
                proc = self._procs.get(os_pid)
                if proc is None:
                    proc = self._procs[os_pid] = psutil.Process(os_pid)
                with proc.oneshot():
                    out[os_pid] = (proc.cpu_percent(None), proc.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(os_pid, None)
        return out


class FarmView(View):
    """The farm page of ``farm`` (see the module docstring)."""

    name = "farm"
    title = "farm"

    def __init__(self, farm: Farm) -> None:
        super().__init__()
        self.farm = farm
        self.started = trio.current_time()
        self.samples: deque[tuple[float, int]] = deque(maxlen=SPARK_SECONDS + 1)  # (time, resolved)
        self._usage = _Usage()

    async def sample_throughput(self) -> None:
        """Record the resolved count once a second (the sparkline and the rate)."""
        while True:
            self.samples.append((trio.current_time(), self.farm.counters.resolved))
            await trio.sleep(1.0)

    async def collect(self) -> dict[str, Any]:
        farm = self.farm
        now = trio.current_time()
        counters = farm.counters
        return {
            "kind": "farm",
            "farm": str(farm._name),
            "node": str(getattr(farm, "_farmer_node", "")),
            "elapsed": now - self.started,
            "closing": farm._closing,
            "broken": None if farm._broken is None or farm._closing else str(farm._broken),
            "counters": dataclasses.asdict(counters),
            **self._progress(counters.resolved, counters.submitted, now),
            "workers": self._workers(now),
            "machines": [
                {
                    "host": m.host,
                    "state": m.state.value,
                    "workers": m.workers,
                    "failures": m.failures,
                    "last_error": m.last_error,
                    "retry_in": None if m.retry_at is None else max(0.0, m.retry_at - now),
                }
                for m in farm.machines
            ],
            "timeline": self._timeline(now),
            "failures": [
                {
                    "task": f.task,
                    "worker": f.worker,
                    "ago": now - f.when,
                    "type": f.kind,
                    "message": f.message,
                    "traceback": f.traceback,
                }
                for f in reversed(farm.history.failures)
            ],
            "failures_seen": farm.history.failures_seen,
        }

    def _progress(self, resolved: int, submitted: int, now: float) -> dict[str, Any]:
        samples = [*self.samples, (now, resolved)]
        spark = [(b[1] - a[1]) / max(b[0] - a[0], 0.1) for a, b in itertools.pairwise(samples)]
        spark = [round(x, 1) for x in spark[-SPARK_SECONDS:]]  # tasks/s in each second
        recent = [s for s in samples if s[0] >= now - _RATE_WINDOW]
        span = recent[-1][0] - recent[0][0] if len(recent) > 1 else 0.0
        rate = (recent[-1][1] - recent[0][1]) / span if span > 0 else 0.0
        left = submitted - resolved
        return {"rate": rate, "eta": left / rate if rate > 0 and left > 0 else None, "spark": spark}

    def _workers(self, now: float) -> list[dict[str, Any]]:
        farm = self.farm
        sched = farm._sched
        retrying = {m.host for m in farm.machines if m.state is RETRYING}
        slots = farm._slots
        local = {
            s.info.os_pid
            for s in slots
            if s.info is not None and s.info.alive and s.info.os_pid is not None and s.machine.is_local
        }
        usage = self._usage.sample(local)
        rows = []
        for slot in slots:
            info = slot.info
            current = info is not None and info.node == str(slot.node)  # its latest launch came up
            held = sched.in_flight(slot.pid) if slot.pid is not None else ()
            task = since = None
            if held:
                future = farm._futures.get(held[0])
                task = future.description if future is not None else str(held[0])
                since = now - max(sched.assigned_at(held[0]) or now, slot.last_report)
            os_pid = info.os_pid if info is not None and info.alive else None
            cpu, rss = usage.get(os_pid, (None, None)) if os_pid is not None else (None, None)
            rows.append(
                {
                    "slot": slot.index,
                    "node": str(slot.node) if slot.node is not None else "",
                    "machine": slot.machine.host,
                    "os_pid": os_pid if current else None,
                    "generation": slot.generation,
                    "state": slot_state(
                        up=slot.pid is not None,
                        busy=bool(held),
                        launched=slot.process is not None,
                        connected=current,
                        backing_off=slot.machine.host in retrying,
                        kept=slot.keeper is not None,
                    ),
                    "tasks_done": info.tasks_done if current and info is not None else 0,
                    "task": task,
                    "task_for": since,
                    "cpu": cpu if current else None,
                    "rss": rss if current else None,
                    "last_end": None if info is None or info.alive else info.cause,
                    "kind": "python",
                    "came": slot.came,  # launched, joined (philipjose worker --join) or server
                }
            )
        for n, erl in enumerate(farm._erlang.infos()):  # Erlang nodes serving as workers (erlang_nodes=)
            rows.append(
                {
                    "slot": f"e{n}",
                    "node": erl.node,
                    "machine": erl.machine,
                    "os_pid": None,
                    "generation": 0,
                    "state": "up" if erl.alive else "down",
                    "tasks_done": erl.tasks_done,
                    "task": None,
                    "task_for": None,
                    "cpu": None,
                    "rss": None,
                    "last_end": None if erl.alive else erl.cause,
                    "kind": "erlang",
                }
            )
        return rows

    def _timeline(self, now: float) -> dict[str, Any]:
        functions: dict[str, int] = {}
        rows = []
        for index, spans in sorted(self.farm.history.tasks.items()):
            tasks = []
            for span in spans:
                fn = functions.setdefault(span.function, len(functions))
                tasks.append([round(span.start - now, 4), round(span.end - now, 4), fn, span.ok])
            rows.append({"slot": index, "tasks": tasks})
        return {"functions": list(functions), "workers": rows}


async def serve_farm(
    farm: Farm, address: tuple[str, int], *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``farm``'s page (home) and its node's page at ``address`` until cancelled; the farm
    page's URL goes to ``task_status``."""
    rt = farm._rt
    assert rt is not None
    view = FarmView(farm)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(view.sample_throughput)
        url = await nursery.start(functools.partial(serve_node, rt, address, extra=[view]))
        task_status.started(url)
