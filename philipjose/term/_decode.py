"""Decoding the External Term Format (the body after the 131 version byte).

Theory of operation: one loop walks the bytes with an explicit stack instead of recursion, so a
100,000-deep tuple decodes like a flat one (Python itself may still recurse when it hashes or
compares deep map keys; ``decode_body`` turns that RecursionError into ``DecodeError``). Each iteration
reads one tag. Scalars that dominate real traffic (small integers, integers, binaries, UTF-8
atoms, floats, strings, nil) are decoded inline in the loop; containers (tuples, lists, maps and
local funs) push a frame holding the items collected so far and how many are still to come; the
rarer scalar tags go through a 256-entry dispatch table of small functions. A finished value is
appended to the frame on top; when a frame is full it is turned into its Python value and handed
to the frame below, until the root frame receives the whole term.

Every length read off the wire is checked against the bytes that remain before anything is built
(each element of a container takes at least one byte, so a count larger than the rest of the input
is refused at once). Reading past the end surfaces as IndexError or struct.error inside the loop
and is turned into ``DecodeError`` at the boundary.

Memory: the loop counts the containers it builds against a budget (``containers``; unlimited
unless the caller gives one, as the distribution layer does: see :func:`container_budget`), since
a container costs Python 56-100 bytes where its encoding may take one byte (nil). Every other
value costs at most about 8 times its encoding. Threads: no single C call inside a decode works on
more than about a million elements (runs of integers are taken ``_RUN_MAX`` at a time, large maps
are built ``_MAP_CHUNK`` keys at a time), so a decode running in a worker thread gives the GIL up
regularly and the thread running the event loop keeps its latency.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import Any

from philipjose.term.errors import DecodeError
from philipjose.term.types import (
    Atom,
    BitString,
    ExactFloat,
    ExportFun,
    Fun,
    ImproperList,
    List,
    Map,
    Pid,
    Port,
    Reference,
)

__all__ = ["MAX_KEY_DEPTH", "UNLIMITED", "container_budget", "decode_body", "decode_loop"]

#: Map keys nested deeper than this are refused: hashing them would overflow the C stack, and
#: hashing nested keys (tuples do not cache their hash) costs the square of their depth.
MAX_KEY_DEPTH = 1_000
#: Maps with at least this many keys are checked for keys whose hashes collide (a CPU attack:
#: inserting k keys with one hash into a dict costs k**2 comparisons).
_HASH_CHECK_MIN_KEYS = 256
#: At most this many decoded atoms are kept in the decoding cache (it is cleared when full).
_ATOM_CACHE_SIZE = 1 << 16
#: References carry 1 to this many 32-bit words.
_MAX_REF_WORDS = 5

#: A run of at least this many same-tag integers inside a list or tuple is decoded in one go.
_RUN_MIN = 8
#: The first probe for such a run looks this many elements ahead (then doubles).
_RUN_PROBE = 64
#: A run is taken at most this many elements at a time (one C call each: the GIL is let go between).
_RUN_MAX = 1 << 20
#: Maps with more keys than this are built this many keys at a time (see ``_finish_map``).
_MAP_CHUNK = 1 << 16

#: No container budget: what ``decode_loop`` uses unless told otherwise.
UNLIMITED = sys.maxsize

_u16 = struct.Struct(">H").unpack_from
_u32 = struct.Struct(">I").unpack_from
_i32 = struct.Struct(">i").unpack_from
_u64 = struct.Struct(">Q").unpack_from
_f64 = struct.Struct(">d").unpack_from
_u32x2 = struct.Struct(">II").unpack_from
_u32x3 = struct.Struct(">III").unpack_from
_fun_head = struct.Struct(">IB16sII").unpack_from

# Frame kinds.
_ROOT = 0
_TUPLE = 1
_LIST = 2
_MAP = 3
_FUN = 4

_TRUE = Atom("true")
_FALSE = Atom("false")

# Decoded atoms by their raw bytes, one cache per text encoding. Values are True, False or an Atom.
_utf8_atoms: dict[bytes, Any] = {}
_latin1_atoms: dict[bytes, Any] = {}


def _truncated() -> DecodeError:
    return DecodeError("truncated term: the input ends inside a term")


def _new_atom(raw: bytes, encoding: str, cache: dict[bytes, Any]) -> Any:
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"atom text is not valid {encoding}") from exc
    if len(text) > 255:
        raise DecodeError(f"atom of {len(text)} characters (the limit is 255)")
    value: Any = True if text == "true" else False if text == "false" else Atom(text)
    if len(cache) >= _ATOM_CACHE_SIZE:
        cache.clear()
    cache[raw] = value
    return value


def _atom_term(buf: bytes, pos: int) -> tuple[Any, int]:
    """Decode any of the four atom tags at ``pos`` into True, False or an Atom."""
    tag = buf[pos]
    if tag == 119 or tag == 115:  # SMALL_ATOM_UTF8_EXT, SMALL_ATOM_EXT
        n = buf[pos + 1]
        pos += 2
    elif tag == 118 or tag == 100:  # ATOM_UTF8_EXT, ATOM_EXT
        n = _u16(buf, pos + 1)[0]
        pos += 3
    else:
        raise DecodeError(f"expected an atom, found tag {tag}")
    end = pos + n
    if end > len(buf):
        raise _truncated()
    raw = buf[pos:end]
    if tag >= 118:
        value = _utf8_atoms.get(raw)
        if value is None:
            value = _new_atom(raw, "utf-8", _utf8_atoms)
    else:
        value = _latin1_atoms.get(raw)
        if value is None:
            value = _new_atom(raw, "latin-1", _latin1_atoms)
    return value, end


def _atom(buf: bytes, pos: int) -> tuple[Atom, int]:
    """Decode an atom that must stay an Atom (node names, modules, functions)."""
    value, pos = _atom_term(buf, pos)
    if value is True:
        return _TRUE, pos
    if value is False:
        return _FALSE, pos
    return value, pos


def _small_int(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode SMALL_INTEGER_EXT or INTEGER_EXT (the only integer forms inside funs)."""
    tag = buf[pos]
    if tag == 97:
        return buf[pos + 1], pos + 2
    if tag == 98:
        return _i32(buf, pos + 1)[0], pos + 5
    raise DecodeError(f"expected a small integer, found tag {tag}")


