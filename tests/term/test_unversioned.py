"""The unversioned codec the distribution layer uses for terms after a distribution header."""

from philipjose.term import Atom, term_to_binary
from philipjose.term.codec import decode_unversioned, encode_unversioned


def test_unversioned_round_trip_inside_a_buffer() -> None:
    term = (Atom("row"), 1, b"x" * 32, 2.5, [1, 2, 3])
    parts: list[bytes] = []
    encode_unversioned(term, parts)
    body = b"".join(parts)
    assert body == term_to_binary(term)[1:]
    buf = b"junk" + body + b"tail"
    assert decode_unversioned(buf, 4) == (term, 4 + len(body))
