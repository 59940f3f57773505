"""The term codec as the distribution layer uses it: versioned and unversioned terms inside a frame.

Terms in a pass-through frame start with their 131 version byte; terms after a distribution header
(normal or fragmented) do not. A term that does not decode is the peer's fault: :class:`ProtocolError`.
"""

from __future__ import annotations

from typing import Any

from philipjose.node.errors import ProtocolError
from philipjose.term import DecodeError, decode, encode
from philipjose.term.codec import decode_unversioned as decode_body
from philipjose.term.codec import encode_unversioned as encode_parts

__all__ = ["decode_term", "encode_parts", "encode_term"]


def decode_term(data: bytes, offset: int, versioned: bool) -> tuple[Any, int]:
    """Decode one term at ``data[offset]``; return it and the offset just past it."""
    try:
        if versioned:
            return decode(data, offset)
        return decode_body(data, offset)
    except DecodeError as exc:
        raise ProtocolError(f"undecodable term in a distribution message: {exc}") from exc


def encode_term(term: Any) -> bytes:
    """``term`` in the external format, with its 131 version byte (raises ``EncodeError``)."""
    return encode(term)
