"""The Erlang External Term Format: ``term_to_binary`` / ``binary_to_term`` and Erlang's data types.

Pure code, no I/O. See ``docs/terms.md`` for the Python <-> Erlang mapping table and the limits.
"""

from philipjose.term.codec import (
    DEFAULT_MAX_DECOMPRESSED,
    MAX_KEY_DEPTH,
    accelerated,
    binary_to_term,
    decode,
    encode,
    term_to_binary,
)
from philipjose.term.errors import DecodeError, EncodeError, TermError
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

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED",
    "MAX_KEY_DEPTH",
    "Atom",
    "BitString",
    "DecodeError",
    "EncodeError",
    "ExactFloat",
    "ExportFun",
    "Fun",
    "ImproperList",
    "List",
    "Map",
    "Pid",
    "Port",
    "Reference",
    "TermError",
    "accelerated",
    "binary_to_term",
    "decode",
    "encode",
    "term_to_binary",
]
