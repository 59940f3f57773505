"""Child specs and supervisor flags, validated at the boundary into frozen records.

A child is described by a :class:`ChildSpec` (or anything :func:`child_spec` turns into one):

- ``id``: any hashable value, unique among a supervisor's children (required in a dict).
- ``start`` and ``args``: how the child is started. In a dict, ``start`` is either a callable or a
  tuple ``(callable, *args)``. What the supervisor does with the callable:

  * a ``GenServer`` subclass is started with ``await cls.start_link(*args)``;
  * a plain (not async) function, or an async function marked with :func:`start_function`, is a
    *start function*: it is called (and awaited if it returns an awaitable) and must create and
    link to the child and return its pid, or ``None`` for OTP's ``ignore``; an exception means the
    start failed. Nested supervisors are started this way (``supervisors.start_link`` is one);
  * any other async function is the body of the child process: the supervisor spawns it linked.

- ``restart``: ``"permanent"`` (default, always restarted), ``"transient"`` (restarted unless it ends
  with ``normal``, ``shutdown`` or ``(shutdown, _)``), ``"temporary"`` (never restarted; its spec is
  dropped when it ends).
- ``shutdown``: ``"brutal_kill"``, a number of seconds >= 0, or ``"infinity"``. Default 5 seconds for
  workers and ``"infinity"`` for supervisors, as in OTP.
- ``type``: ``"worker"`` (default) or ``"supervisor"``.
- ``significant``: default False; True is only valid for transient or temporary children of a
  supervisor whose ``auto_shutdown`` is not ``"never"``.
- ``modules``: a tuple of names, or ``"dynamic"``; default the start callable's qualified name.

The supervisor flags are a :class:`SupFlags`: ``strategy`` (``one_for_one`` default,
``one_for_all``, ``rest_for_one``, ``simple_one_for_one``), ``intensity`` (int >= 0, default 1),
``period`` (int seconds > 0, default 5) and ``auto_shutdown`` (``never`` default,
``any_significant``, ``all_significant``).

Every check raises :class:`~philipjose.supervisors.errors.SpecError` naming the key and the reason.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from philipjose.supervisors.errors import SpecError

__all__ = [
    "AUTO_SHUTDOWNS",
    "RESTART_TYPES",
    "STRATEGIES",
    "ChildSpec",
    "Shutdown",
    "SupFlags",
    "check_child",
    "child_spec",
    "is_start_function",
    "start_function",
    "validate_children",
    "validate_flags",
]

Shutdown = float | Literal["brutal_kill", "infinity"]
"""How a child is stopped: ``"brutal_kill"``, seconds to wait after ``exit(child, shutdown)``, or
``"infinity"``."""

RESTART_TYPES = ("permanent", "transient", "temporary")
CHILD_TYPES = ("worker", "supervisor")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one")
AUTO_SHUTDOWNS = ("never", "any_significant", "all_significant")

DEFAULT_WORKER_SHUTDOWN = 5.0
_SPEC_KEYS = ("id", "start", "args", "restart", "shutdown", "type", "significant", "modules")
_START_FUNCTION_MARK = "__philipjose_start_function__"

_F = TypeVar("_F", bound=Callable[..., Any])


def start_function(fn: _F) -> _F:
    """Mark an async function as a *start function* (it starts and links a child, returning its pid)
    rather than the body of a child process. Plain functions and ``GenServer`` subclasses need no
    mark. Returns ``fn`` itself."""
    setattr(fn, _START_FUNCTION_MARK, True)
    return fn


def is_start_function(fn: Callable[..., Any]) -> bool:
    """True if the supervisor calls ``fn`` for a pid instead of spawning it as the child's body:
    ``fn`` is marked with :func:`start_function` (also through ``functools.partial``), or is a plain
    function (not ``async def`` and not a class)."""
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    if getattr(target, _START_FUNCTION_MARK, False):
        return True
    if isinstance(fn, type):
        return False
    return not inspect.iscoroutinefunction(fn)


def _check_choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and str(value) in choices:
        return str(value)
    expected = ", ".join(repr(c) for c in choices)
    raise SpecError(key, f"must be one of {expected}, got {value!r}")


def _check_shutdown(value: object) -> Shutdown:
    if isinstance(value, str):
        text = str(value)
        if text == "brutal_kill":
            return "brutal_kill"
        if text == "infinity":
            return "infinity"
        raise SpecError("shutdown", f"must be 'brutal_kill', 'infinity' or seconds >= 0, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError("shutdown", f"must be 'brutal_kill', 'infinity' or seconds >= 0, got {value!r}")
    if math.isnan(value) or value < 0:
        raise SpecError("shutdown", f"must be seconds >= 0, got {value!r}")
    if math.isinf(value):
        return "infinity"
    return float(value)


def _default_modules(start: Callable[..., Any]) -> tuple[str, ...]:
    name = getattr(start, "__qualname__", None) or getattr(start, "__name__", None)
    if name is None:  # a callable instance: name its class
        name = type(start).__qualname__
    module = getattr(start, "__module__", None)
    return (f"{module}.{name}" if module else str(name),)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """A validated child specification (see the module docstring for each field).

    Constructing one validates it and fills in defaults: ``shutdown=None`` becomes 5.0 for a worker
    and ``"infinity"`` for a supervisor; ``modules=()`` becomes the start callable's qualified name.
    Raises ``SpecError`` for invalid fields.
    """

    id: Hashable
    start: Callable[..., Any]
    args: tuple[Any, ...] = ()
    restart: str = "permanent"
    shutdown: Shutdown | None = None
    type: str = "worker"
    significant: bool = False
    modules: tuple[str, ...] | Literal["dynamic"] = field(default=())

    def __post_init__(self) -> None:
        try:
            hash(self.id)
        except TypeError:
            raise SpecError("id", f"must be hashable, got {type(self.id).__name__}") from None
        if not callable(self.start):
            raise SpecError("start", f"must be callable, got {self.start!r}")
        raw_args: object = self.args
        if isinstance(raw_args, str | bytes) or not isinstance(raw_args, Iterable):
            raise SpecError("args", f"must be a sequence of arguments, got {raw_args!r}")
        if type(raw_args) is not tuple:
            object.__setattr__(self, "args", tuple(raw_args))
        object.__setattr__(self, "restart", _check_choice("restart", self.restart, RESTART_TYPES))
        object.__setattr__(self, "type", _check_choice("type", self.type, CHILD_TYPES))
        if self.shutdown is None:
            default: Shutdown = DEFAULT_WORKER_SHUTDOWN if self.type == "worker" else "infinity"
            object.__setattr__(self, "shutdown", default)
        else:
            object.__setattr__(self, "shutdown", _check_shutdown(self.shutdown))
        if not isinstance(self.significant, bool):
            raise SpecError("significant", f"must be true or false, got {self.significant!r}")
        if self.significant and self.restart == "permanent":
            raise SpecError("significant", "a permanent child cannot be significant")
        modules: object = self.modules
        if isinstance(modules, str):
            if str(modules) != "dynamic":
                raise SpecError("modules", f"must be a list of names or 'dynamic', got {modules!r}")
            object.__setattr__(self, "modules", "dynamic")
        elif isinstance(modules, Iterable):
            names = tuple(modules)
            if not all(isinstance(n, str) for n in names):
                raise SpecError("modules", f"must be a list of names or 'dynamic', got {modules!r}")
            object.__setattr__(self, "modules", names or _default_modules(self.start))
        else:
            raise SpecError("modules", f"must be a list of names or 'dynamic', got {modules!r}")

    @property
    def shutdown_timeout(self) -> float | None:
        """Seconds to wait after ``exit(child, shutdown)`` before killing: 0.0 for ``brutal_kill``
        (killed at once) and None for ``infinity``."""
        if self.shutdown == "brutal_kill":
            return 0.0
        if self.shutdown == "infinity" or self.shutdown is None:
            return None
        return float(self.shutdown)

    def to_dict(self) -> dict[str, Any]:
        """The spec as a dict with every key (like OTP's ``get_childspec``)."""
        return {
            "id": self.id,
            "start": (self.start, *self.args),
            "restart": self.restart,
            "shutdown": self.shutdown,
            "type": self.type,
            "significant": self.significant,
            "modules": self.modules,
        }


def _from_mapping(spec: Mapping[Any, Any]) -> ChildSpec:
    unknown = [k for k in spec if k not in _SPEC_KEYS]
    if unknown:
        allowed = ", ".join(_SPEC_KEYS)
        raise SpecError(str(unknown[0]), f"unknown child spec key (allowed: {allowed})")
    if "id" not in spec:
        raise SpecError("id", "missing (every child spec needs an id)")
    if "start" not in spec:
        raise SpecError("start", "missing (every child spec needs a start)")
    start = spec["start"]
    args: tuple[Any, ...] = ()
    if isinstance(start, tuple):
        if not start:
            raise SpecError("start", "must be a callable or (callable, *args), got ()")
        start, args = start[0], tuple(start[1:])
        if "args" in spec:
            raise SpecError("args", "given twice: in start=(callable, *args) and in args")
    elif "args" in spec:
        raw_args = spec["args"]
        if isinstance(raw_args, str | bytes) or not isinstance(raw_args, Iterable):
            raise SpecError("args", f"must be a list of arguments, got {raw_args!r}")
        args = tuple(raw_args)
    fields: dict[str, Any] = {k: spec[k] for k in ("restart", "shutdown", "type", "significant") if k in spec}
    if "modules" in spec:
        fields["modules"] = spec["modules"]
    return ChildSpec(id=spec["id"], start=start, args=args, **fields)


def _from_callable(start: Callable[..., Any], args: tuple[Any, ...]) -> ChildSpec:
    make = getattr(start, "child_spec", None)
    if make is not None and callable(make):
        made = make(*args)
        if isinstance(made, ChildSpec):
            return made
        if isinstance(made, Mapping):
            return _from_mapping(made)
        raise SpecError("", f"{start!r}.child_spec(...) returned {made!r}, not a child spec")
    name = getattr(start, "__qualname__", None) or getattr(start, "__name__", None) or repr(start)
    return ChildSpec(id=str(name), start=start, args=args)


def child_spec(spec: object, /, **overrides: Any) -> ChildSpec:
    """Build a validated :class:`ChildSpec`, Elixir style.

    ``spec`` is a ``ChildSpec``, a dict with the keys above (``id`` and ``start`` required), a callable,
    or a tuple ``(callable, *args)``. For a callable (or tuple), ``callable.child_spec(*args)`` is used
    if it exists (so a ``GenServer`` subclass can define its own defaults); otherwise the id is the
    callable's qualified name. ``overrides`` replace fields afterwards, as in
    ``child_spec((worker, 1), id="w1", restart="transient")``; unknown keys are refused.
    Raises ``SpecError``.
    """
    result: ChildSpec
    if isinstance(spec, ChildSpec):
        result = spec
    elif isinstance(spec, Mapping):
        result = _from_mapping(spec)
    elif isinstance(spec, tuple):
        if not spec or not callable(spec[0]):
            raise SpecError("start", f"a tuple child must be (callable, *args), got {spec!r}")
        result = _from_callable(spec[0], tuple(spec[1:]))
    elif callable(spec):
        result = _from_callable(spec, ())
    else:
        raise SpecError("", f"a child must be a ChildSpec, dict, callable or (callable, *args), got {spec!r}")
    if not overrides:
        return result
    unknown = [k for k in overrides if k not in _SPEC_KEYS]
    if unknown:
        raise SpecError(unknown[0], f"unknown child spec key (allowed: {', '.join(_SPEC_KEYS)})")
    if "start" in overrides and isinstance(overrides["start"], tuple):
        start_tuple = overrides.pop("start")
        if not start_tuple:
            raise SpecError("start", "must be a callable or (callable, *args), got ()")
        overrides["start"] = start_tuple[0]
        overrides.setdefault("args", tuple(start_tuple[1:]))
    if "type" in overrides and "shutdown" not in overrides:
        overrides["shutdown"] = None  # recompute the default for the new type
    if "start" in overrides and "modules" not in overrides:
        overrides["modules"] = ()
    return replace(result, **overrides)


@dataclass(frozen=True, slots=True)
class SupFlags:
    """Validated supervisor flags (see the module docstring). Raises ``SpecError`` when invalid."""

    strategy: str = "one_for_one"
    intensity: int = 1
    period: int = 5
    auto_shutdown: str = "never"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", _check_choice("strategy", self.strategy, STRATEGIES))
        if isinstance(self.intensity, bool) or not isinstance(self.intensity, int) or self.intensity < 0:
            raise SpecError("intensity", f"must be an integer >= 0, got {self.intensity!r}")
        if isinstance(self.period, bool) or not isinstance(self.period, int) or self.period <= 0:
            raise SpecError("period", f"must be a whole number of seconds > 0, got {self.period!r}")
        object.__setattr__(
            self, "auto_shutdown", _check_choice("auto_shutdown", self.auto_shutdown, AUTO_SHUTDOWNS)
        )


def validate_flags(
    strategy: str = "one_for_one", intensity: int = 1, period: int = 5, auto_shutdown: str = "never"
) -> SupFlags:
    """Check the supervisor flags and return them as a :class:`SupFlags`. Raises ``SpecError``."""
    return SupFlags(strategy, intensity, period, auto_shutdown)


def validate_children(children: Iterable[object], flags: SupFlags) -> tuple[ChildSpec, ...]:
    """Turn each child into a :class:`ChildSpec` (see :func:`child_spec`) and check the list as a
    whole: ids are unique; significant children need ``auto_shutdown`` other than ``never``; a
    ``simple_one_for_one`` supervisor has exactly one spec (its template).

    Raises ``SpecError`` whose key is ``children[i]`` or ``children[i].<field>``.
    """
    if isinstance(children, str | bytes | Mapping) or not isinstance(children, Iterable):
        raise SpecError("children", f"must be a list of child specs, got {children!r}")
    specs: list[ChildSpec] = []
    seen: set[Hashable] = set()
    for index, child in enumerate(children):
        try:
            spec = child_spec(child)
        except SpecError as exc:
            key = f"children[{index}].{exc.key}" if exc.key else f"children[{index}]"
            raise SpecError(key, exc.reason) from None
        if spec.id in seen:
            raise SpecError(f"children[{index}].id", f"duplicate child id {spec.id!r}")
        if spec.significant and flags.auto_shutdown == "never":
            raise SpecError(
                f"children[{index}].significant",
                "a significant child needs auto_shutdown 'any_significant' or 'all_significant'",
            )
        seen.add(spec.id)
        specs.append(spec)
    if flags.strategy == "simple_one_for_one" and len(specs) != 1:
        raise SpecError("children", f"simple_one_for_one needs exactly one child spec, got {len(specs)}")
    return tuple(specs)


def check_child(spec: object, flags: SupFlags) -> ChildSpec:
    """Validate one child added at run time (``start_child``) against the supervisor's flags."""
    result = child_spec(spec)
    if result.significant and flags.auto_shutdown == "never":
        raise SpecError(
            "significant", "a significant child needs auto_shutdown 'any_significant' or 'all_significant'"
        )
    return result
