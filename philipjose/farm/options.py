"""Per-call options of the farm's tasks, kept apart from the task's own keyword arguments.

``farm.submit(fn, *args, **kwargs)`` passes every keyword argument to ``fn``; the farm's own options
for one call are given the way Ray does it, on a view of the farm: ``farm.options(timeout=5).submit(fn,
x, key=1)``. So no name the farm uses can ever collide with one of the task's arguments, and options
added later need no new reserved names. :class:`TaskOptions` is the validated record (pure: no I/O);
:class:`OptionsView` is what ``Farm.options`` and ``Executor.options`` return.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["OptionsView", "TaskOptions"]

F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """The farm's options for one task.

    ``timeout``: seconds the task may run on a worker (None: the farm's ``task_timeout``); past it
    the task fails with ``TaskTimeout`` and is stopped.
    """

    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds or None, not {self.timeout!r}")
            if not (self.timeout > 0 and math.isfinite(self.timeout)):
                raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")

    def replace(self, **changes: Any) -> TaskOptions:
        """These options with ``changes``; ``TypeError`` naming an option that does not exist."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(
                f"unknown task option(s) {', '.join(unknown)}; the options are {', '.join(sorted(names))} "
                "(the task's own keyword arguments go to submit)"
            )
        return dataclasses.replace(self, **changes)


class OptionsView(Generic[F]):
    """A farm (or executor) seen with some :class:`TaskOptions`: ``submit`` as the farm's, with those
    options; ``options(...)`` again gives a view with more of them changed."""

    __slots__ = ("_options", "_submit")

    def __init__(self, submit: Callable[..., F], options: TaskOptions) -> None:
        self._submit = submit
        self._options = options

    @property
    def task_options(self) -> TaskOptions:
        return self._options

    def options(self, **changes: Any) -> OptionsView[F]:
        return OptionsView(self._submit, self._options.replace(**changes))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> F:
        """Queue ``fn(*args, **kwargs)`` with these options."""
        return self._submit(self._options, fn, args, kwargs)

    def __repr__(self) -> str:
        return f"<options {self._options}>"
