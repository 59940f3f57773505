"""Shipping tasks to workers and outcomes back, with cloudpickle.

A task is a callable and its arguments. :func:`dumps_task` serializes ``(fn, args, kwargs)`` with
cloudpickle: a function that can be imported by name on the worker (a module-level function of an
installed module) travels by reference, as its module and name; lambdas, closures, functions defined
in ``__main__`` (a script) and in modules registered with :func:`ship_by_value` travel by value, code
and captured variables included. Anything that cannot be pickled (an open file, a lock, a socket, a
generator) fails here, at submit, with :class:`~philipjose.farm.errors.UnpicklableTask` naming the
task and the cause, before anything is sent.

On the worker, :func:`run_task` unpickles and calls the task and returns the pickled outcome:
:class:`Returned` (the value) or :class:`Raised` (the exception's qualified type name, message and
formatted traceback text, plus the exception itself pickled when that works). Back on the farmer,
:func:`loads_outcome` reads it and :func:`unwrap` returns the value or raises
:class:`~philipjose.farm.errors.TaskError` (with the original exception as ``__cause__`` when it could
be rebuilt). A result that cannot be pickled becomes a ``Raised`` naming ``UnpicklableTask``.

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

from philipjose.farm.errors import TaskError, UnpicklableTask

__all__ = [
    "PICKLE_PROTOCOL",
    "Outcome",
    "Raised",
    "Returned",
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


@dataclass(frozen=True, slots=True)
class Returned:
    """A task returned ``value``."""

    value: Any


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
            except Exception:  # the class may not exist here, or its __init__ may refuse its args
                original = None
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
    try:
        data: bytes = _dumps((fn, tuple(args), dict(kwargs or {})))
    except _PICKLING_ERRORS as exc:
        raise UnpicklableTask(f"cannot ship task {describe_task(fn)}: {type(exc).__name__}: {exc}") from exc
    return data


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


def dumps_outcome(outcome: Outcome) -> bytes:
    """``outcome`` pickled; a value that cannot be pickled becomes a :class:`Raised` saying so."""
    try:
        data: bytes = _dumps(outcome)
    except _PICKLING_ERRORS as exc:
        if isinstance(outcome, Raised):  # cannot happen: every field is plain data
            raise
        problem = UnpicklableTask(
            f"the task's result ({type(outcome.value).__name__}) cannot be pickled: "
            f"{type(exc).__name__}: {exc}"
        )
        data = _dumps(outcome_of(problem))
    return data


def loads_outcome(data: bytes) -> Outcome:
    """The :class:`Returned` or :class:`Raised` in an outcome payload. Authenticated peers only."""
    outcome = pickle.loads(data)
    if not isinstance(outcome, (Returned, Raised)):
        raise TypeError(f"an outcome payload holds a {type(outcome).__name__}, not Returned or Raised")
    return outcome


def unwrap(outcome: Outcome) -> Any:
    """The value of a :class:`Returned`; raises the :class:`TaskError` of a :class:`Raised`."""
    if isinstance(outcome, Returned):
        return outcome.value
    raise outcome.to_error()


def run_task(payload: bytes) -> bytes:
    """Run a task payload (on a worker) and return its pickled outcome.

    An ``Exception`` raised by the task (or by unpickling it, e.g. a module missing on the worker)
    becomes a :class:`Raised`; ``KeyboardInterrupt`` and ``SystemExit`` propagate and end the worker,
    which the farm treats as a lost worker. The task runs synchronously in the calling thread.
    """
    try:
        fn, args, kwargs = loads_task(payload)
        outcome: Outcome = Returned(fn(*args, **kwargs))
    except Exception as exc:
        outcome = outcome_of(exc)
    return dumps_outcome(outcome)


def ship_by_value(module: types.ModuleType) -> None:
    """Ship the functions of ``module`` by value from now on (for a module not installed on workers).

    A thin wrapper over ``cloudpickle.register_pickle_by_value``.
    """
    cloudpickle.register_pickle_by_value(module)
