"""``term_to_binary`` and ``binary_to_term``: the External Term Format with its 131 version byte.

``decode(data, offset)`` decodes one versioned term inside a larger buffer and returns where it
ends (the distribution layer decodes a control message and its payload from one frame this way);
``encode(term)`` is ``term_to_binary(term)`` without compression. ``decode_unversioned(data, offset)``
and ``encode_unversioned(term, parts)`` are the same without the version byte, for the terms that
follow a distribution header.

Limits (all raise ``DecodeError``): compressed terms may not declare more than ``max_decompressed``
bytes (default ``DEFAULT_MAX_DECOMPRESSED``, 64 MiB) and must inflate to exactly the declared size;
map keys may not nest deeper than ``MAX_KEY_DEPTH`` (1,000) levels, nor so deep that Python's own
hash or comparison of them recurses too far (equal-hash deep keys: a few hundred levels); maps of 256
or more keys whose hashes mostly collide are refused; ``decode(..., container_ratio=R)`` caps the
containers a term builds (one per R bytes, plus 2**20). Nesting elsewhere is limited only by memory:
decoding and encoding use an explicit stack, not recursion.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from philipjose.term import _accel
from philipjose.term._decode import MAX_KEY_DEPTH, UNLIMITED, container_budget, decode_loop
from philipjose.term._encode import encode_parts as _py_encode_parts
from philipjose.term.errors import DecodeError

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED",
    "MAX_KEY_DEPTH",
    "accelerated",
    "binary_to_term",
    "decode",
    "decode_unversioned",
    "encode",
    "encode_unversioned",
    "term_to_binary",
]

#: Default cap on the declared (and actual) size of a compressed term once inflated: 64 MiB.
DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024

_VERSION = b"\x83"
_COMPRESSED_HEAD = struct.Struct(">BBI")
_u32 = struct.Struct(">I").unpack_from

# The loops in use: the C accelerator's when it is built (see ``_accel``), else the Python ones.
_c: Any = None
_loop: Any = decode_loop


def _use_accelerator(enabled: bool) -> bool:
    """Switch the codec to the C accelerator (when built) or to the pure-Python reference; return
    whether the accelerator is now in use. For tests; ``PHILIPJOSE_PURE_TERM=1`` does it at import."""
    global _c, _loop
    _c = _accel.load() if enabled else None
    _loop = decode_loop if _c is None else _c.decode
    return _c is not None


def accelerated() -> bool:
    """True when the compiled accelerator (``philipjose.term._speedups``) codes terms, False when the
    pure-Python codec does (no compiler at install time, or ``PHILIPJOSE_PURE_TERM=1``)."""
    return _c is not None


_use_accelerator(True)


def decode_unversioned(buf: bytes, pos: int, containers: int = UNLIMITED) -> tuple[Any, int]:
    """Decode one term with no version byte at ``buf[pos]``; return it and the end offset.

    ``containers`` is the decode's container budget (see ``_decode.decode_body``). Raises
    ``DecodeError`` for anything but exactly one valid term starting at ``pos``.
    """
    try:
        return _loop(buf, pos, containers)  # type: ignore[no-any-return]
    except (IndexError, struct.error):
        raise DecodeError("truncated term: the input ends inside a term") from None
    except RecursionError:  # Python's own hash or == of a deep map key
        raise DecodeError("term nested too deeply for Python to hash or compare it") from None
    except MemoryError:
        raise DecodeError("term too large to decode in the memory available") from None


def encode_unversioned(term: Any, parts: list[bytes]) -> None:
    """Append the encoding of ``term``, with no version byte, to a list of byte strings."""
    if _c is not None:
        _c.encode(term, parts, False)
    else:
        _py_encode_parts(term, parts)


def _encode(term: Any) -> bytes:
    if _c is not None:
        return _c.encode(term, None, True)  # type: ignore[no-any-return]
    parts: list[bytes] = [_VERSION]
    _py_encode_parts(term, parts)
    return b"".join(parts)


def encode(term: Any) -> bytes:
    """Encode ``term`` with the 131 version byte and no compression (same as ``term_to_binary``)."""
    return _encode(term)


def term_to_binary(term: Any, *, compressed: bool | int = False) -> bytes:
    """Encode ``term`` as Erlang's ``term_to_binary(Term, [{minor_version, 2}])`` would.

    ``compressed`` is False (default), True (zlib level 6, Erlang's default) or a zlib level 0-9
    (0 means no compression). As in Erlang, the compressed form is used only when it is smaller:
    the zlib stream must fit in the uncompressed size minus 5 bytes.

    Raises ``EncodeError`` (a ``TypeError``) for a value with no Erlang form, naming its type, and
    ``ValueError`` for a compression level outside 0-9.
    """
    if compressed is False:
        return _encode(term)
    data = _encode(term)
    body = memoryview(data)[1:]
    level = 6 if compressed is True else compressed
    if type(level) is not int or not 0 <= level <= 9:
        raise ValueError(f"compressed must be a bool or a zlib level 0-9, not {compressed!r}")
    if level and len(body) > 5:
        packed = zlib.compress(body, level)
        if len(packed) <= len(body) - 5:
            return _COMPRESSED_HEAD.pack(131, 80, len(body)) + packed
    return data


def decode(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
    container_ratio: int = 0,
) -> tuple[Any, int]:
    """Decode one versioned term (starting with 131) at ``data[offset]``.

    Returns ``(term, end)`` where ``end`` is the offset just past the term in ``data``; bytes after
    it are not looked at. Raises ``DecodeError`` for anything else.

    ``container_ratio`` (0: no limit) bounds the memory the decode may take: the term may build at
    most one container (nil included) per ``container_ratio`` bytes of its encoding (of the bytes
    from ``offset`` on, or of the inflated body of a compressed term), plus 2**20 (``CONTAINER_FLOOR``).
    """
    if offset < 0:
        raise DecodeError(f"negative offset {offset}")
    if type(data) is bytes:
        buf = data
        base = 0
    else:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"expected bytes, bytearray or memoryview, not {type(data).__name__}")
        buf = bytes(memoryview(data)[offset:])
        base = offset
        offset = 0
    if not 0 <= offset < len(buf):
        raise DecodeError("no term at this offset: the input is empty or too short")
    if buf[offset] != 131:
        raise DecodeError(f"a term starts with version byte 131, not {buf[offset]}")
    if offset + 1 < len(buf) and buf[offset + 1] == 80:
        term, end = _decode_compressed(buf, offset + 2, max_decompressed, container_ratio)
    else:
        budget = container_budget(len(buf) - offset, container_ratio) if container_ratio else UNLIMITED
        term, end = decode_unversioned(buf, offset + 1, budget)
    return term, base + end


def _decode_compressed(buf: bytes, pos: int, max_decompressed: int, ratio: int) -> tuple[Any, int]:
    if pos + 4 > len(buf):
        raise DecodeError("truncated compressed term header")
    size = _u32(buf, pos)[0]
    if size > max_decompressed:
        raise DecodeError(f"compressed term declares {size} bytes, more than the {max_decompressed}-byte cap")
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(memoryview(buf)[pos + 4 :], size)
        if not inflater.eof and len(body) == size and inflater.decompress(inflater.unconsumed_tail, 1):
            raise DecodeError("compressed term inflates to more than its declared size")
    except zlib.error as exc:
        raise DecodeError(f"bad zlib data in compressed term: {exc}") from None
    if len(body) != size or not inflater.eof:
        raise DecodeError(
            f"compressed term declares {size} bytes but inflates to "
            f"{'at least ' if not inflater.eof else ''}{len(body)}"
        )
    term, used = decode_unversioned(body, 0, container_budget(size, ratio) if ratio else UNLIMITED)
    if used != size:
        raise DecodeError("compressed term holds bytes after its term")
    return term, len(buf) - len(inflater.unused_data)


def binary_to_term(
    data: bytes | bytearray | memoryview, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
) -> Any:
    """Decode ``data``, which must hold exactly one term with its 131 version byte.

    Accepts every tag OTP 25 produces plus compressed terms (tag 80) and the old atom, pid, port,
    reference and float tags. Raises ``DecodeError`` (a ``ValueError``) for malformed, truncated
    or oversized input and for bytes after the term (and for nothing else: no ``RecursionError``,
    ``MemoryError``, ``IndexError``, whatever the input); compressed terms may not inflate to more
    than ``max_decompressed`` bytes (default 64 MiB). See ``docs/terms.md`` for the mapping.
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"expected bytes, bytearray or memoryview, not {type(data).__name__}")
        data = bytes(data)
    if len(data) > 1 and data[0] == 131 and data[1] != 80:
        term, end = decode_unversioned(data, 1)
    else:
        term, end = decode(data, 0, max_decompressed=max_decompressed)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} bytes after the term")
    return term
