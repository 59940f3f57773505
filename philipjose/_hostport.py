"""``[HOST:]PORT`` addresses (a dashboard's): pure, no dependencies, shared by every layer that reads one."""

from __future__ import annotations

import ipaddress

__all__ = ["parse_host_port"]


def parse_host_port(value: object, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` (an int or a str) as ``(host, port)``; the host is
    ``default_host`` unless given; port 0 means any free port. ``ValueError`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"an address is a port or 'HOST:PORT', not {value!r}")
    host, port_text = default_host, str(value).strip()
    if isinstance(value, str) and ":" in port_text:
        host, _, port_text = port_text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(f"not an IPv6 address in brackets: {value!r}") from None
        if not host:
            raise ValueError(f"an address needs a host before ':', not {value!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"a port is a number from 0 to 65535, not {value!r}")
    return host, int(port_text)
