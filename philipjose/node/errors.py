"""Errors raised by the distribution layer.

``NodeError`` is the base of everything :mod:`philipjose.node` raises.

- The peer's fault: ``ProtocolError`` (a ``ValueError``) and its subclasses. A connection that raises
  one of these is closed; the node keeps serving every other connection.
- The outcome of a handshake the peer refused (``HandshakeRefused``) or failed to authenticate
  (``AuthenticationError``, a wrong cookie): the connection is closed and the event is logged.
- The caller's fault: ``NodeConfigError`` (a ``ValueError``: a bad node name, cookie or option),
  ``NotDistributedError`` (a ``RuntimeError``: distribution is not started) and ``MessageTooLarge``
  (a ``ValueError``: a message to send is over the node's ``max_message_size``; nothing is sent).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "FrameTooLarge",
    "HandshakeError",
    "HandshakeRefused",
    "MessageTooLarge",
    "NodeConfigError",
    "NodeError",
    "NotDistributedError",
    "ProtocolError",
]


class NodeError(Exception):
    """Base of every error raised by :mod:`philipjose.node`."""


class ProtocolError(NodeError, ValueError):
    """The peer sent bytes that break the distribution protocol; its connection is closed."""


class HandshakeError(ProtocolError):
    """The peer broke the handshake: a malformed, unexpected or oversized handshake message."""


class AuthenticationError(HandshakeError):
    """The peer's digest does not match our cookie (the two nodes do not share a cookie)."""


class HandshakeRefused(NodeError, ConnectionError):
    """The accepting node answered ``nok``, ``not_allowed`` or ``alive``/``false``: no connection.

    ``status`` holds the status string the peer sent.
    """

    def __init__(self, status: str) -> None:
        super().__init__(f"the peer refused the connection: {status}")
        self.status = status


class FrameTooLarge(ProtocolError):
    """A frame or a reassembled fragmented message is larger than the configured limit."""


class NodeConfigError(NodeError, ValueError):
    """A bad argument from the caller: node name, cookie, port or another option."""


class NotDistributedError(NodeError, RuntimeError):
    """The operation needs distribution, and this runtime has not started it."""


class MessageTooLarge(NodeError, ValueError):
    """A message to send encodes to more than the node's ``max_message_size``: nothing was sent.

    ``size`` and ``limit`` are in bytes; the connection is untouched.
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit
