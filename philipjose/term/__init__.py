"""The Erlang External Term Format: ``term_to_binary`` / ``binary_to_term`` and Erlang's data types.

Pure code, no I/O. See ``docs/terms.md`` for the Python <-> Erlang mapping table and the limits.
"""

from philipjose.term.errors import DecodeError, EncodeError, TermError
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

__all__ = [
    "Atom",
    "BitString",
    "DecodeError",
    "EncodeError",
    "ExportFun",
    "Fun",
    "ImproperList",
    "List",
    "Map",
    "Pid",
    "Port",
    "Reference",
    "TermError",
]
