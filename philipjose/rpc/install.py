"""Making a node serve rpc: the node's spawn hooks and the ``rex`` process."""

from __future__ import annotations

from functools import partial

from philipjose.node import Node
from philipjose.rpc import rex as _rex
from philipjose.rpc.expose import Registry, default_registry
from philipjose.rpc.serve import handle_demonitor, handle_spawn_request, watcher
from philipjose.rpc.service import RpcService, register_service, service_of
from philipjose.rpc.spawn import handle_spawn_reply

__all__ = ["install"]


def install(node: Node, registry: Registry | None = None) -> RpcService:
    """Make ``node`` serve rpc from ``registry`` (default: the one :func:`~.expose.expose` fills).

    Sets the node's ``spawn_handler``, ``spawn_reply_handler`` and ``demonitor_handler`` and starts
    the ``rex`` process and the service's watcher process. Every node started after
    ``import philipjose`` gets this automatically (via ``philipjose.node.add_service``); calling it
    again only changes the registry. Call it from inside the node's runtime.
    """
    service = service_of(node)
    if service is not None:
        if registry is not None:
            service.registry = registry
        return service
    service = RpcService(node, registry if registry is not None else default_registry())
    register_service(node, service)
    node.spawn_handler = partial(handle_spawn_request, service)
    node.spawn_reply_handler = partial(handle_spawn_reply, service)
    node.demonitor_handler = partial(handle_demonitor, service)
    rt = node.rt
    service.watcher, _ = rt.spawn(watcher, (service,))
    if rt.whereis(_rex.NAME) is None:
        pid, _ = rt.spawn(_rex.rex, (service,))
        rt.register(_rex.NAME, pid)
    return service
