"""Encoding Python values into the External Term Format, making the choices OTP 25 makes.

Theory of operation: the encoder walks the value with an explicit stack of iterators (one per open
container) instead of recursion, appending byte strings to a list that is joined once at the end.
A container writes its header, pushes an iterator over its elements and breaks out to the outer
loop, which resumes with the innermost iterator; an exhausted iterator is popped. A proper list
pushes an iterator over ``([],)`` under its elements so that its NIL tail is written after them;
an improper list pushes one over its tail. The common exact types (int, bytes, Atom, tuple, list,
float, str, dict, bool, None) are tested inline with ``type(x) is ...``; everything else (subclasses,
pids, ports, references, bitstrings, funs) goes to ``_encode_other``.

A parallel list holds the container being encoded at each level; every time the depth doubles past
1,000 it is checked for a container that contains itself, which raises ``EncodeError`` instead of
looping forever.

OTP's choices mirrored here: SMALL_INTEGER_EXT for 0..255, INTEGER_EXT for other 32-bit signed
integers, SMALL_BIG_EXT up to 255 magnitude bytes then LARGE_BIG_EXT; NEW_FLOAT_EXT; atoms as
SMALL_ATOM_UTF8_EXT when their UTF-8 form is under 256 bytes, else ATOM_UTF8_EXT; STRING_EXT for
non-empty lists of at most 65535 integers in 0..255; SMALL_TUPLE_EXT up to 255 elements; NEW_PID_EXT;
NEW_PORT_EXT for port numbers up to 2**28 - 1, else V4_PORT_EXT; NEWER_REFERENCE_EXT.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any

from philipjose.term.errors import EncodeError
from philipjose.term.types import (
    Atom,
    BitString,
    ExportFun,
    Fun,
    ImproperList,
    List,
    Map,
    Pid,
    Port,
    Reference,
)

__all__ = ["encode_parts"]

_CYCLE_CHECK_DEPTH = 1_000
_ATOM_CACHE_SIZE = 1 << 16
_MAX_V3_PORT = (1 << 28) - 1

_pack_bi = struct.Struct(">Bi").pack
_pack_bI = struct.Struct(">BI").pack
_pack_bH = struct.Struct(">BH").pack
_pack_bd = struct.Struct(">Bd").pack
_pack_bIB = struct.Struct(">BIB").pack
_pack_III = struct.Struct(">III").pack
_pack_II = struct.Struct(">II").pack
_pack_QI = struct.Struct(">QI").pack
_pack_I = struct.Struct(">I").pack
_pack_fun = struct.Struct(">BIB16sII").pack

_SMALL_INTS = [bytes((97, i)) for i in range(256)]
_SMALL_TUPLES = [bytes((104, i)) for i in range(256)]
_NIL = b"j"
_TRUE = b"w\x04true"
_FALSE = b"w\x05false"
_UNDEFINED = b"w\x09undefined"
_NIL_TAIL: tuple[list[Any]] = ([],)

_atom_cache: dict[Atom, bytes] = {}


def _atom_bytes(atom: str) -> bytes:
    """The encoding of an atom (cached for ``Atom`` values)."""
    cached: bytes | None = _atom_cache.get(atom)  # type: ignore[call-overload]
    if cached is not None:
        return cached
    text = str(atom)
    if len(text) > 255:
        raise EncodeError(f"atom of {len(text)} characters (Erlang allows 255)")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"atom text {text!r} cannot be UTF-8 encoded") from exc
    n = len(raw)
    encoded = bytes((119, n)) + raw if n < 256 else _pack_bH(118, n) + raw
    if type(atom) is Atom:
        if len(_atom_cache) >= _ATOM_CACHE_SIZE:
            _atom_cache.clear()
        _atom_cache[atom] = encoded
    return encoded


def _node_bytes(node: Any, what: str) -> bytes:
    if not isinstance(node, Atom):
        raise EncodeError(f"{what} node must be an Atom, not {type(node).__name__}")
    return _atom_bytes(node)


def _big(x: int) -> bytes:
    sign = 0
    if x < 0:
        sign = 1
        x = -x
    n = (x.bit_length() + 7) // 8
    digits = x.to_bytes(n, "little")
    if n < 256:
        return bytes((110, n, sign)) + digits
    if n > 0xFFFFFFFF:
        raise EncodeError("integer too large for LARGE_BIG_EXT")
    return _pack_bIB(111, n, sign) + digits


def _int(x: int) -> bytes:
    if 0 <= x <= 255:
        return _SMALL_INTS[x]
    if -2147483648 <= x <= 2147483647:
        return _pack_bi(98, x)
    return _big(x)


def _float(x: float) -> bytes:
    if x - x != 0.0:
        raise EncodeError(f"{x!r} has no Erlang form (Erlang floats are finite)")
    return _pack_bd(70, x)


def _is_byte_string(x: Any) -> bytes | None:
    """The bytes of a list that OTP would send as STRING_EXT (ints 0..255, 1 to 65535 long)."""
    if len(x) > 65535:
        return None
    try:
        data = bytes(x)
    except (TypeError, ValueError):
        return None
    types = set(map(type, x))
    if len(types) == 1 and int in types:
        return data
    if all(issubclass(t, int) and t is not bool for t in types):
        return data
    return None


def _binary(x: bytes | bytearray | memoryview) -> list[bytes]:
    data = bytes(x)
    if len(data) > 0xFFFFFFFF:
        raise EncodeError("binary longer than 4 GiB")
    return [_pack_bI(109, len(data)), data]


def _fun(x: Fun) -> bytes:
    if not isinstance(x.pid, Pid):
        raise EncodeError(f"Fun.pid must be a Pid, not {type(x.pid).__name__}")
    if type(x.uniq) is not bytes or len(x.uniq) != 16:
        raise EncodeError("Fun.uniq must be 16 bytes")
    rest: list[bytes] = [
        _node_bytes(x.module, "Fun module"),
        _int(x.old_index),
        _int(x.old_uniq),
        _pid(x.pid),
    ]
    try:
        for var in x.free_vars:
            encode_parts(var, rest)
    except RecursionError:
        raise EncodeError("funs nested too deeply inside each other's free variables") from None
    body = b"".join(rest)
    try:
        head = _pack_fun(112, 29 + len(body), x.arity, x.uniq, x.index, len(x.free_vars))
    except struct.error as exc:
        raise EncodeError(f"Fun field out of range: {exc}") from None
    return head + body


def _pid(x: Pid) -> bytes:
    try:
        return b"X" + _node_bytes(x.node, "Pid") + _pack_III(x.id, x.serial, x.creation)
    except struct.error:
        raise EncodeError(f"{x!r}: id, serial and creation must fit in 32 bits") from None


def _port(x: Port) -> bytes:
    node = _node_bytes(x.node, "Port")
    try:
        if 0 <= x.id <= _MAX_V3_PORT:
            return b"Y" + node + _pack_II(x.id, x.creation)
        return b"x" + node + _pack_QI(x.id, x.creation)
    except struct.error:
        raise EncodeError(f"{x!r}: id must fit in 64 bits and creation in 32") from None


def _reference(x: Reference) -> bytes:
    count = len(x.ids)
    if not 1 <= count <= 5:
        raise EncodeError(f"{x!r}: a reference has 1 to 5 id words")
    try:
        words = struct.pack(f">I{count}I", x.creation, *x.ids)
    except struct.error:
        raise EncodeError(f"{x!r}: creation and ids must fit in 32 bits") from None
    return _pack_bH(90, count) + _node_bytes(x.node, "Reference") + words


def _export(x: ExportFun) -> bytes:
    if type(x.arity) is not int or not 0 <= x.arity <= 255:
        raise EncodeError(f"{x!r}: arity must be 0 to 255")
    return (
        b"q"
        + _node_bytes(x.module, "ExportFun module")
        + _node_bytes(x.function, "ExportFun function")
        + _SMALL_INTS[x.arity]
    )


def _list_head(x: Any, append: Any) -> bool:
    """Write a non-empty list's encoding or header; return True when its elements must follow."""
    if type(x[0]) is int:
        data = _is_byte_string(x)
        if data is not None:
            append(_pack_bH(107, len(data)))
            append(data)
            return False
    append(_pack_bI(108, len(x)))
    return True


