"""The per-node rpc state: which registry a node serves, the calls it runs, the requests it sent.

One :class:`RpcService` exists per distributed node that serves rpc (made by
:func:`philipjose.rpc.install`, which every node started after ``import philipjose`` runs).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Final

from philipjose.actors import current_runtime
from philipjose.node import current
from philipjose.rpc.errors import RpcError
from philipjose.rpc.expose import Registry, default_registry
from philipjose.term import Atom, Pid, Reference

if TYPE_CHECKING:
    from philipjose.node import Node
    from philipjose.rpc.spawn import Request

__all__ = ["RpcService", "current_service", "registry_here", "service_of"]


class RpcService:
    """rpc on one node. ``registry``: the exposed functions it serves; ``calls``: running
    ``erpc:execute_call`` processes by monitor reference (to cancel them when their caller gives
    up); ``pending``: spawn requests this node sent that are not answered yet, by request id;
    ``watched``: the nodes whose disconnection the ``watcher`` process is told of (to cancel the
    calls they made)."""

    def __init__(self, node: Node, registry: Registry) -> None:
        self.node = node
        self.registry = registry
        self.calls: dict[Reference, Pid] = {}
        self.pending: dict[Reference, Request] = {}
        self.watched: set[Atom] = set()
        self.watcher: Pid | None = None

    def __repr__(self) -> str:
        return f"<RpcService {self.node.name} calls={len(self.calls)} pending={len(self.pending)}>"


_SERVICES: Final[weakref.WeakKeyDictionary[Any, RpcService]] = weakref.WeakKeyDictionary()


def register_service(node: Node, service: RpcService) -> None:
    """Remember ``service`` as ``node``'s (used by :func:`philipjose.rpc.install`)."""
    _SERVICES[node] = service


def service_of(node: Node) -> RpcService | None:
    """The rpc service of ``node``, or None if it does not serve rpc."""
    return _SERVICES.get(node)


def current_service() -> RpcService:
    """The rpc service of the running runtime's node.

    Raises ``NotDistributedError`` when distribution is off and :class:`RpcError` when the node does
    not serve rpc (it was started before ``philipjose.rpc`` was imported).
    """
    node = current()
    service = _SERVICES.get(node)
    if service is None:
        raise RpcError(f"node {node.name} does not serve rpc (call philipjose.rpc.install(node))")
    return service


def registry_here() -> Registry:
    """The registry of the running runtime's node, or the default one without distribution."""
    dist = current_runtime().dist
    service = _SERVICES.get(dist) if dist is not None else None
    return service.registry if service is not None else default_registry()
