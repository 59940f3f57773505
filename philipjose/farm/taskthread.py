"""One long-lived thread that runs a worker's tasks: ``await thread.run(fn, *args, wait=...)``.

The worker runs its tasks off its event loop so its node keeps answering ticks while a task computes.
``trio.to_thread.run_sync`` would do, but each call pays for a capacity limiter, a copied context and
a thread-cache hand-off: about 140-160 us per call on a 2-core VM, against 70-110 us here (a
``queue.SimpleQueue`` to the thread, ``TrioToken.run_sync_soon`` back), which is a fifth of a
farm's single-task round trip. Calls run one at a time, in order, always in the same thread (the
worker's :class:`~philipjose.farm.interrupt.Interrupter` aims at it while a task runs).

A quick call comes back quicker still with ``wait``: the event loop then blocks (the GIL released)
for up to ``wait`` seconds on the call's own ``threading.Event``, and a call done by then is returned
at once, without the way back through the loop (a write to Trio's wake-up socket, a pass of the
scheduler and a task switch: a trivial call there and back took 91-107 us without, 55-68 us with,
in ``benchmarks/bench_latency_floor.py`` on a 2-core VM; a farm's round trip did not measurably
change, see ``docs/benchmarks.md``). A call still running after ``wait`` goes on as without it,
and the loop serves everything else meanwhile; so ``wait`` is what the loop may be held for per
call (the worker uses 1 ms: ticks, other messages and revocations wait that long at most). Which
way a call's outcome goes is settled under the call's lock, so a call that ends just as the wait
gives up is delivered exactly once.

Cancelling a ``run`` abandons the call (as ``abandon_on_cancel=True``): the caller goes on at once,
the call finishes in the thread and its outcome is dropped. The thread is a daemon: it never holds
the worker process's exit back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

__all__ = ["TaskThread"]

T = TypeVar("T")


class _Call:
    __slots__ = ("abandoned", "args", "done", "fn", "lock", "result", "task", "waiting")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], task: trio.lowlevel.Task) -> None:
        self.fn, self.args, self.task = fn, args, task
        self.abandoned = False
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.waiting = True  # the loop is still blocked on ``done`` (under ``lock``)
        self.result: outcome.Outcome[Any] | None = None


class TaskThread:
    """A thread of its own for blocking calls from one Trio run (see the module docstring)."""

    def __init__(self, name: str = "philipjose-task") -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            result = outcome.capture(call.fn, *call.args)
            with call.lock:
                call.result = result
                waiting = call.waiting
            if waiting:  # the loop is blocked on it, or will see it when it takes the lock
                call.done.set()
                continue
            try:
                self._token.run_sync_soon(self._deliver, call, result)
            except trio.RunFinishedError:
                return

    @staticmethod
    def _deliver(call: _Call, result: outcome.Outcome[Any]) -> None:
        if not call.abandoned:
            trio.lowlevel.reschedule(call.task, result)

    async def run(self, fn: Callable[..., T], *args: Any, wait: float = 0.0) -> T:
        """``fn(*args)`` in the thread; its value, or its exception raised here. With ``wait``
        (seconds), the loop first blocks that long at most for the call to end (see the module
        docstring); a call that ended by then returns without yielding to the scheduler."""
        await trio.lowlevel.checkpoint_if_cancelled()
        call = _Call(fn, args, trio.lowlevel.current_task())
        self._calls.put(call)
        if wait > 0:
            call.done.wait(wait)
        with call.lock:
            result = call.result
            call.waiting = False
        if result is not None:
            value: T = result.unwrap()
            return value

        def abort(_: Any) -> trio.lowlevel.Abort:
            call.abandoned = True
            return trio.lowlevel.Abort.SUCCEEDED

        value = await trio.lowlevel.wait_task_rescheduled(abort)
        return value

    def close(self) -> None:
        """Let the thread end once the call it runs (if any) returns."""
        self._calls.put(None)
