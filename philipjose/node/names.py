"""Node names: ``alive@host``, short (like ``erl -sname``) or long (like ``erl -name``).

A short name's host is the machine's host name up to the first dot; a long name's host is the fully
qualified name (or an IP address). A name given with ``@`` is used as it is.
"""

from __future__ import annotations

import re
import socket

from philipjose.node.errors import NodeConfigError
from philipjose.node.handshake import split_node_name

__all__ = ["is_long_name", "make_node_name", "split_node_name"]

_ALIVE = re.compile(r"[A-Za-z0-9_\-]+")


def is_long_name(node: str) -> bool:
    """True when the host part of ``node`` contains a dot (a ``-name`` style node)."""
    return "." in node.partition("@")[2]


def make_node_name(name: str, *, longnames: bool = False) -> str:
    """The full node name for ``name``.

    ``"py"`` becomes ``"py@<short host name>"`` (or ``"py@<fully qualified name>"`` with
    ``longnames=True``); ``"py@host"`` is kept. Raises :class:`NodeConfigError` for a malformed name
    (the alive part holds letters, digits, ``_`` and ``-``).
    """
    if not isinstance(name, str):
        raise NodeConfigError(f"a node name is a str, not {type(name).__name__}")
    alive, sep, host = name.partition("@")
    if not sep:
        if longnames:
            host = socket.getfqdn()
            if "." not in host:
                raise NodeConfigError(
                    f"cannot make a long node name: this host's name {host!r} is not fully qualified; "
                    "give the name as alive@host"
                )
        else:
            host = socket.gethostname().split(".")[0]
    if not _ALIVE.fullmatch(alive):
        raise NodeConfigError(f"bad node name {name!r}: the part before @ must be letters, digits, _ or -")
    full = f"{alive}@{host}"
    try:
        split_node_name(full)
    except ValueError as exc:
        raise NodeConfigError(str(exc)) from None
    return full
