"""Shipping tasks to workers and outcomes back, with cloudpickle.

A task is a callable and its arguments. :func:`dumps_task` serializes ``(fn, args, kwargs)`` with
cloudpickle: a function that can be imported by name on the worker (a module-level function of an
installed module) travels by reference, as its module and name; lambdas, closures, functions defined
in ``__main__`` (a script) and in modules registered with :func:`ship_by_value` travel by value, code
and captured variables included. A task (or a worker's outcome) made only of importable names and
plain data (nothing from ``__main__``, no module shipped by value) is pickled by the standard C
pickler instead, which is what cloudpickle would do, three times as fast. Anything that cannot be
pickled (an open file, a lock, a socket, a generator) fails here, at submit, with
:class:`~philipjose.farm.errors.UnpicklableTask` naming the task and the cause, before anything is
sent.

On the worker, :func:`run_task` unpickles and calls the task and returns the pickled outcome:
:class:`Returned` (the value) or :class:`Raised` (the exception's qualified type name, message and
formatted traceback text, plus the exception itself pickled when that works). Back on the farmer,
:func:`loads_outcome` reads it and :func:`unwrap` returns the value or raises
:class:`~philipjose.farm.errors.TaskError` (with the original exception as ``__cause__`` when it could
be rebuilt). A result that cannot be pickled becomes a ``Raised`` naming ``UnpicklableTask``.
Whatever the task raises becomes its ``Raised``, ``SystemExit`` and ``KeyboardInterrupt`` included:
a task's own ``sys.exit(2)`` is that task's error, not the end of its worker.

Sizes: :func:`run_task` takes the farm's ``max_message_size`` and pickles the outcome into a sink
that counts: past the limit it drops what it holds (it never keeps more than the limit; the C
pickler hands a large ``bytes`` to the sink without copying it) and only counts on, and the outcome
becomes a :class:`~philipjose.farm.errors.ResultTooLarge` naming the exact size and the limit.

On the farmer, :func:`decode_outcome` turns an outcome payload into a :class:`Returned` or the
:class:`~philipjose.farm.errors.TaskError` to raise; *anything* raised while unpickling it
(``BaseException`` included: a reconstructor may call ``sys.exit``) becomes that task's
``TaskError``. The farm runs it in a thread, off the event loop.

Code objects of functions shipped by value keep their file name and line numbers (cloudpickle 3.1.3
and later replace ``co_filename`` with ``<dynamic-code>``): :class:`_Pickler` reduces a code object
to its ``marshal`` bytes plus the source lines it spans, and the worker puts those lines in
``linecache`` when the file is not there, so a remote traceback shows the user's file, line and
source text wherever the task ran. Workers run the farmer's Python version (cloudpickle needs that
for by-value code anyway), so ``marshal`` is safe to use.

Security: unpickling runs code. Payloads are only ever accepted from authenticated farm connections
(the farm cookie); never feed :func:`loads_task` or :func:`loads_outcome` bytes from anyone else.
"""

from __future__ import annotations

import io
import linecache
import marshal
import os
import pickle
import traceback
import types
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cloudpickle

from philipjose.farm.errors import ResultTooLarge, TaskError, UnpicklableTask
from philipjose.farm.interrupt import Interrupter, TaskCancelled

__all__ = [
    "PICKLE_PROTOCOL",
    "Outcome",
    "Raised",
    "Returned",
    "decode_outcome",
    "describe_task",
    "dumps_outcome",
    "dumps_task",
    "loads_outcome",
    "loads_task",
    "outcome_of",
    "run_task",
    "ship_by_value",
    "unwrap",
]

PICKLE_PROTOCOL = 5
"""The pickle protocol of every payload (Python 3.8+; workers must run Python 3.11+ anyway)."""

_PICKLING_ERRORS = (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError)


def _code_lines(code: types.CodeType) -> tuple[int, list[str]]:
    """The first line number of ``code`` and the source lines it spans (nested code included)."""
    numbers = [line for _, _, line in code.co_lines() if line is not None]
    first = min(numbers, default=code.co_firstlineno)
    last = max(numbers, default=code.co_firstlineno)
    everything = linecache.getlines(code.co_filename)
    return first, everything[first - 1 : last]


def _rebuild_code(marshalled: bytes, first: int, lines: list[str]) -> types.CodeType:
    """A shipped code object; its source lines go to ``linecache`` when its file is not here."""
    code = marshal.loads(marshalled)
    if not isinstance(code, types.CodeType):
        raise pickle.UnpicklingError("a shipped code object is not code")
    name = code.co_filename
    if lines and not os.path.exists(name):
        known = linecache.cache.get(name)
        held = list(known[2]) if known is not None and len(known) == 4 else []  # (1,): a lazy entry
        held.extend("\n" for _ in range(len(held), first - 1 + len(lines)))
        held[first - 1 : first - 1 + len(lines)] = lines
        linecache.cache[name] = (sum(map(len, held)), None, held, name)  # mtime None: kept as is
    return code


