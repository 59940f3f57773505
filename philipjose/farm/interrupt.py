"""Stopping a running task on a worker by raising :class:`TaskCancelled` in the thread that runs it.

Theory of operation
-------------------
A worker runs its tasks in a thread (its Trio loop keeps the node going meanwhile). When the farmer
revokes the task that is running, the worker's loop asks the :class:`Interrupter` to stop it:
CPython's ``PyThreadState_SetAsyncExc`` schedules :class:`TaskCancelled` in the task's thread, where
it is raised at the next bytecode boundary the thread passes. That stops Python code (loops,
function calls) within microseconds; it does **not** stop a thread blocked in C code (``time.sleep``,
a system call, a long numpy operation) until that returns, and code that catches ``BaseException``
can swallow it. So it is a first try only: the farmer gives the worker a short grace period to
report the task, and kills the worker if it does not (see "Cancel" in ``docs/farm.md``).

Races are closed with a lock: :meth:`Interrupter.running` marks the task running (on entry) and not
(on exit, clearing an exception scheduled but not yet raised), and :meth:`Interrupter.interrupt`
schedules at most one exception per task, and only while that task is marked running. The exception
may still surface in the last bytecodes of the task's own frame or in the exit of ``running``:
:func:`~philipjose.farm.shipping.run_task` catches it around both. Where the C API is missing (not
CPython), :meth:`interrupt` returns False and the farmer's kill does the job.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Final

__all__ = ["Interrupter", "TaskCancelled"]

_LOCK_WAIT: Final = 0.05  # seconds interrupt() waits for the lock before it gives up (the kill follows)


class TaskCancelled(BaseException):
    """Raised in a task's thread to stop it: the farm cancelled it (or it timed out, or lost a race).

    A ``BaseException``, so that ``except Exception`` in the task does not swallow it.
    """


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> bool:
    api: Any = getattr(ctypes, "pythonapi", None)
    if api is None:  # pragma: no cover - not CPython
        return False
    target = ctypes.py_object(exc) if exc is not None else None  # None: NULL, clears a pending one
    changed: int = api.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)
    return changed == 1


class _Running:
    """The context manager of :meth:`Interrupter.running` (a class: cheaper than a generator's, and
    it runs once per task)."""

    __slots__ = ("interrupter", "task")

    def __init__(self, interrupter: Interrupter, task: object) -> None:
        self.interrupter, self.task = interrupter, task

    def __enter__(self) -> None:
        self.interrupter._enter(self.task)

    def __exit__(self, *exc: object) -> None:
        self.interrupter._leave()


class Interrupter:
    """Knows which task runs in which thread, and raises :class:`TaskCancelled` there on request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._task: object = None  # the task now running and not yet interrupted
        self._thread: int | None = None
        self._armed = False  # an exception was scheduled in _thread and may not have fired yet

    def running(self, task: object) -> _Running:
        """Mark ``task`` as running in this thread for the duration of the ``with`` block."""
        return _Running(self, task)

    def _enter(self, task: object) -> None:
        with self._lock:
            self._task, self._thread, self._armed = task, threading.get_ident(), False

    def _leave(self) -> None:
        with self._lock:
            self._task = None
            if self._armed and self._thread is not None:
                self._armed = False
                _set_async_exc(self._thread, None)

    def fired(self) -> None:
        """The scheduled :class:`TaskCancelled` was raised and caught (nothing left to clear)."""
        self._armed = False

    def interrupt(self, task: object) -> bool:
        """Raise :class:`TaskCancelled` in the thread running ``task``; False if it is not running
        (finished, not started, interrupted already) or the exception could not be scheduled."""
        if not self._lock.acquire(timeout=_LOCK_WAIT):
            return False
        try:
            if task is None or self._task != task or self._thread is None:
                return False
            self._task = None  # one exception per task at most
            self._armed = _set_async_exc(self._thread, TaskCancelled)
            return self._armed
        finally:
            self._lock.release()
