"""Node names: ``alive@host``, short (like ``erl -sname``) or long (like ``erl -name``).

A short name's host is the machine's host name up to the first dot; a long name's host is the fully
qualified name (or an IP address). A name given with ``@`` is used as it is.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Container

from philipjose.node.errors import NodeConfigError
from philipjose.node.handshake import split_node_name

__all__ = [
    "assign_dynamic_name",
    "base36",
    "is_long_name",
    "make_node_name",
    "mixed_names_refusal",
    "split_node_name",
]

_ALIVE = re.compile(r"[A-Za-z0-9_\-]+")


def is_long_name(node: str) -> bool:
    """True when the host part of ``node`` contains a dot or is an IP address (a ``-name`` style node)."""
    host = node.partition("@")[2]
    return "." in host or _is_address(host)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def mixed_names_refusal(ours: str, target: str) -> str | None:
    """Why a node named ``ours`` may not connect to ``target``, in OTP's words, or None.

    OTP's ``inet_tcp_dist:splitnode``: a short-name node refuses a host with dots ("System NOT
    running to use fully qualified hostnames"), a long-name node a host without dots that is not an
    IP address ("System running to use fully qualified hostnames").
    """
    host = target.partition("@")[2]
    if is_long_name(ours):
        if "." not in host and not _is_address(host):
            return f"** System running to use fully qualified hostnames ** ** Hostname {host} is illegal **"
    elif "." in host:
        return f"** System NOT running to use fully qualified hostnames ** ** Hostname {host} is illegal **"
    return None


_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def base36(n: int) -> str:
    """``integer_to_list(N, 36)`` for ``N >= 0``: capital letters and digits."""
    out = ""
    while True:
        n, digit = divmod(n, 36)
        out = _DIGITS[digit] + out
        if not n:
            return out


def assign_dynamic_name(host: str, taken: Container[str], random64: Callable[[], int]) -> str:
    """The name an acceptor gives a peer that asked for a dynamic name from ``host`` (OTP 23+'s
    ``net_kernel:generate_node_name``: a random number below 2^64 in base 36, ``@host``), drawn
    again while it is in ``taken`` (the names the node is connected to)."""
    while True:
        name = f"{base36(random64())}@{host}"
        if name not in taken:
            return name


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
