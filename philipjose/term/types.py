"""Erlang data types that have no direct Python counterpart.

Every type here is immutable and hashable, and its equality matches the wire: two values are equal
exactly when Erlang would encode them to the same bytes. So ``Atom('ok') != 'ok'`` (an atom is not a
binary), and a ``Pid`` compares by node, id, serial and creation.

- ``Atom``: a ``str`` subclass, interned, equal only to other atoms.
- ``Pid``, ``Reference``, ``Port``: node identifiers, as in ``NEW_PID_EXT``, ``NEWER_REFERENCE_EXT``
  and ``NEW_PORT_EXT``/``V4_PORT_EXT``.
- ``ImproperList``: a list whose last tail is not ``[]`` (``[a, b | c]``), e.g. gen_server's
  ``[alias | Ref]`` call tags.
- ``BitString``: a binary whose length in bits is not a multiple of 8.
- ``Fun`` and ``ExportFun``: inert records of a fun; decoding one never runs anything.
- ``ExactFloat``: a float map key kept apart from an equal integer key (Erlang's ``1`` and ``1.0``).
- ``List`` and ``Map``: hashable forms of an Erlang list and map, used where Python needs a hashable
  value (map keys, elements of such keys). They encode exactly like ``list`` and ``dict``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Atom",
    "BitString",
    "ExactFloat",
    "ExportFun",
    "Fun",
    "ImproperList",
    "List",
    "Map",
    "Pid",
    "Port",
    "Reference",
]


_F64 = struct.Struct(">d")

#: At most this many distinct atoms are interned; later ones are still correct ``Atom`` values
#: (equal by text) but not interned, so input full of fresh atoms cannot grow memory without bound.
MAX_INTERNED_ATOMS = 200_000


class Atom(str):
    """An Erlang atom.

    ``Atom('ok')`` is interned (the first ``MAX_INTERNED_ATOMS`` distinct names), so decoding the
    same atom twice gives the same object. An atom is
    equal only to an atom with the same text: ``Atom('ok') == 'ok'`` is False, because the string
    ``'ok'`` encodes as a binary. Atoms are at most 255 characters (checked when encoding).
    """

    __slots__ = ()
    _interned: dict[str, Atom] = {}

    def __new__(cls, text: str = "") -> Atom:
        atom = cls._interned.get(text)
        if atom is None:
            if not isinstance(text, str):
                raise TypeError(f"Atom text must be str, not {type(text).__name__}")
            atom = str.__new__(cls, text)
            if len(cls._interned) < MAX_INTERNED_ATOMS:
                cls._interned[str(text)] = atom
        return atom

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, Atom) and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    # Assigning the C slot (not a Python method) keeps dict and set lookups at str speed.
    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Atom, (str(self),))


@dataclass(frozen=True, slots=True, init=False)
class Pid:
    """A process identifier: ``Pid('a@host', 85, 0, 3)`` is ``<X.85.0>`` on node ``a@host``."""

    node: Atom
    id: int
    serial: int
    creation: int

    def __init__(self, node: str, id: int, serial: int = 0, creation: int = 0) -> None:
        _set = object.__setattr__
        _set(self, "node", node if type(node) is Atom else Atom(node))
        _set(self, "id", id)
        _set(self, "serial", serial)
        _set(self, "creation", creation)

    def __repr__(self) -> str:
        return f"Pid({str(self.node)!r}, {self.id}, {self.serial}, {self.creation})"


@dataclass(frozen=True, slots=True, init=False)
class Reference:
    """A reference: ``Reference('a@host', 3, (158, 2621441, 1))``; ``ids`` holds 1 to 5 32-bit words."""

    node: Atom
    creation: int
    ids: tuple[int, ...]

    def __init__(self, node: str, creation: int, ids: Iterable[int]) -> None:
        _set = object.__setattr__
        _set(self, "node", node if type(node) is Atom else Atom(node))
        _set(self, "creation", creation)
        _set(self, "ids", ids if type(ids) is tuple else tuple(ids))

    def __repr__(self) -> str:
        return f"Reference({str(self.node)!r}, {self.creation}, {self.ids!r})"


@dataclass(frozen=True, slots=True, init=False)
class Port:
    """A port identifier: ``Port('a@host', 7, 3)``; ``id`` is up to 64 bits."""

    node: Atom
    id: int
    creation: int

    def __init__(self, node: str, id: int, creation: int = 0) -> None:
        _set = object.__setattr__
        _set(self, "node", node if type(node) is Atom else Atom(node))
        _set(self, "id", id)
        _set(self, "creation", creation)

    def __repr__(self) -> str:
        return f"Port({str(self.node)!r}, {self.id}, {self.creation})"


@dataclass(frozen=True, slots=True)
class ImproperList:
    """An improper list ``[e1, ..., en | tail]``: ``elements`` is non-empty, ``tail`` is not a list.

    Raises ``ValueError`` when ``elements`` is empty or ``tail`` is a list (``list``, ``List`` or
    ``ImproperList``): such a value has a different, canonical Erlang form.
    """

    elements: tuple[Any, ...]
    tail: Any

    def __post_init__(self) -> None:
        if type(self.elements) is not tuple:
            object.__setattr__(self, "elements", tuple(self.elements))
        if not self.elements:
            raise ValueError("an ImproperList needs at least one element")
        if isinstance(self.tail, (list, List, ImproperList)):
            raise ValueError("the tail of an ImproperList cannot be a list")

    def __repr__(self) -> str:
        return f"ImproperList({list(self.elements)!r}, {self.tail!r})"


@dataclass(frozen=True, slots=True)
class BitString:
    """A bitstring whose size is not a whole number of bytes.

    ``data`` holds the bytes; only the high ``bits`` bits (1 to 7) of the last byte are part of the
    value. ``BitString(b'\\xa0', 3)`` is ``<<5:3>>``. The unused low bits of the last byte are
    cleared on construction, so equal values have equal ``data``. ``data`` must not be empty
    (``ValueError`` otherwise); a whole number of bytes is a plain ``bytes`` value.
    """

    data: bytes
    bits: int

    def __post_init__(self) -> None:
        data = bytes(self.data)
        if not data:
            raise ValueError("a BitString needs at least one byte")
        if type(self.bits) is not int or not 1 <= self.bits <= 7:
            raise ValueError(f"BitString.bits must be 1 to 7, not {self.bits!r}")
        mask = (0xFF << (8 - self.bits)) & 0xFF
        if data[-1] & ~mask:
            data = data[:-1] + bytes((data[-1] & mask,))
        object.__setattr__(self, "data", data)

    @property
    def bit_size(self) -> int:
        """The length of the value in bits."""
        return (len(self.data) - 1) * 8 + self.bits

    def __repr__(self) -> str:
        return f"BitString({self.data!r}, {self.bits})"


@dataclass(frozen=True, slots=True, init=False)
class ExportFun:
    """An external fun ``fun Module:Function/Arity`` (EXPORT_EXT)."""

    module: Atom
    function: Atom
    arity: int

    def __init__(self, module: str, function: str, arity: int) -> None:
        _set = object.__setattr__
        _set(self, "module", module if type(module) is Atom else Atom(module))
        _set(self, "function", function if type(function) is Atom else Atom(function))
        _set(self, "arity", arity)

    def __repr__(self) -> str:
        return f"ExportFun({str(self.module)!r}, {str(self.function)!r}, {self.arity})"


@dataclass(frozen=True, slots=True)
class Fun:
    """A local fun (NEW_FUN_EXT), kept as inert data: it can be sent back to Erlang, never called."""

    arity: int
    uniq: bytes
    index: int
    module: Atom
    old_index: int
    old_uniq: int
    pid: Pid
    free_vars: tuple[Any, ...] = field(default=())

    def __hash__(self) -> int:
        return hash((self.module, self.index, self.uniq, self.arity))


class ExactFloat(float):
    """A float that is equal only to another ``ExactFloat`` with the same bits.

    Erlang's ``1``, ``1.0`` and ``true`` are three different map keys, but Python's ``1 == 1.0 ==
    True``. When a decoded map has keys that Python would merge, its keys are decoded in this
    strict form (floats as ``ExactFloat``, ``true``/``false`` as ``Atom``) so that no key is lost.
    It encodes like any float.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is ExactFloat and _F64.pack(self) == _F64.pack(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = float.__hash__

    def __repr__(self) -> str:
        return f"ExactFloat({float.__repr__(self)})"


class List(tuple[Any, ...]):
    """A hashable Erlang list, used where Python needs a hashable value (as in map keys).

    It encodes exactly like a ``list`` with the same elements and compares equal only to another
    ``List``.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, List) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((List, tuple(self)))

    def __repr__(self) -> str:
        return f"List({list(self)!r})"


class Map(Mapping[Any, Any]):
    """A hashable, immutable Erlang map that keeps its insertion order (for maps used as keys)."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> None:
        self._items: dict[Any, Any] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Map) and self._items == other._items

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((Map, frozenset(self._items.items())))
        return self._hash

    def __repr__(self) -> str:
        return f"Map({self._items!r})"