def _encode_other(x: Any, append: Any) -> list[Iterator[Any]] | None:
    """Encode a value of a less common type; return iterators to push for its elements, if any."""
    if isinstance(x, Atom):
        append(_atom_bytes(x))
    elif isinstance(x, bool):
        append(_TRUE if x else _FALSE)
    elif isinstance(x, int):
        append(_int(int(x)))
    elif isinstance(x, float):
        append(_float(float(x)))
    elif isinstance(x, (bytes, bytearray, memoryview)):
        for part in _binary(x):
            append(part)
    elif isinstance(x, str):
        for part in _binary(_utf8(x)):
            append(part)
    elif isinstance(x, Pid):
        append(_pid(x))
    elif isinstance(x, Reference):
        append(_reference(x))
    elif isinstance(x, Port):
        append(_port(x))
    elif isinstance(x, (List, list)):
        if not x:
            append(_NIL)
        elif _list_head(x, append):
            return [iter(_NIL_TAIL), iter(x)]
    elif isinstance(x, tuple):
        n = len(x)
        append(_SMALL_TUPLES[n] if n < 256 else _pack_bI(105, n))
        if n:
            return [iter(x)]
    elif isinstance(x, ImproperList):
        append(_pack_bI(108, len(x.elements)))
        return [iter((x.tail,)), iter(x.elements)]
    elif isinstance(x, (Map, Mapping)):
        append(_pack_bI(116, len(x)))
        if x:
            return [chain.from_iterable(x.items())]
    elif isinstance(x, BitString):
        append(_pack_bIB(77, len(x.data), x.bits))
        append(x.data)
    elif isinstance(x, ExportFun):
        append(_export(x))
    elif isinstance(x, Fun):
        append(_fun(x))
    else:
        raise EncodeError(f"cannot encode a value of type {type(x).__qualname__} as an Erlang term")
    return None


