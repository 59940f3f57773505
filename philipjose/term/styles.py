"""How a node maps strings and ``None`` across the wire (pure; the node applies it per connection).

The codec's own mapping never changes (``decode``/``encode`` stay byte-exact, see ``docs/terms.md``).
A :class:`TermStyle` is applied by the distribution layer after a peer's terms are decoded and before
ours are encoded, for Elixir-minded programs:

- ``binaries="str"``: a binary that is valid UTF-8 decodes to ``str`` (Elixir's ``"hello"`` arrives as
  ``"hello"``, not ``b"hello"``); other binaries stay ``bytes``. A ``str`` encodes as its UTF-8
  binary anyway, so the term goes back to the same bytes. The default ``"bytes"`` keeps ``bytes``.
- ``none="nil"``: ``None`` encodes as the atom ``nil`` (Elixir's ``nil``) and ``nil`` decodes to
  ``None``; ``undefined`` stays ``Atom('undefined')`` both ways. The default ``"undefined"`` encodes
  ``None`` as ``undefined`` and decodes every atom as an ``Atom``.

The walk covers tuples, lists, improper lists, maps (keys too, rebuilt as ``List``/``Map`` where the
codec made them hashable); funs, pids, references and the rest are left as they are. It uses an
explicit stack, so deep terms cost memory, not recursion. Converting costs a pass over every message:
leave the defaults where speed matters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from philipjose.term.types import Atom, ImproperList, List, Map

__all__ = ["BINARIES", "DEFAULT_STYLE", "NONES", "TermStyle"]

BINARIES: Final = ("bytes", "str")
NONES: Final = ("undefined", "nil")
_NIL: Final = Atom("nil")


@dataclass(frozen=True, slots=True)
class TermStyle:
    """``binaries`` (``"bytes"`` or ``"str"``) and ``none`` (``"undefined"`` or ``"nil"``); see the
    module docstring. Raises ``ValueError`` for other values."""

    binaries: Literal["bytes", "str"] = "bytes"
    none: Literal["undefined", "nil"] = "undefined"

    def __post_init__(self) -> None:
        if self.binaries not in BINARIES:
            raise ValueError(f"binaries must be 'bytes' or 'str', not {self.binaries!r}")
        if self.none not in NONES:
            raise ValueError(f"none must be 'undefined' or 'nil', not {self.none!r}")

    @property
    def converts_input(self) -> bool:
        """True when decoded terms are changed (anything but the defaults)."""
        return self.binaries == "str" or self.none == "nil"

    @property
    def converts_output(self) -> bool:
        """True when terms are changed before encoding (``none="nil"``)."""
        return self.none == "nil"

    def decoded(self, term: Any) -> Any:
        """``term`` as this style shows a decoded term."""
        strings = self.binaries == "str"
        nil = self.none == "nil"

        def leaf(value: Any) -> Any:
            kind = type(value)
            if kind is bytes and strings:
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    return value
            if kind is Atom and nil and value == _NIL:
                return None
            return value

        return _walk(term, leaf)

    def encoding(self, term: Any) -> Any:
        """``term`` as it is to be encoded in this style (``None`` as ``nil`` when ``none="nil"``)."""
        if self.none != "nil":
            return term
        return _walk(term, _none_to_nil)


def _none_to_nil(value: Any) -> Any:
    return _NIL if value is None else value


DEFAULT_STYLE: Final = TermStyle()


def _rebuild(kind: type, original: Any, items: list[Any]) -> Any:
    if kind is list:
        return items
    if kind is ImproperList:
        return ImproperList(tuple(items[:-1]), items[-1])
    if kind is List:
        return List(items)
    if kind is dict or kind is Map:
        pairs = zip(items[0::2], items[1::2], strict=True)
        return dict(pairs) if kind is dict else Map(pairs)
    if kind is tuple:
        return tuple(items)
    return type(original)(*items) if hasattr(original, "_fields") else tuple(items)  # a named tuple


def _children(value: Any) -> tuple[type, list[Any]] | None:
    kind = type(value)
    if kind is list:
        return kind, value
    if kind is tuple or kind is List:
        return kind, list(value)
    if kind is ImproperList:
        return kind, [*value.elements, value.tail]
    if kind is dict or kind is Map or isinstance(value, Mapping):
        flat: list[Any] = []
        for key, item in value.items():
            flat.append(key)
            flat.append(item)
        return (kind if kind is Map else dict), flat
    if isinstance(value, tuple):  # a named tuple or another subclass: encoded as a tuple
        return type(value), list(value)
    return None


def _walk(term: Any, leaf: Callable[[Any], Any]) -> Any:
    """``term`` with every non-container value replaced by ``leaf(value)``, containers rebuilt."""
    top = _children(term)
    if top is None:
        return leaf(term)
    # each frame: [kind, original, children, next index, converted children]
    stack: list[list[Any]] = [[top[0], term, top[1], 0, []]]
    while True:
        frame = stack[-1]
        kind, original, children, index, out = frame
        if index == len(children):
            stack.pop()
            built = _rebuild(kind, original, out)
            if not stack:
                return built
            stack[-1][4].append(built)
            continue
        frame[3] = index + 1
        child = children[index]
        nested = _children(child)
        if nested is None:
            out.append(leaf(child))
        else:
            stack.append([nested[0], child, nested[1], 0, []])
