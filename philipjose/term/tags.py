"""Tag bytes of the External Term Format, named as in OTP's ``erl_ext_dist`` documentation."""

from __future__ import annotations

from typing import Final

VERSION: Final = 131
COMPRESSED: Final = 80
DIST_HEADER: Final = 68
DIST_FRAG_HEADER: Final = 69
ATOM_CACHE_REF: Final = 82

NEW_FLOAT_EXT: Final = 70
BIT_BINARY_EXT: Final = 77
NEW_PID_EXT: Final = 88
NEW_PORT_EXT: Final = 89
NEWER_REFERENCE_EXT: Final = 90
SMALL_INTEGER_EXT: Final = 97
INTEGER_EXT: Final = 98
FLOAT_EXT: Final = 99
ATOM_EXT: Final = 100
REFERENCE_EXT: Final = 101
PORT_EXT: Final = 102
PID_EXT: Final = 103
SMALL_TUPLE_EXT: Final = 104
LARGE_TUPLE_EXT: Final = 105
NIL_EXT: Final = 106
STRING_EXT: Final = 107
LIST_EXT: Final = 108
BINARY_EXT: Final = 109
SMALL_BIG_EXT: Final = 110
LARGE_BIG_EXT: Final = 111
NEW_FUN_EXT: Final = 112
EXPORT_EXT: Final = 113
NEW_REFERENCE_EXT: Final = 114
SMALL_ATOM_EXT: Final = 115
MAP_EXT: Final = 116
FUN_EXT: Final = 117
ATOM_UTF8_EXT: Final = 118
SMALL_ATOM_UTF8_EXT: Final = 119
V4_PORT_EXT: Final = 120
LOCAL_EXT: Final = 121