def _utf8(x: str) -> bytes:
    try:
        return x.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"str with unpaired surrogates cannot be UTF-8 encoded: {exc}") from None


def _check_cycles(path: list[Any]) -> None:
    ids = [id(node) for node in path if node is not None]
    if len(set(ids)) != len(ids):
        raise EncodeError("the value contains itself (a cycle has no Erlang form)")


def encode_parts(term: Any, parts: list[bytes]) -> None:
    """Append the encoding of ``term`` (no version byte) to ``parts`` as byte strings."""
    append = parts.append
    atoms = _atom_cache
    small_ints = _SMALL_INTS
    small_tuples = _SMALL_TUPLES
    pack_bI = _pack_bI
    stack: list[Iterator[Any]] = [iter((term,))]
    path: list[Any] = [None]
    check_at = _CYCLE_CHECK_DEPTH
    while stack:
        for x in stack[-1]:
            t = type(x)
            if t is int:
                if 0 <= x <= 255:
                    append(small_ints[x])
                elif -2147483648 <= x <= 2147483647:
                    append(_pack_bi(98, x))
                else:
                    append(_big(x))
            elif t is bytes:
                append(pack_bI(109, len(x)))
                append(x)
            elif t is Atom:
                encoded = atoms.get(x)
                append(encoded if encoded is not None else _atom_bytes(x))
            elif t is tuple:
                n = len(x)
                append(small_tuples[n] if n < 256 else pack_bI(105, n))
                if n:
                    stack.append(iter(x))
                    path.append(x)
                    break
            elif t is list:
                if not x:
                    append(_NIL)
                elif _list_head(x, append):
                    stack.append(iter(_NIL_TAIL))
                    stack.append(iter(x))
                    path.append(None)
                    path.append(x)
                    break
            elif t is float:
                if x - x != 0.0:
                    raise EncodeError(f"{x!r} has no Erlang form (Erlang floats are finite)")
                append(_pack_bd(70, x))
            elif t is str:
                data = _utf8(x)
                append(pack_bI(109, len(data)))
                append(data)
            elif t is dict:
                append(pack_bI(116, len(x)))
                if x:
                    stack.append(chain.from_iterable(x.items()))
                    path.append(x)
                    break
            elif t is bool:
                append(_TRUE if x else _FALSE)
            elif x is None:
                append(_UNDEFINED)
            else:
                pushed = _encode_other(x, append)
                if pushed:
                    stack.extend(pushed)
                    if len(pushed) == 2:
                        path.append(None)
                    path.append(x)
                    break
        else:
            stack.pop()
            path.pop()
            continue
        if len(stack) > check_at:
            _check_cycles(path)
            check_at *= 2