def _reduce_code(code: types.CodeType) -> tuple[Any, ...]:
    first, lines = _code_lines(code)
    return _rebuild_code, (marshal.dumps(code), first, lines)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle's pickler, except that code objects keep their file name (see the module doc)."""

    dispatch_table = ChainMap({types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table)


def _dumps(obj: object) -> bytes:
    with io.BytesIO() as file:
        _Pickler(file, protocol=PICKLE_PROTOCOL).dump(obj)
        return file.getvalue()


class _BoundedSink:
    """A file for the pickler that keeps at most ``limit`` bytes, then only counts."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.chunks: list[bytes] = []

    def write(self, data: Any) -> int:
        n = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        self.size += n
        if self.size > self.limit:
            self.chunks = []  # over: hold nothing, count on for the error message
        else:
            self.chunks.append(data if isinstance(data, bytes) else bytes(data))
        return n


def _dumps_bounded(obj: object, limit: int) -> tuple[bytes | None, int]:
    """``obj`` pickled, and its size; ``(None, size)`` when the size is over ``limit``."""
    sink = _BoundedSink(limit)
    _Pickler(sink, protocol=PICKLE_PROTOCOL).dump(obj)
    if sink.size > limit:
        return None, sink.size
    return b"".join(sink.chunks), sink.size


@dataclass(frozen=True, slots=True)
class Returned:
    """A task returned ``value``."""

    value: Any

    def __reduce__(self) -> tuple[type[Returned], tuple[Any]]:
        return Returned, (self.value,)  # cheaper to unpickle than a slotted dataclass's state


@dataclass(frozen=True, slots=True)
class Raised:
    """A task raised: ``remote_type`` (``"module.QualName"``), ``message``, ``traceback`` text, and
    ``exception``, the pickled exception itself (None when it could not be pickled)."""

    remote_type: str
    message: str
    traceback: str
    exception: bytes | None = None

    def to_error(self) -> TaskError:
        """The :class:`TaskError` to raise locally, with the original exception as cause if rebuilt."""
        error = TaskError(self.remote_type, self.message, self.traceback)
        if self.exception is not None:
            try:
                original = pickle.loads(self.exception)
            except BaseException:  # no such class here, an __init__ refusing its args, a sys.exit...
                original = None
            if isinstance(original, ResultTooLarge):  # the worker's own verdict on the task
                return original
            if isinstance(original, BaseException):
                error.__cause__ = original
        return error


Outcome = Returned | Raised


def describe_task(fn: object) -> str:
    """A short name for a task's callable, for error messages: ``module.qualname`` when it has one."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", None)
    if isinstance(name, str):
        return f"{module}.{name}" if isinstance(module, str) else name
    return repr(fn)[:200]


def dumps_task(
    fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None
) -> bytes:
    """``(fn, args, kwargs)`` pickled with cloudpickle; :class:`UnpicklableTask` if that fails."""
    if not callable(fn):
        raise UnpicklableTask(f"a task must be callable, not {type(fn).__name__}")
    task = (fn, tuple(args), dict(kwargs or {}))
    fast = _dumps_by_reference(task)
    if fast is not None:
        return fast
    try:
        data: bytes = _dumps(task)
    except _PICKLING_ERRORS as exc:
        raise UnpicklableTask(f"cannot ship task {describe_task(fn)}: {type(exc).__name__}: {exc}") from exc
    return data


def _dumps_by_reference(obj: object, limit: int | None = None) -> bytes | None:
    """``obj`` pickled by the C pickler when that is what cloudpickle would do: every function and
    class in it is importable by name (none from ``__main__``) and no module is shipped by value.
    None otherwise (cloudpickle then decides), and when it is over ``limit`` bytes (the exact path
    then measures it). About three times as fast for ``(abs, (1,), {})`` or ``Returned(1)``."""
    if cloudpickle.list_registry_pickle_by_value():
        return None
    try:
        if limit is None:
            data = pickle.dumps(obj, protocol=PICKLE_PROTOCOL)
        else:
            sink = _BoundedSink(limit)
            pickle.Pickler(sink, protocol=PICKLE_PROTOCOL).dump(obj)
            if sink.size > limit:
                return None
            data = b"".join(sink.chunks)
    except Exception:  # a lambda, a local class, a lock...: cloudpickle says what it can do
        return None
    return None if b"__main__" in data else data


def loads_task(data: bytes) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The ``(fn, args, kwargs)`` of a task payload. Runs code: authenticated peers only."""
    fn, args, kwargs = pickle.loads(data)
    return fn, args, kwargs


def _qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def _pickled_exception(exc: BaseException) -> bytes | None:
    try:
        data: bytes = _dumps(exc)
        pickle.loads(data)  # an exception whose __init__ rejects its own args cannot come back
    except Exception:
        return None
    return data


def outcome_of(exc: BaseException) -> Raised:
    """The :class:`Raised` describing ``exc`` (with its traceback text, if it has one)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Raised(_qualified_type(exc), str(exc), text, _pickled_exception(exc))


def dumps_outcome(outcome: Outcome, *, limit: int | None = None, task: object = "?") -> bytes:
    """``outcome`` pickled; a value that cannot be pickled becomes a :class:`Raised` saying so.

    With a ``limit`` (the farm's ``max_message_size``), an outcome that pickles to more bytes
    becomes a :class:`Raised` of :class:`~philipjose.farm.errors.ResultTooLarge` for ``task``.
    """
    fast = _dumps_by_reference(outcome, limit)
    if fast is not None:
        return fast
    try:
        if limit is None:
            data: bytes | None = _dumps(outcome)
        else:
            data, size = _dumps_bounded(outcome, limit)
            if data is None:
                return _dumps(outcome_of(ResultTooLarge(task, size, limit)))
    except _PICKLING_ERRORS as exc:
        if isinstance(outcome, Raised):  # cannot happen: every field is plain data
            raise
        problem = UnpicklableTask(
            f"the task's result ({type(outcome.value).__name__}) cannot be pickled: "
            f"{type(exc).__name__}: {exc}"
        )
        data = _dumps(outcome_of(problem))
    assert data is not None
    return data


def loads_outcome(data: bytes) -> Outcome:
    """The :class:`Returned` or :class:`Raised` in an outcome payload. Authenticated peers only."""
    outcome = pickle.loads(data)
    if not isinstance(outcome, (Returned, Raised)):
        raise TypeError(f"an outcome payload holds a {type(outcome).__name__}, not Returned or Raised")
    return outcome


def decode_outcome(data: bytes) -> Returned | TaskError:
    """An outcome payload read on the farmer: the :class:`Returned`, or the :class:`TaskError` its
    :class:`Raised` stands for, or a :class:`TaskError` saying why it could not be read. Never
    raises: whatever unpickling raises, ``BaseException`` included, becomes the ``TaskError``.
    Runs code (authenticated peers only); the farm calls it in a thread."""
    try:
        outcome = loads_outcome(data)
        return outcome if isinstance(outcome, Returned) else outcome.to_error()
    except BaseException as exc:  # a reconstructor's SystemExit is this task's error
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return TaskError(_qualified_type(exc), f"the task's outcome could not be unpickled: {exc}", text)


def unwrap(outcome: Outcome) -> Any:
    """The value of a :class:`Returned`; raises the :class:`TaskError` of a :class:`Raised`."""
    if isinstance(outcome, Returned):
        return outcome.value
    raise outcome.to_error()


def run_task(
    payload: bytes, *, limit: int | None = None, task: object = "?", interrupter: Interrupter | None = None
) -> bytes:
    """Run a task payload (on a worker) and return its pickled outcome.

    Whatever the task raises (or unpickling it raises, e.g. a module missing on the worker) becomes
    a :class:`Raised`, ``SystemExit`` and ``KeyboardInterrupt`` included: they are the task's, and
    the worker goes on. An outcome over ``limit`` bytes becomes a ``ResultTooLarge`` for ``task``
    (see :func:`dumps_outcome`). The task runs synchronously in the calling thread, marked as
    ``task`` in ``interrupter`` if given: a task stopped by
    :meth:`~philipjose.farm.interrupt.Interrupter.interrupt` returns ``b""`` (nothing to report).
    """
    try:
        try:
            fn, args, kwargs = loads_task(payload)
            if interrupter is None:
                value = fn(*args, **kwargs)
            else:
                with interrupter.running(task):
                    value = fn(*args, **kwargs)
            outcome: Outcome = Returned(value)
        except TaskCancelled:
            raise
        except BaseException as exc:  # a task's sys.exit() is that task's error
            outcome = outcome_of(exc)
    except TaskCancelled:  # here or from an except clause above: stopped on purpose
        if interrupter is not None:
            interrupter.fired()
        return b""
    return dumps_outcome(outcome, limit=limit, task=task)


def ship_by_value(module: types.ModuleType) -> None:
    """Ship the functions of ``module`` by value from now on (for a module not installed on workers).

    A thin wrapper over ``cloudpickle.register_pickle_by_value``.
    """
    cloudpickle.register_pickle_by_value(module)
