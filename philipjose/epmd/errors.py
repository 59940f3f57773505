"""Errors raised by :mod:`philipjose.epmd`.

Every error the EPMD client raises is an :class:`EpmdError`, which is an :class:`OSError`: failing to
reach or use the port mapper is an I/O failure, so code that already handles ``OSError`` around
network calls handles EPMD too. The subclasses say whose fault it is:

- :class:`EpmdUnreachableError` (also a :class:`ConnectionError`): nothing answers at the EPMD
  address, or the connection broke. :class:`EpmdTimeoutError` (also a :class:`TimeoutError`) is the
  case where it did not answer in time.
- :class:`EpmdRefusedError`: EPMD answered and said no, e.g. the name is already registered by a live
  node, or registration was attempted from a non-local address (EPMD then closes without a reply).
- :class:`EpmdProtocolError` (also a :class:`ValueError`): the peer sent bytes that are not valid
  EPMD. The sans-I/O codec raises it; a server closes the offending connection and carries on.

The caller's own mistakes (a node name with ``@`` in it, a port out of range, using a sans-I/O
connection in the wrong state) raise plain :class:`ValueError` / :class:`RuntimeError`, never an
``EpmdError``.
"""

from __future__ import annotations

__all__ = [
    "EpmdError",
    "EpmdProtocolError",
    "EpmdRefusedError",
    "EpmdTimeoutError",
    "EpmdUnreachableError",
]


class EpmdError(OSError):
    """Base of every error raised by :mod:`philipjose.epmd` when talking to a port mapper."""


class EpmdUnreachableError(EpmdError, ConnectionError):
    """Nothing answers at the EPMD address, or the connection to it broke."""


class EpmdTimeoutError(EpmdUnreachableError, TimeoutError):
    """EPMD did not connect or answer within the timeout."""


class EpmdRefusedError(EpmdError):
    """EPMD refused the request (e.g. the node name is taken by a live node)."""


class EpmdProtocolError(EpmdError, ValueError):
    """The peer sent bytes that are not valid EPMD protocol (the peer's fault)."""
