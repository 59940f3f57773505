"""Remote procedure calls both ways between philipjose and Erlang/Elixir nodes, with OTP's own rpc.

Serve: ``rpc.expose("pyexample", {"add": add})`` lets ``rpc:call(Py, pyexample, add, [1, 2])``,
``erpc:call``, Elixir's ``:rpc.call`` and ``Node.spawn(py, :pyexample, :add, [1, 2])`` run ``add``.
Only exposed functions can be called; everything else is ``undef``. Every node started after
``import philipjose`` serves rpc (``erpc`` spawn requests and the legacy ``rex`` server).

Call out: ``await rpc.call(node, "lists", "reverse", [[1, 2, 3]], timeout=5)`` (any Erlang
function), ``rpc.cast(...)``, and ``await pj.node.spawn(node, module, function, args, link=...,
monitor=...)``.

See ``docs/rpc.md`` for the error mapping and the security notes (the cookie is full trust).
"""

from philipjose.node import add_service as _add_service
from philipjose.rpc.call import call, cast
from philipjose.rpc.errors import BadRpc, ExposeError, RemoteError, RpcError, RpcTimeout, Throw
from philipjose.rpc.expose import Exposed, Registry, default_registry, expose, exposed, unexpose
from philipjose.rpc.install import install
from philipjose.rpc.service import RpcService, current_service
from philipjose.rpc.spawn import spawn

__all__ = [
    "BadRpc",
    "ExposeError",
    "Exposed",
    "Registry",
    "RemoteError",
    "RpcError",
    "RpcService",
    "RpcTimeout",
    "Throw",
    "call",
    "cast",
    "current_service",
    "default_registry",
    "expose",
    "exposed",
    "install",
    "spawn",
    "unexpose",
]

_add_service(install)
