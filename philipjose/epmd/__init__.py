"""EPMD, the Erlang Port Mapper Daemon protocol: sans-I/O codec, Trio client, embedded server.

- :mod:`.protocol`: messages and sans-I/O connections (no trio).
- :func:`register`, :func:`port_please`, :func:`names` (and :func:`kill`, :func:`stop`,
  :func:`dump`): the client, working with OTP's epmd and ours.
- :func:`serve` / :class:`EpmdServer`: the server behind ``philipjose epmd``.
- :func:`ensure_epmd`: start ``philipjose epmd --daemon`` if no EPMD answers (what nodes call).

See ``docs/epmd.md``.
"""

from philipjose.epmd.client import (
    DEFAULT_EPMD_PORT,
    Names,
    Registration,
    default_epmd_port,
    dump,
    kill,
    names,
    port_please,
    register,
    stop,
)
from philipjose.epmd.ensure import ensure_epmd, start_daemon
from philipjose.epmd.errors import (
    EpmdError,
    EpmdProtocolError,
    EpmdRefusedError,
    EpmdTimeoutError,
    EpmdUnreachableError,
)
from philipjose.epmd.protocol import NODE_TYPE_HIDDEN, NODE_TYPE_NORMAL, NodeInfo
from philipjose.epmd.server import EpmdServer, serve

__all__ = [
    "DEFAULT_EPMD_PORT",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "EpmdError",
    "EpmdProtocolError",
    "EpmdRefusedError",
    "EpmdServer",
    "EpmdTimeoutError",
    "EpmdUnreachableError",
    "Names",
    "NodeInfo",
    "Registration",
    "default_epmd_port",
    "dump",
    "ensure_epmd",
    "kill",
    "names",
    "port_please",
    "register",
    "serve",
    "start_daemon",
    "stop",
]
