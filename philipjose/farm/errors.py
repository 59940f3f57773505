"""Errors raised by :mod:`philipjose.farm`.

``FarmError`` is the base of them all. The caller's faults inherit the stdlib class they would catch
anyway: ``UnpicklableTask`` is a ``TypeError`` (the task has no pickled form), ``MachinesError`` is a
``ValueError`` (a machines file or a machine record is malformed), ``TaskTimeout`` is a
``TimeoutError``. What went wrong on a worker arrives as ``TaskError`` (the task raised) or
``WorkerLost`` (the task was in flight on workers that died, too many times in a row). Two
``TaskError`` subclasses name a size over the farm's ``max_message_size``: ``ArgumentsTooLarge``
(raised by ``submit``, also a ``ValueError``: the caller's fault) and ``ResultTooLarge`` (the worker
measured the task's pickled outcome and sent this error instead; the worker lives on).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

__all__ = [
    "ArgumentsTooLarge",
    "FarmError",
    "InitializerFailed",
    "MachinesError",
    "RemoteTraceback",
    "ResultTooLarge",
    "TaskError",
    "TaskTimeout",
    "UnpicklableTask",
    "WorkerLost",
    "original_exception",
]


class FarmError(Exception):
    """Base of every error raised by :mod:`philipjose.farm`."""


class TaskError(FarmError):
    """A task raised an exception on its worker (lfarm's ``task-execution-error``).

    ``remote_type`` is the qualified name of the remote exception's class (``"builtins.ValueError"``),
    ``message`` its ``str()``, and ``remote_traceback`` the formatted traceback text as the worker
    printed it. When the remote exception itself could be pickled and unpickled here, it is also the
    ``__cause__`` of this error, so ``except TaskError as e: e.__cause__`` reaches the original.
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(remote_type, message, remote_traceback)
        self.remote_type = remote_type
        self.message = message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        text = f"{self.remote_type}: {self.message}" if self.message else self.remote_type
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip("\n")
        return text


class _TooLarge(TaskError):
    """A payload of ``size`` bytes is over the farm's ``limit`` (``max_message_size``)."""

    _what = "a payload"

    def __init__(self, task: object, size: int, limit: int) -> None:
        cls = type(self)
        super().__init__(
            f"{cls.__module__}.{cls.__qualname__}",
            f"{self._what} of task {task} pickles to {size} bytes, over the farm's max_message_size "
            f"of {limit} bytes",
        )
        self.task = task
        self.size = size
        self.limit = limit

    def __reduce__(self) -> tuple[object, tuple[object, int, int]]:
        return type(self), (self.task, self.size, self.limit)


class ArgumentsTooLarge(_TooLarge, ValueError):
    """``submit`` (or ``map``, ``broadcast``...) was given a task whose pickled function and
    arguments are larger than the farm's ``max_message_size``: nothing is sent; raised at once."""

    _what = "the function and arguments"


class ResultTooLarge(_TooLarge):
    """A task's pickled result (or exception) is larger than the farm's ``max_message_size``.

    The worker measures the outcome while pickling it, stops as soon as it passes the limit (so it
    never holds a second copy of a huge result) and sends this small error instead; the worker goes
    on with its next task. ``task`` is the task's id as the worker knows it.
    """

    _what = "the outcome"


class WorkerLost(FarmError):
    """A task was in flight on ``len(workers)`` workers that all died, one after another.

    The farm reruns a task whose worker dies (at-least-once execution); a task that keeps killing its
    workers (a "poison" task: a segfault, ``os._exit``, running out of memory) fails with this error
    after the configured number of deaths (default 3) instead of taking down the whole farm.
    ``task`` names the task (its id, or a description), ``workers`` lists the dead workers in order and
    ``causes`` how each of them ended (``"exited with status 3"``, ``"killed by SIGKILL"``, ...; "" where
    unknown).
    """

    def __init__(self, task: object, workers: Sequence[object], causes: Sequence[str] = ()) -> None:
        super().__init__(task, tuple(workers), tuple(causes))
        self.task = task
        self.workers = tuple(workers)
        self.causes = tuple(causes) + ("",) * (len(self.workers) - len(causes))

    def __str__(self) -> str:
        dead = ", ".join(
            f"{w} ({c})" if c else str(w) for w, c in zip(self.workers, self.causes, strict=False)
        )
        return f"task {self.task} was lost with {len(self.workers)} worker(s) that died running it: {dead}"


class TaskTimeout(FarmError, TimeoutError):
    """A task did not finish within its timeout (``task`` names it, ``timeout`` is in seconds)."""

    def __init__(self, task: object, timeout: float | None = None) -> None:
        super().__init__(task, timeout)
        self.task = task
        self.timeout = timeout

    def __str__(self) -> str:
        if self.timeout is None:
            return f"task {self.task} passed its deadline"
        return f"task {self.task} did not finish within {self.timeout:g} s"


class UnpicklableTask(FarmError, TypeError):
    """A task (function, arguments) or its result cannot be serialized with cloudpickle.

    Raised by ``submit`` for the task itself, before anything is sent; a result that cannot be
    pickled on the worker comes back as a ``TaskError`` whose ``remote_type`` names this class.
    """


class MachinesError(FarmError, ValueError):
    """A machines file or a machine record is malformed.

    The message names the file, the key and the problem: ``machines.toml: machines."a".workers:
    must be an integer >= 1, not "four"``.
    """


class InitializerFailed(FarmError, BrokenProcessPool):
    """The farm's ``initializer`` raised on a worker: the farm is broken (as ``ProcessPoolExecutor``'s
    pool is): every pending task and every later submit fails with this error. Also a
    ``concurrent.futures.process.BrokenProcessPool``, so code written for the pool catches it.
    ``remote_type`` and ``remote_traceback`` describe what the initializer raised."""

    def __init__(self, worker: str, remote_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(worker, remote_type, message, remote_traceback)
        self.worker = worker
        self.remote_type = remote_type
        self.message = message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        what = f"{self.remote_type}: {self.message}" if self.message else self.remote_type
        text = f"the initializer failed on worker {self.worker}: {what}; the farm is broken"
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip("\n")
        return text


class RemoteTraceback(Exception):
    """The ``__cause__`` of an exception re-raised by :class:`~philipjose.farm.Executor`: its ``str``
    is the traceback text the worker printed, as with ``ProcessPoolExecutor``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def original_exception(error: BaseException) -> BaseException:
    """What ``Executor`` raises for ``error``: for a plain :class:`TaskError` whose remote exception
    was rebuilt here and is an ``Exception``, that exception, with a :class:`RemoteTraceback` of the
    remote traceback text as its ``__cause__`` (as ``ProcessPoolExecutor`` does); otherwise ``error``
    itself (a ``TaskError`` whose exception could not be rebuilt, a ``SystemExit`` or
    ``KeyboardInterrupt`` raised by a task, ``ResultTooLarge``, ``WorkerLost``, ...)."""
    if type(error) is not TaskError:
        return error
    original = error.__cause__
    if not isinstance(original, Exception):
        return error
    original.__cause__ = RemoteTraceback(f'\n"""\n{error.remote_traceback.rstrip()}\n"""')
    return original
