"""The registry of Python callables other nodes may call, under Erlang module and function names.

Only what is exposed here can be run from another node: a call to anything else (``os:system/1``,
a module that exists in Python but was not exposed, an exposed function with another arity) is
``undef``, and nothing is imported or looked up by name. ::

    rpc.expose("pyexample", {"add": add, "echo": echo})   # names given
    rpc.expose("pyexample", [add, echo])                   # names from __name__
    rpc.expose("pyexample", add)                           # one function
    rpc.expose("pyexample", mymodule)                      # its __all__, else the functions it defines
    rpc.expose("pyexample", obj)                           # its public methods (names without "_")

A function may be ``async def`` or plain ``def`` (anything returning an awaitable is awaited). Its
arities are those of its positional parameters: ``def f(a, b=1)`` is ``f/1`` and ``f/2``;
``def f(*args)`` takes any arity. Required keyword-only parameters cannot be passed from Erlang and
are refused with :class:`~.errors.ExposeError`. Exposing a name again replaces the earlier function
(like loading new code).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from philipjose.rpc.errors import ExposeError
from philipjose.term import Atom

__all__ = ["Exposed", "Registry", "default_registry", "expose", "exposed", "unexpose"]

#: Longest module or function name (Erlang's atom limit, in characters).
MAX_NAME: Final = 255


@dataclass(frozen=True, slots=True)
class Exposed:
    """One exposed function: ``module:function`` with arities ``min_arity`` .. ``max_arity``
    (``max_arity`` None: any number of arguments from ``min_arity`` up)."""

    module: Atom
    function: Atom
    fn: Callable[..., Any]
    min_arity: int
    max_arity: int | None

    def accepts(self, arity: int) -> bool:
        """True when the function can be called with ``arity`` arguments."""
        return self.min_arity <= arity and (self.max_arity is None or arity <= self.max_arity)

    def arities(self) -> str:
        """``"2"``, ``"1..2"`` or ``"1.."``, for messages and listings."""
        if self.max_arity == self.min_arity:
            return str(self.min_arity)
        return f"{self.min_arity}..{'' if self.max_arity is None else self.max_arity}"


def _name(value: Any, what: str) -> Atom:
    if not isinstance(value, str):
        raise ExposeError(f"{what} name must be a str or Atom, not {value!r}")
    if not value or len(value) > MAX_NAME:
        raise ExposeError(f"{what} name must have 1 to {MAX_NAME} characters, not {value!r}")
    return Atom(value)


def _arity_range(fn: Callable[..., Any], where: str) -> tuple[int, int | None]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ExposeError(f"cannot read the parameters of {where}: {exc}") from exc
    least, most = 0, 0
    unbounded = False
    for param in signature.parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            most += 1
            if param.default is param.empty:
                least = most
        elif param.kind is param.VAR_POSITIONAL:
            unbounded = True
        elif param.kind is param.KEYWORD_ONLY and param.default is param.empty:
            raise ExposeError(f"{where} has a required keyword-only parameter {param.name!r}")
    return least, None if unbounded else most


def _entries(functions: Any) -> list[tuple[Any, Any]]:
    """(name, callable) pairs from what ``expose`` was given."""
    if isinstance(functions, Mapping):
        return list(functions.items())
    if isinstance(functions, types.ModuleType):
        names = getattr(functions, "__all__", None)
        if names is None:
            names = [
                name
                for name, value in vars(functions).items()
                if not name.startswith("_")
                and inspect.isfunction(value)
                and value.__module__ == functions.__name__
            ]
        return [(name, getattr(functions, name)) for name in names]
    if callable(functions) and not isinstance(functions, type):
        return [(getattr(functions, "__name__", None), functions)]
    if isinstance(functions, Iterable) and not isinstance(functions, (str, bytes)):
        return [(getattr(fn, "__name__", None), fn) for fn in functions]
    if isinstance(functions, type):
        raise ExposeError(f"expose a {functions.__name__} instance, not the class itself")
    names = [
        name
        for name in dir(type(functions))
        if not name.startswith("_") and callable(getattr(type(functions), name, None))
    ]
    return [(name, getattr(functions, name)) for name in names]


class Registry:
    """Exposed functions by ``(module, function)``. The module-level functions of
    :mod:`philipjose.rpc` use :func:`default_registry`; a node's rpc service may be given another."""

    def __init__(self) -> None:
        self._table: dict[tuple[Atom, Atom], Exposed] = {}

    def expose(self, module: str, functions: Any) -> list[Exposed]:
        """Expose ``functions`` under the Erlang module name ``module`` (see the module docstring).

        Returns the new entries. Raises :class:`ExposeError` (nothing is exposed then) when a name
        is bad, a value is not callable, or a function has required keyword-only parameters.
        """
        mod = _name(module, "module")
        entries: list[Exposed] = []
        for raw_name, fn in _entries(functions):
            if raw_name is None:
                raise ExposeError(f"{fn!r} has no __name__: give the names in a dict")
            name = _name(raw_name, "function")
            if not callable(fn):
                raise ExposeError(f"{module}:{name} is not callable: {fn!r}")
            least, most = _arity_range(fn, f"{module}:{name}")
            entries.append(Exposed(mod, name, fn, least, most))
        if not entries:
            raise ExposeError(f"nothing to expose under {module!r}")
        for entry in entries:
            self._table[(entry.module, entry.function)] = entry
        return entries

    def unexpose(self, module: str, function: str | None = None) -> int:
        """Withdraw ``module:function`` (or every function of ``module``); returns how many."""
        mod = Atom(module)
        if function is not None:
            return 1 if self._table.pop((mod, Atom(function)), None) is not None else 0
        keys = [key for key in self._table if key[0] == mod]
        for key in keys:
            del self._table[key]
        return len(keys)

    def lookup(self, module: Any, function: Any, arity: int) -> Exposed | None:
        """The exposed function for ``module:function/arity``, or None (Erlang's ``undef``).

        ``module`` and ``function`` come from the wire: anything but atoms finds nothing.
        """
        if type(module) is not Atom or type(function) is not Atom:
            return None
        entry = self._table.get((module, function))
        if entry is None or not entry.accepts(arity):
            return None
        return entry

    def listing(self) -> list[tuple[Atom, Atom, str]]:
        """``(module, function, arities)`` of every exposed function, sorted."""
        return sorted((e.module, e.function, e.arities()) for e in self._table.values())


_DEFAULT: Final = Registry()


def default_registry() -> Registry:
    """The registry that :func:`expose` fills and nodes serve unless told otherwise."""
    return _DEFAULT


def expose(module: str, functions: Any) -> list[Exposed]:
    """Expose Python callables to other nodes as ``module:function/arity`` (see the module doc)."""
    return _DEFAULT.expose(module, functions)


def unexpose(module: str, function: str | None = None) -> int:
    """Withdraw exposed functions (all of ``module`` when ``function`` is None); returns how many."""
    return _DEFAULT.unexpose(module, function)


def exposed() -> list[tuple[Atom, Atom, str]]:
    """``(module, function, arities)`` for everything exposed in the default registry."""
    return _DEFAULT.listing()