# --- scalar tags outside the hot path: (buf, pos at tag) -> (value, pos after) ---------------


def _float_ext(buf: bytes, pos: int) -> tuple[float, int]:
    raw = buf[pos + 1 : pos + 32]
    if len(raw) != 31:
        raise _truncated()
    try:
        value = float(raw.split(b"\0", 1)[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError("FLOAT_EXT does not hold a decimal float") from exc
    if value - value != 0.0:
        raise DecodeError("NaN and infinities are not Erlang floats")
    return value, pos + 32


def _big(buf: bytes, pos: int, n: int) -> tuple[int, int]:
    sign = buf[pos]
    end = pos + 1 + n
    if end > len(buf):
        raise _truncated()
    if sign > 1:
        raise DecodeError(f"bignum sign byte {sign}")
    value = int.from_bytes(buf[pos + 1 : end], "little")
    return (-value if sign else value), end


def _small_big_ext(buf: bytes, pos: int) -> tuple[int, int]:
    return _big(buf, pos + 2, buf[pos + 1])


def _large_big_ext(buf: bytes, pos: int) -> tuple[int, int]:
    return _big(buf, pos + 5, _u32(buf, pos + 1)[0])


def _bit_binary_ext(buf: bytes, pos: int) -> tuple[Any, int]:
    n = _u32(buf, pos + 1)[0]
    bits = buf[pos + 5]
    start = pos + 6
    end = start + n
    if end > len(buf):
        raise _truncated()
    if n == 0:
        if bits != 0:
            raise DecodeError("empty BIT_BINARY_EXT with a non-zero bit count")
        return b"", end
    if not 1 <= bits <= 8:
        raise DecodeError(f"BIT_BINARY_EXT with {bits} bits in its last byte")
    data = buf[start:end]
    if bits == 8:
        return data, end
    return BitString(data, bits), end


def _new_pid_ext(buf: bytes, pos: int) -> tuple[Pid, int]:
    node, pos = _atom(buf, pos + 1)
    id_, serial, creation = _u32x3(buf, pos)
    return Pid(node, id_, serial, creation), pos + 12


def _pid_ext(buf: bytes, pos: int) -> tuple[Pid, int]:
    node, pos = _atom(buf, pos + 1)
    id_, serial = _u32x2(buf, pos)
    return Pid(node, id_, serial, buf[pos + 8]), pos + 9


def _new_port_ext(buf: bytes, pos: int) -> tuple[Port, int]:
    node, pos = _atom(buf, pos + 1)
    id_, creation = _u32x2(buf, pos)
    return Port(node, id_, creation), pos + 8


def _v4_port_ext(buf: bytes, pos: int) -> tuple[Port, int]:
    node, pos = _atom(buf, pos + 1)
    id_ = _u64(buf, pos)[0]
    return Port(node, id_, _u32(buf, pos + 8)[0]), pos + 12


def _port_ext(buf: bytes, pos: int) -> tuple[Port, int]:
    node, pos = _atom(buf, pos + 1)
    id_ = _u32(buf, pos)[0]
    return Port(node, id_, buf[pos + 4]), pos + 5


def _ref_words(buf: bytes, pos: int, count: int) -> tuple[int, ...]:
    if not 1 <= count <= _MAX_REF_WORDS:
        raise DecodeError(f"reference with {count} id words (1 to {_MAX_REF_WORDS} allowed)")
    return struct.unpack_from(f">{count}I", buf, pos)


def _newer_reference_ext(buf: bytes, pos: int) -> tuple[Reference, int]:
    count = _u16(buf, pos + 1)[0]
    node, pos = _atom(buf, pos + 3)
    creation = _u32(buf, pos)[0]
    ids = _ref_words(buf, pos + 4, count)
    return Reference(node, creation, ids), pos + 4 + 4 * count


def _new_reference_ext(buf: bytes, pos: int) -> tuple[Reference, int]:
    count = _u16(buf, pos + 1)[0]
    node, pos = _atom(buf, pos + 3)
    creation = buf[pos]
    ids = _ref_words(buf, pos + 1, count)
    return Reference(node, creation, ids), pos + 1 + 4 * count


def _reference_ext(buf: bytes, pos: int) -> tuple[Reference, int]:
    node, pos = _atom(buf, pos + 1)
    id_ = _u32(buf, pos)[0]
    return Reference(node, buf[pos + 4], (id_,)), pos + 5


def _export_ext(buf: bytes, pos: int) -> tuple[ExportFun, int]:
    module, pos = _atom(buf, pos + 1)
    function, pos = _atom(buf, pos)
    arity, pos = _small_int(buf, pos)
    if arity > 255:
        raise DecodeError(f"export fun of arity {arity}")
    return ExportFun(module, function, arity), pos


def _atom_tag(buf: bytes, pos: int) -> tuple[Any, int]:
    return _atom_term(buf, pos)


_Handler = Callable[[bytes, int], tuple[Any, int]]
_HANDLERS: list[_Handler | None] = [None] * 256
for _tag, _fn in (
    (99, _float_ext),
    (100, _atom_tag),
    (115, _atom_tag),
    (118, _atom_tag),
    (119, _atom_tag),
    (110, _small_big_ext),
    (111, _large_big_ext),
    (77, _bit_binary_ext),
    (88, _new_pid_ext),
    (103, _pid_ext),
    (89, _new_port_ext),
    (120, _v4_port_ext),
    (102, _port_ext),
    (90, _newer_reference_ext),
    (114, _new_reference_ext),
    (101, _reference_ext),
    (113, _export_ext),
):
    _HANDLERS[_tag] = _fn

_TAG_NAMES = {
    80: "a compressed term (tag 80) is only allowed right after the version byte",
    82: "ATOM_CACHE_REF needs a distribution header's atom cache",
    117: "FUN_EXT (removed from Erlang in OTP 23)",
    121: "LOCAL_EXT",
    131: "a version byte inside a term",
}


def _bad_tag(tag: int) -> DecodeError:
    what = _TAG_NAMES.get(tag)
    if what is not None:
        return DecodeError(f"unsupported tag {tag}: {what}")
    return DecodeError(f"unknown tag {tag}")


# --- runs of integers ----------------------------------------------------------------------


def _run_length(buf: bytes, pos: int, limit: int, stride: int, tag: bytes) -> int:
    """How many elements of ``stride`` bytes starting at ``pos`` carry ``tag`` (at most ``limit``).

    Probes 64 elements, then doubles, so the work is proportional to the run found.
    """
    run = 0
    probe = _RUN_PROBE
    while run < limit:
        count = min(probe, limit - run)
        start = pos + run * stride
        tags = buf[start : start + count * stride : stride]
        found = len(tags) - len(tags.lstrip(tag))
        run += found
        if found < count:
            break
        probe *= 2
    return run


def _integer_run(buf: bytes, pos: int, count: int) -> list[int]:
    """The values of ``count`` consecutive INTEGER_EXT elements at ``pos``, gathered in C."""
    stop = pos + 5 * count
    if stop > len(buf):
        raise _truncated()
    out = bytearray(4 * count)
    if _LITTLE:
        out[3::4] = buf[pos + 1 : stop : 5]
        out[2::4] = buf[pos + 2 : stop : 5]
        out[1::4] = buf[pos + 3 : stop : 5]
        out[0::4] = buf[pos + 4 : stop : 5]
    else:  # pragma: no cover - big-endian hosts
        for i in range(4):
            out[i::4] = buf[pos + 1 + i : stop : 5]
    return memoryview(out).cast("i").tolist()


_LITTLE = sys.byteorder == "little"


# --- containers ---------------------------------------------------------------------------


def _finish_list(items: list[Any]) -> Any:
    tail = items.pop()
    if type(tail) is list:
        # NIL (or, from a non-OTP encoder, a list tail): the whole thing is a proper list.
        if tail:
            items.extend(tail)
        return items
    if not items:
        return tail
    if type(tail) is ImproperList:
        items.extend(tail.elements)
        tail = tail.tail
    return ImproperList(tuple(items), tail)


def _finish_map(items: list[Any], depth_checked: bool) -> dict[Any, Any]:
    keys = items[0::2]
    values = items[1::2]
    n = len(keys)
    if not depth_checked:
        for key in keys:
            if _depth(key) > MAX_KEY_DEPTH:
                raise DecodeError(f"map key nested deeper than {MAX_KEY_DEPTH} levels")
    try:
        if n >= _HASH_CHECK_MIN_KEYS and _distinct_hashes(keys) * 2 < n:
            raise DecodeError("map keys with colliding hashes")
        result = _dict(keys, values)
    except TypeError:
        keys = [_rebuild(key, _same) for key in keys]
        if n >= _HASH_CHECK_MIN_KEYS and _distinct_hashes(keys) * 2 < n:
            raise DecodeError("map keys with colliding hashes") from None
        result = _dict(keys, values)
    if len(result) != n:
        # Keys Erlang tells apart but Python merges (1, 1.0, true): decode them strictly.
        keys = [_rebuild(key, _strict) for key in keys]
        result = _dict(keys, values)
        if len(result) != n:
            raise DecodeError("map with duplicate keys")
    return result


def _dict(keys: list[Any], values: list[Any]) -> dict[Any, Any]:
    """``dict(zip(keys, values))``; a large one is built ``_MAP_CHUNK`` keys per C call, so that a
    decode in a worker thread lets other threads have the GIL in between."""
    n = len(keys)
    if n <= _MAP_CHUNK:
        return dict(zip(keys, values, strict=True))
    result: dict[Any, Any] = {}
    for start in range(0, n, _MAP_CHUNK):
        stop = start + _MAP_CHUNK
        result.update(zip(keys[start:stop], values[start:stop], strict=True))
    return result


def _distinct_hashes(keys: list[Any]) -> int:
    """How many distinct hashes ``keys`` have (chunked like ``_dict``)."""
    if len(keys) <= _MAP_CHUNK:
        return len(set(map(hash, keys)))
    hashes: set[int] = set()
    for start in range(0, len(keys), _MAP_CHUNK):
        hashes.update(map(hash, keys[start : start + _MAP_CHUNK]))
    return len(hashes)


def _finish_fun(items: list[Any], extra: tuple[Any, ...], pos: int) -> Fun:
    start, size, arity, uniq, index, module = extra
    if pos - start != size:
        raise DecodeError(f"NEW_FUN_EXT size field says {size} bytes, the fun took {pos - start}")
    old_index, old_uniq, pid = items[0], items[1], items[2]
    if type(old_index) is not int or type(old_uniq) is not int or type(pid) is not Pid:
        raise DecodeError("NEW_FUN_EXT with a malformed old index, old uniq or pid")
    return Fun(arity, uniq, index, module, old_index, old_uniq, pid, tuple(items[3:]))


def _same(value: Any) -> Any:
    return value


def _strict(value: Any) -> Any:
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if type(value) is float:
        return ExactFloat(value)
    return value


def _children(node: Any) -> list[Any] | None:
    t = type(node)
    if t is tuple or t is list or t is List:
        return list(node)
    if t is dict or t is Map:
        flat: list[Any] = []
        for k, v in node.items():
            flat.append(k)
            flat.append(v)
        return flat
    if t is ImproperList:
        return [*node.elements, node.tail]
    return None


def _rebuild(root: Any, leaf: Callable[[Any], Any]) -> Any:
    """A hashable copy of a decoded term: lists become ``List``, maps ``Map``; ``leaf`` maps scalars.

    Iterative (post-order with an explicit stack), so deep keys cannot raise RecursionError.
    """
    done: list[Any] = []
    work: list[tuple[Any, list[Any] | None]] = [(root, None)]
    while work:
        node, kids = work.pop()
        if kids is None:
            kids = _children(node)
            if kids is None:
                done.append(leaf(node))
                continue
            work.append((node, kids))
            work.extend((kid, None) for kid in reversed(kids))
            continue
        n = len(kids)
        built = done[len(done) - n :] if n else []
        del done[len(done) - n :]
        t = type(node)
        if t is tuple:
            done.append(tuple(built))
        elif t is list or t is List:
            done.append(List(built))
        elif t is dict or t is Map:
            done.append(Map(zip(built[0::2], built[1::2], strict=True)))
        else:
            done.append(ImproperList(tuple(built[:-1]), built[-1]))
    return done[0]


def _depth(root: Any) -> int:
    """Nesting depth of a decoded term, computed without recursion."""
    deepest = 0
    work = [(root, 1)]
    while work:
        node, level = work.pop()
        kids = _children(node)
        if kids:
            if level + 1 > deepest:
                deepest = level + 1
            work.extend((kid, level + 1) for kid in kids)
        elif level > deepest:
            deepest = level
    return deepest


# --- the loop ----


def _fill(buf: bytes, pos: int, items: list[Any], count: int) -> int:
    """Decode up to ``count`` leading scalar elements of a container into ``items``.

    The fast path for a container just opened: small integers, integers, binaries, UTF-8 atoms,
    floats and strings are decoded in this tight loop (runs of integers in C), the other scalars
    (pids, references, ...) through the dispatch table; it stops at the first container, nil or bad
    tag and returns the offset reached, leaving that element and the rest to the main loop (which
    counts every container it builds, nil included, against the decode's container budget).
    """
    append = items.append
    end = len(buf)
    handlers = _HANDLERS
    utf8_atoms = _utf8_atoms
    i32 = _i32
    u32 = _u32
    while count:
        tag = buf[pos]
        if tag == 97:  # SMALL_INTEGER_EXT
            if count > _RUN_MIN and buf[pos + 2] == 97:
                run = _run_length(buf, pos, min(count, _RUN_MAX), 2, b"a")
                if run >= _RUN_MIN:
                    items += buf[pos + 1 : pos + 2 * run : 2]
                    count -= run
                    pos += 2 * run
                    continue
            append(buf[pos + 1])
            pos += 2
        elif tag == 109:  # BINARY_EXT
            n = u32(buf, pos + 1)[0]
            pos += 5
            if n > end - pos:
                raise _truncated()
            append(buf[pos : pos + n])
            pos += n
        elif tag == 98:  # INTEGER_EXT
            if count > _RUN_MIN and buf[pos + 5] == 98:
                run = _run_length(buf, pos, min(count, _RUN_MAX), 5, b"b")
                if run >= _RUN_MIN:
                    items += _integer_run(buf, pos, run)
                    count -= run
                    pos += 5 * run
                    continue
            append(i32(buf, pos + 1)[0])
            pos += 5
        elif tag == 119:  # SMALL_ATOM_UTF8_EXT
            n = pos + 2 + buf[pos + 1]
            if n > end:
                raise _truncated()
            raw = buf[pos + 2 : n]
            value = utf8_atoms.get(raw)
            if value is None:
                value = _new_atom(raw, "utf-8", utf8_atoms)
            append(value)
            pos = n
        elif tag == 70:  # NEW_FLOAT_EXT
            value = _f64(buf, pos + 1)[0]
            if value - value != 0.0:
                raise DecodeError("NaN and infinities are not Erlang floats")
            append(value)
            pos += 9
        elif tag == 107:  # STRING_EXT
            n = _u16(buf, pos + 1)[0]
            pos += 3
            if n > end - pos:
                raise _truncated()
            append(list(buf[pos : pos + n]))
            pos += n
        else:
            handler = handlers[tag]
            if handler is None:  # a container, nil (or a bad tag): the main loop takes it from here
                break
            value, pos = handler(buf, pos)  # pids, references, other atoms, bignums, ...
            append(value)
        count -= 1
    return pos


def decode_body(buf: bytes, pos: int, containers: int = UNLIMITED) -> tuple[Any, int]:
    """Decode one term (no version byte) starting at ``buf[pos]``; return it and the end offset.

    ``containers`` is the decode's budget: how many containers (tuples, lists, maps and funs with
    at least one element, nil and the empty map; not the empty tuple, which Python shares, nor
    strings, which take at least 3 bytes each) it may build before it gives up with ``DecodeError``.
    A Python container costs 56 to 100 bytes where its encoding may take one (nil), so this bounds
    the memory a decode can take; see :func:`container_budget`.

    Raises ``DecodeError`` for anything that is not exactly one valid term starting at ``pos``
    (bytes after the term are left alone and the offset tells where they start), also when a map
    key is too deep for Python to hash or compare (RecursionError inside the interpreter) or when
    memory runs out.
    """
    try:
        return decode_loop(buf, pos, containers)
    except (IndexError, struct.error):
        raise _truncated() from None
    except RecursionError:
        raise DecodeError("term nested too deeply for Python to hash or compare it") from None
    except MemoryError:
        raise DecodeError("term too large to decode in the memory available") from None


CONTAINER_FLOOR = 1 << 20
"""Containers any budgeted term may build whatever its size (about 64 MB of Python lists at most):
ordinary data such as a list of 100,000 empty Erlang strings (``[]``, one byte each) stays within
budget; only terms of millions of one-byte containers meet the ratio."""


def container_budget(size: int, ratio: int) -> int:
    """The container budget of a term encoded in ``size`` bytes: one per ``ratio`` bytes, plus
    :data:`CONTAINER_FLOOR`."""
    return size // ratio + CONTAINER_FLOOR


def _too_many(containers: int) -> DecodeError:
    return DecodeError(f"term builds more than {containers} containers (its container budget)")


def decode_loop(buf: bytes, pos: int, containers: int = UNLIMITED) -> tuple[Any, int]:
    """``decode_body`` without the error translation: may raise IndexError, struct.error,
    RecursionError or MemoryError."""
    end = len(buf)
    u32 = _u32
    i32 = _i32
    f64 = _f64
    handlers = _HANDLERS
    utf8_atoms = _utf8_atoms
    fill = _fill
    vals: list[Any]
    stack: list[tuple[int, list[Any], int, Any]] = []
    kind = _ROOT
    items: list[Any] = []
    left = 1
    extra: Any = None
    peak = 0
    budget = containers
    value: Any
    while True:
        tag = buf[pos]
        if tag == 97:  # SMALL_INTEGER_EXT
            if left > _RUN_MIN and kind != _MAP and buf[pos + 2] == 97:
                run = _run_length(buf, pos, min(left - 1, _RUN_MAX), 2, b"a")
                if run >= _RUN_MIN:
                    items += buf[pos + 1 : pos + 2 * run : 2]
                    left -= run
                    pos += 2 * run
                    continue
            value = buf[pos + 1]
            pos += 2
        elif tag == 109:  # BINARY_EXT
            n = u32(buf, pos + 1)[0]
            pos += 5
            if n > end - pos:
                raise _truncated()
            value = buf[pos : pos + n]
            pos += n
        elif tag == 98:  # INTEGER_EXT
            if left > _RUN_MIN and kind != _MAP and buf[pos + 5] == 98:
                run = _run_length(buf, pos, min(left - 1, _RUN_MAX), 5, b"b")
                if run >= _RUN_MIN:
                    items += _integer_run(buf, pos, run)
                    left -= run
                    pos += 5 * run
                    continue
            value = i32(buf, pos + 1)[0]
            pos += 5
        elif tag == 119:  # SMALL_ATOM_UTF8_EXT
            n = pos + 2 + buf[pos + 1]
            if n > end:
                raise _truncated()
            raw = buf[pos + 2 : n]
            value = utf8_atoms.get(raw)
            if value is None:
                value = _new_atom(raw, "utf-8", utf8_atoms)
            pos = n
        elif tag == 104:  # SMALL_TUPLE_EXT
            n = buf[pos + 1]
            pos += 2
            if n:
                if n > end - pos:
                    raise _truncated()
                budget -= 1
                if budget < 0:
                    raise _too_many(containers)
                vals = []
                pos = fill(buf, pos, vals, n)
                if len(vals) == n:
                    value = tuple(vals)
                else:
                    stack.append((kind, items, left, extra))
                    if len(stack) > peak:
                        peak = len(stack)
                    kind = _TUPLE
                    items = vals
                    left = n - len(vals)
                    continue
            else:
                value = ()
        elif tag == 107:  # STRING_EXT
            n = _u16(buf, pos + 1)[0]
            pos += 3
            if n > end - pos:
                raise _truncated()
            value = list(buf[pos : pos + n])
            pos += n
        elif tag == 106:  # NIL_EXT
            budget -= 1
            if budget < 0:
                raise _too_many(containers)
            value = []
            pos += 1
        elif tag == 108:  # LIST_EXT: n elements, then the tail
            n = u32(buf, pos + 1)[0]
            pos += 5
            if n >= end - pos:
                raise _truncated()
            budget -= 1
            if budget < 0:
                raise _too_many(containers)
            vals = []
            pos = fill(buf, pos, vals, n + 1)
            if len(vals) == n + 1:
                value = _finish_list(vals)
            else:
                stack.append((kind, items, left, extra))
                if len(stack) > peak:
                    peak = len(stack)
                kind = _LIST
                items = vals
                left = n + 1 - len(vals)
                continue
        elif tag == 70:  # NEW_FLOAT_EXT
            value = f64(buf, pos + 1)[0]
            if value - value != 0.0:
                raise DecodeError("NaN and infinities are not Erlang floats")
            pos += 9
        elif tag == 116:  # MAP_EXT
            n = u32(buf, pos + 1)[0]
            pos += 5
            budget -= 1
            if budget < 0:
                raise _too_many(containers)
            if n:
                if 2 * n > end - pos:
                    raise _truncated()
                vals = []
                pos = fill(buf, pos, vals, 2 * n)
                if len(vals) == 2 * n:
                    value = _finish_map(vals, True)  # filled: its keys are scalars
                else:
                    stack.append((kind, items, left, extra))
                    if len(stack) > peak:
                        peak = len(stack)
                    kind = _MAP
                    items = vals
                    left = 2 * n - len(vals)
                    continue
            else:
                value = {}
        elif tag == 105:  # LARGE_TUPLE_EXT
            n = u32(buf, pos + 1)[0]
            pos += 5
            if n:
                if n > end - pos:
                    raise _truncated()
                budget -= 1
                if budget < 0:
                    raise _too_many(containers)
                vals = []
                pos = fill(buf, pos, vals, n)
                if len(vals) == n:
                    value = tuple(vals)
                else:
                    stack.append((kind, items, left, extra))
                    if len(stack) > peak:
                        peak = len(stack)
                    kind = _TUPLE
                    items = vals
                    left = n - len(vals)
                    continue
            else:
                value = ()
        elif tag == 112:  # NEW_FUN_EXT
            size, arity, uniq, index, num_free = _fun_head(buf, pos + 1)
            start = pos + 1
            if size > end - start:
                raise _truncated()
            module, pos = _atom(buf, pos + 30)
            if num_free > end - pos:
                raise _truncated()
            budget -= 1
            if budget < 0:
                raise _too_many(containers)
            stack.append((kind, items, left, extra))
            if len(stack) > peak:
                peak = len(stack)
            kind = _FUN
            items = []
            left = 3 + num_free
            extra = (start, size, arity, uniq, index, module)
            continue
        else:
            handler = handlers[tag]
            if handler is None:
                raise _bad_tag(tag)
            value, pos = handler(buf, pos)
        # Hand the value to the frame on top; close every frame this value completes.
        while True:
            items.append(value)
            left -= 1
            if left:
                break
            if kind == _TUPLE:
                value = tuple(items)
            elif kind == _LIST:
                value = _finish_list(items)
            elif kind == _MAP:
                # No key can be deeper than the deepest level reached above this map's level.
                value = _finish_map(items, peak - len(stack) < MAX_KEY_DEPTH)
            elif kind == _FUN:
                value = _finish_fun(items, extra, pos)
            else:
                return items[0], pos
            kind, items, left, extra = stack.pop()
