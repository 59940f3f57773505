"""Which implementation of the term codec's loops runs: the C accelerator or the Python reference.

``philipjose.term._speedups`` is an optional C extension built by ``pip install`` where a compiler
exists. When it imports (and ``PHILIPJOSE_PURE_TERM`` is not set to a non-empty value other than
``0`` at import time), :mod:`philipjose.term.codec` hands the decode and encode loops to it; the C
code calls back into the Python codec for the rare tags and types, so both give the same results.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from philipjose.term import _decode, _encode
from philipjose.term.errors import DecodeError, EncodeError
from philipjose.term.types import Atom, Pid, Reference

__all__ = ["load"]


def _encode_other(x: Any) -> bytes:
    """The whole encoding of ``x`` by the Python codec (for types the C encoder leaves to it)."""
    parts: list[bytes] = []
    _encode.encode_parts(x, parts)
    return b"".join(parts)


def _forced_pure() -> bool:
    return os.environ.get("PHILIPJOSE_PURE_TERM", "") not in ("", "0")


def load() -> ModuleType | None:
    """The set-up C module, or None when it is not built or the pure codec is forced."""
    if _forced_pure():
        return None
    try:
        from philipjose.term import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    module: ModuleType = _speedups
    module.setup(
        DecodeError,
        EncodeError,
        Atom,
        Pid,
        Reference,
        _decode._HANDLERS,
        _decode._utf8_atoms,
        _decode._latin1_atoms,
        _decode._new_atom,
        _decode._finish_list,
        _decode._finish_map,
        _decode._finish_fun,
        _decode._bad_tag,
        _encode._atom_cache,
        _encode._atom_bytes,
        _encode._big,
        _encode._is_byte_string,
        _encode._utf8,
        _encode._float,
        _encode_other,
    )
    return module
