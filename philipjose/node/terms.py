"""The term codec as the distribution layer uses it: versioned and unversioned terms inside a frame.

Terms in a pass-through frame start with their 131 version byte; terms after a distribution header
(normal or fragmented) do not. A term that does not decode is the peer's fault: :class:`ProtocolError`.

Limits on what a peer's term may cost (both raise :class:`ProtocolError`): a term may build at most
one container (tuple, list, map, fun; nil counts) per ``CONTAINER_RATIO`` (3) bytes of the frame it
came in, plus about a million (``CONTAINER_FLOOR``), so a 10 MB frame of ten million empty lists is
refused once it has built about 4.4 million of them (some 350 MB) instead of taking 800 MB, while a
list of 100,000 empty Erlang strings is taken as OTP takes it; a compressed term (``131 80``, possible
only in pass-through frames) may declare and inflate to at most ``MAX_INFLATED`` (8 MiB) bytes,
and its containers are counted against its inflated size.
"""

from __future__ import annotations

from typing import Any, Final

from philipjose.node.errors import ProtocolError
from philipjose.term import DecodeError, decode, encode
from philipjose.term._decode import container_budget
from philipjose.term.codec import decode_unversioned as decode_body
from philipjose.term.codec import encode_unversioned as encode_parts

__all__ = ["CONTAINER_RATIO", "MAX_INFLATED", "decode_term", "encode_parts", "encode_term"]

#: A peer's term may build one container per this many bytes of its frame (plus ``CONTAINER_FLOOR``).
CONTAINER_RATIO: Final = 3
#: A compressed term from a peer may inflate to at most this many bytes.
MAX_INFLATED: Final = 8 * 1024 * 1024


def decode_term(data: bytes, offset: int, versioned: bool) -> tuple[Any, int]:
    """Decode one term at ``data[offset]``; return it and the offset just past it."""
    try:
        if versioned:
            return decode(data, offset, max_decompressed=MAX_INFLATED, container_ratio=CONTAINER_RATIO)
        return decode_body(data, offset, container_budget(len(data), CONTAINER_RATIO))
    except DecodeError as exc:
        raise ProtocolError(f"undecodable term in a distribution message: {exc}") from exc


def encode_term(term: Any) -> bytes:
    """``term`` in the external format, with its 131 version byte (raises ``EncodeError``)."""
    return encode(term)
