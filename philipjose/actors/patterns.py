"""Receive patterns: the ``match`` argument of ``pj.receive``.

``match`` is one of:

- ``None``: any message (the oldest one).
- a type: ``isinstance(message, match)`` (``str`` also matches atoms, which are ``str`` subclasses).
- :data:`ANY`: any value (useful inside tuples).
- a tuple or list of patterns: a message of the same kind and length whose elements match
  element-wise, e.g. ``(Atom('EXIT'), Pid, ANY)`` or ``("result", int, ANY)``.
- any other callable: a predicate, ``match(message) -> bool``.
- any other value: a literal, matched when the message has exactly that type and is equal to it (so
  ``1`` does not match ``1.0`` or ``True``, and ``'ok'`` does not match ``Atom('ok')``, as in Erlang).

A pattern is compiled once per ``receive`` call (not once per message tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["ANY", "Matcher", "compile_match"]

Matcher = Callable[[Any], bool]


class _AnyType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"

    def __reduce__(self) -> str:
        return "ANY"


#: The wildcard: matches any value.
ANY: Final = _AnyType()


def _always(_message: Any) -> bool:
    return True


def _compile(pattern: Any) -> Matcher:
    if pattern is ANY:
        return _always
    if isinstance(pattern, type):
        cls = pattern
        return lambda m: isinstance(m, cls)
    if type(pattern) is tuple or type(pattern) is list:
        return _compile_sequence(pattern, type(pattern))
    if callable(pattern):
        return pattern  # type: ignore[no-any-return]
    literal_type = type(pattern)
    return lambda m: type(m) is literal_type and m == pattern


def _compile_sequence(pattern: Sequence[Any], kind: type[Sequence[Any]]) -> Matcher:
    size = len(pattern)
    parts = [(i, _compile(p)) for i, p in enumerate(pattern) if p is not ANY]

    def match(m: Any) -> bool:
        if type(m) is not kind or len(m) != size:
            return False
        for i, test in parts:  # noqa: SIM110 (a plain loop is faster than all() here)
            if not test(m[i]):
                return False
        return True

    return match


def compile_match(pattern: Any) -> Matcher:
    """The predicate for ``pattern`` (see the module docstring); ``None`` is not accepted here."""
    return _compile(pattern)
