"""Erlang distribution: the sans-I/O protocol (handshake, framing, control messages) and, on top of it,
the Trio node that makes a philipjose runtime a node of an Erlang cluster.

See ``docs/distribution.md`` for the protocol notes, the node options and the limits.
"""

from philipjose.node.api import (
    add_service,
    connect,
    current,
    demonitor_node,
    disconnect,
    monitor_node,
    monitor_nodes,
    name,
    nodes,
    ping,
    run,
    spawn,
    start,
)
from philipjose.node.errors import (
    AuthenticationError,
    FrameTooLarge,
    HandshakeError,
    HandshakeRefused,
    MessageTooLarge,
    NodeConfigError,
    NodeError,
    NotDistributedError,
    ProtocolError,
)
from philipjose.node.node import Node
from philipjose.node.tls import TLSConfig, tls_config

__all__ = [
    "AuthenticationError",
    "FrameTooLarge",
    "HandshakeError",
    "HandshakeRefused",
    "MessageTooLarge",
    "Node",
    "NodeConfigError",
    "NodeError",
    "NotDistributedError",
    "ProtocolError",
    "TLSConfig",
    "add_service",
    "connect",
    "current",
    "demonitor_node",
    "disconnect",
    "monitor_node",
    "monitor_nodes",
    "name",
    "nodes",
    "ping",
    "run",
    "spawn",
    "start",
    "tls_config",
]
