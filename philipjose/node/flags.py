"""Distribution capability flags (``DFLAG_*``), named and valued as in OTP's ``dist.hrl``.

The two nodes of a connection exchange their flags during the handshake; what both set is what the
connection uses. ``ADVERTISED`` is what philipjose sends, ``MANDATORY`` what it requires of a peer
(OTP 25's mandatory set: a peer without one of these is refused, as OTP 25 does).
"""

from __future__ import annotations

__all__ = [
    "ADVERTISED",
    "DFLAG_ALIAS",
    "DFLAG_ATOM_CACHE",
    "DFLAG_BIG_CREATION",
    "DFLAG_BIG_SEQTRACE_LABELS",
    "DFLAG_BIT_BINARIES",
    "DFLAG_DIST_HDR_ATOM_CACHE",
    "DFLAG_DIST_MONITOR",
    "DFLAG_DIST_MONITOR_NAME",
    "DFLAG_EXIT_PAYLOAD",
    "DFLAG_EXPORT_PTR_TAG",
    "DFLAG_EXTENDED_PIDS_PORTS",
    "DFLAG_EXTENDED_REFERENCES",
    "DFLAG_FRAGMENTS",
    "DFLAG_FUN_TAGS",
    "DFLAG_HANDSHAKE_23",
    "DFLAG_HIDDEN_ATOM_CACHE",
    "DFLAG_MANDATORY_25_DIGEST",
    "DFLAG_MAP_TAG",
    "DFLAG_NAME_ME",
    "DFLAG_NEW_FLOATS",
    "DFLAG_NEW_FUN_TAGS",
    "DFLAG_PUBLISHED",
    "DFLAG_SEND_SENDER",
    "DFLAG_SMALL_ATOM_TAGS",
    "DFLAG_SPAWN",
    "DFLAG_UNICODE_IO",
    "DFLAG_UNLINK_ID",
    "DFLAG_UTF8_ATOMS",
    "DFLAG_V4_NC",
    "MANDATORY",
    "flag_names",
    "missing_mandatory",
]

DFLAG_PUBLISHED = 0x1
DFLAG_ATOM_CACHE = 0x2
DFLAG_EXTENDED_REFERENCES = 0x4
DFLAG_DIST_MONITOR = 0x8
DFLAG_FUN_TAGS = 0x10
DFLAG_DIST_MONITOR_NAME = 0x20
DFLAG_HIDDEN_ATOM_CACHE = 0x40
DFLAG_NEW_FUN_TAGS = 0x80
DFLAG_EXTENDED_PIDS_PORTS = 0x100
DFLAG_EXPORT_PTR_TAG = 0x200
DFLAG_BIT_BINARIES = 0x400
DFLAG_NEW_FLOATS = 0x800
DFLAG_UNICODE_IO = 0x1000
DFLAG_DIST_HDR_ATOM_CACHE = 0x2000
DFLAG_SMALL_ATOM_TAGS = 0x4000
DFLAG_UTF8_ATOMS = 0x10000
DFLAG_MAP_TAG = 0x20000
DFLAG_BIG_CREATION = 0x40000
DFLAG_SEND_SENDER = 0x80000
DFLAG_BIG_SEQTRACE_LABELS = 0x100000
DFLAG_EXIT_PAYLOAD = 0x400000
DFLAG_FRAGMENTS = 0x800000
DFLAG_HANDSHAKE_23 = 0x1000000
DFLAG_UNLINK_ID = 0x2000000
DFLAG_SPAWN = 1 << 32
DFLAG_NAME_ME = 1 << 33
DFLAG_V4_NC = 1 << 34
DFLAG_ALIAS = 1 << 35
DFLAG_MANDATORY_25_DIGEST = 1 << 36

#: What an OTP 25 node requires of its peers (``DFLAG_DIST_MANDATORY_25``); philipjose requires the same.
MANDATORY = (
    DFLAG_EXTENDED_REFERENCES
    | DFLAG_FUN_TAGS
    | DFLAG_NEW_FUN_TAGS
    | DFLAG_EXTENDED_PIDS_PORTS
    | DFLAG_EXPORT_PTR_TAG
    | DFLAG_BIT_BINARIES
    | DFLAG_NEW_FLOATS
    | DFLAG_UTF8_ATOMS
    | DFLAG_MAP_TAG
    | DFLAG_BIG_CREATION
    | DFLAG_HANDSHAKE_23
)

#: What philipjose advertises: the mandatory set, the optional features the node layer implements,
#: and FRAGMENTS (reassembled on receive; messages over 64 KiB are sent in fragments). Neither
#: PUBLISHED (the node is hidden) nor DIST_HDR_ATOM_CACHE (peers send pass-through frames).
ADVERTISED = (
    MANDATORY
    | DFLAG_MANDATORY_25_DIGEST
    | DFLAG_DIST_MONITOR
    | DFLAG_DIST_MONITOR_NAME
    | DFLAG_SMALL_ATOM_TAGS
    | DFLAG_UNICODE_IO
    | DFLAG_SEND_SENDER
    | DFLAG_BIG_SEQTRACE_LABELS
    | DFLAG_EXIT_PAYLOAD
    | DFLAG_FRAGMENTS
    | DFLAG_UNLINK_ID
    | DFLAG_SPAWN
    | DFLAG_V4_NC
    | DFLAG_ALIAS
)

_NAMES: dict[int, str] = {
    value: name[len("DFLAG_") :]
    for name, value in sorted(globals().items())
    if name.startswith("DFLAG_") and isinstance(value, int)
}


def flag_names(flags: int) -> list[str]:
    """The names (without ``DFLAG_``) of the known bits set in ``flags``, lowest bit first."""
    return [_NAMES[bit] for bit in sorted(_NAMES) if flags & bit]


def missing_mandatory(flags: int, mandatory: int = MANDATORY) -> int:
    """The bits of ``mandatory`` that ``flags`` lacks (0 when the peer is acceptable).

    A peer that sets ``DFLAG_MANDATORY_25_DIGEST`` implies the whole OTP 25 mandatory set.
    """
    if flags & DFLAG_MANDATORY_25_DIGEST:
        flags |= MANDATORY
    return mandatory & ~flags
