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
    the task fails with ``TaskTimeout`` and is stopped. ``idempotent`` (default True): False says
    the task must not run twice at once, so speculation never gives it a duplicate (it may still
    run again after its worker dies: at-least-once). ``key``: the task's key in the farm's journal
    (a ``str`` or ``bytes``; default: derived from what is shipped; see "The journal" in
    ``docs/farm.md``).
    """

    timeout: float | None = None
    idempotent: bool = True
    key: str | bytes | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds or None, not {self.timeout!r}")
            if not (self.timeout > 0 and math.isfinite(self.timeout)):
                raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if not isinstance(self.idempotent, bool):
            raise TypeError(f"idempotent must be True or False, not {self.idempotent!r}")
        if self.key is not None and not isinstance(self.key, (str, bytes)):
            raise TypeError(f"key must be a str, bytes or None, not {type(self.key).__name__}")

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
