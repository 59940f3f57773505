"""Erlang distribution: the sans-I/O protocol (handshake, framing, control messages) and, on top of it,
the Trio node that makes a philipjose runtime a node of an Erlang cluster.

See ``docs/distribution.md`` for the protocol notes, the node options and the limits.
"""

from philipjose.node.errors import (
    AuthenticationError,
    FrameTooLarge,
    HandshakeError,
    HandshakeRefused,
    NodeConfigError,
    NodeError,
    NotDistributedError,
    ProtocolError,
)

__all__ = [
    "AuthenticationError",
    "FrameTooLarge",
    "HandshakeError",
    "HandshakeRefused",
    "NodeConfigError",
    "NodeError",
    "NotDistributedError",
    "ProtocolError",
]
