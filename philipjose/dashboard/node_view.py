"""The node page: a runtime's processes, its supervision trees and its connections to other nodes.

Like Erlang's ``observer``, the snapshot is made by a process of the node (the *collector*,
registered as ``pj_dashboard``): it asks each supervisor for its children with a call
(``which_children``, at most :data:`CALL_TIMEOUT` seconds each: a busy supervisor shows as such and
holds nothing up), so a tree is drawn as the supervisors themselves see it. Bounds: the oldest
:data:`MAX_PROCESSES` processes are listed (with the total), :data:`MAX_LINKS` links and monitors
each, the first :data:`MAX_CHILDREN` children of a supervisor, and every connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

import trio

from philipjose import actors
from philipjose.actors import Runtime
from philipjose.dashboard.server import View, serve_views
from philipjose.node.flags import DFLAG_PUBLISHED
from philipjose.supervisors.supervisor import PJ_REQUEST, supervisor_main
from philipjose.term import Atom, Pid

__all__ = ["CALL_TIMEOUT", "MAX_CHILDREN", "MAX_LINKS", "MAX_PROCESSES", "NodeView", "pid_text", "serve_node"]

MAX_PROCESSES: Final = 1000
"""Processes listed on the node page (the oldest ones; the total is shown)."""

MAX_LINKS: Final = 20
"""Links and monitors shown per process (with their counts)."""

MAX_CHILDREN: Final = 200
"""Children shown per supervisor."""

CALL_TIMEOUT: Final = 1.0
"""Seconds the collector waits for a supervisor's answer."""

_COLLECTOR: Final = Atom("pj_dashboard")
_SUPERVISOR: Final = f"{supervisor_main.__module__}.{supervisor_main.__qualname__}"
_WHICH: Final = (PJ_REQUEST, Atom("which_children"))
_LOG = logging.getLogger("philipjose.dashboard")


def pid_text(pid: Any, local: Atom | None = None) -> str:
    """A pid as Erlang prints it: ``<0.85.0>`` on this node, ``<node.85.0>`` on another."""
    if not isinstance(pid, Pid):
        return str(pid)
    where = "0" if local is None or pid.node == local or pid.node == Atom("nonode@nohost") else str(pid.node)
    return f"<{where}.{pid.id}.{pid.serial}>"


def _texts(items: Iterable[Any], local: Atom) -> list[str]:
    out: list[str] = []
    for item in items:
        if len(out) == MAX_LINKS:
            break
        out.append(pid_text(item, local) if isinstance(item, Pid) else str(item))
    return out


def _connections(rt: Runtime) -> list[dict[str, Any]]:
    node = rt.dist
    peers = getattr(node, "peers", None)
    if not peers:
        return []
    tls = getattr(node, "tls", None) is not None
    rows = []
    for name, peer in sorted(peers.items()):
        rows.append(
            {
                "node": str(name),
                "address": peer.address,
                "state": "up" if peer.up else "connecting",
                "tls": tls,
                "hidden": bool(peer.up and not peer.flags & DFLAG_PUBLISHED),
                "bytes_in": peer.bytes_in,
                "bytes_out": peer.bytes_out,
                "queued": peer.queued,
            }
        )
    return rows


class NodeView(View):
    """The node page of the runtime ``rt`` (see the module docstring)."""

    name = "node"
    title = "node"

    def __init__(self, rt: Runtime) -> None:
        super().__init__()
        self.rt = rt
        self._wanted = trio.Event()
        self._ready = trio.Event()
        self._result: dict[str, Any] = {}

    async def collect(self) -> dict[str, Any]:
        """Ask the collector process for a snapshot and wait for it."""
        made = self._ready
        self._wanted.set()
        with trio.move_on_after(10):
            await made.wait()
        return self._result

    async def collector(self) -> None:
        """The collector process's body: make a snapshot each time one is wanted."""
        if actors.whereis(_COLLECTOR) is None:  # a second dashboard of the runtime goes unnamed
            actors.register(_COLLECTOR, actors.self())
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            try:
                self._result = await self.gather()
            finally:
                made, self._ready = self._ready, trio.Event()
                made.set()

    async def gather(self) -> dict[str, Any]:
        """The snapshot (run by a process of the node: it calls the supervisors)."""
        rt = self.rt
        local = rt.node
        pids = rt.processes()
        rows = []
        supervisors: list[Pid] = []
        names: dict[Pid, str] = {}
        for pid in pids[:MAX_PROCESSES]:
            info = rt.process_info(pid)
            if info is None:
                continue
            name = info["registered_name"]
            if name is not None:
                names[pid] = str(name)
            if info["initial_call"] == _SUPERVISOR:
                supervisors.append(pid)
            rows.append(
                {
                    "pid": pid_text(pid, local),
                    "name": "" if name is None else str(name),
                    "function": info["current_function"],
                    "initial": info["initial_call"],
                    "status": info["status"],
                    "mailbox": info["message_queue_len"],
                    "links": _texts(info["links"], local),
                    "link_count": len(info["links"]),
                    "monitors": _texts(info["monitors"], local),
                    "monitor_count": len(info["monitors"]),
                    "trap_exit": info["trap_exit"],
                }
            )
        trees = await self._trees(supervisors, names)
        return {
            "kind": "node",
            "node": str(local),
            "distributed": rt.dist is not None,
            "process_count": len(pids),
            "processes": rows,
            "process_limit": MAX_PROCESSES,
            "trees": trees,
            "connections": _connections(rt),
        }

    async def _trees(self, supervisors: list[Pid], names: dict[Pid, str]) -> list[dict[str, Any]]:
        local = self.rt.node
        children: dict[Pid, list[Any] | str] = {}
        for sup in supervisors:
            try:
                ok, value = await actors.call(sup, _WHICH, timeout=CALL_TIMEOUT)
            except TimeoutError:
                children[sup] = "busy"
                continue
            except actors.Exit:
                continue  # it ended meanwhile
            children[sup] = list(value)[:MAX_CHILDREN] if ok else "busy"
        nested = {c.pid for kids in children.values() if not isinstance(kids, str) for c in kids}

        def node(pid: Any, ident: Any, kind: str, depth: int) -> dict[str, Any]:
            label = names.get(pid) if isinstance(pid, Pid) else None
            entry: dict[str, Any] = {
                "id": "" if ident is None else str(ident),
                "pid": pid_text(pid, local) if isinstance(pid, Pid) else ("" if pid is None else str(pid)),
                "name": label or "",
                "type": kind,
                "running": isinstance(pid, Pid),
                "children": [],
            }
            kids = children.get(pid) if isinstance(pid, Pid) else None
            if isinstance(kids, str):
                entry["note"] = kids
            elif kids is not None and depth < 32:
                entry["children"] = [node(c.pid, c.id, c.type, depth + 1) for c in kids]
            return entry

        return [node(sup, names.get(sup, ""), "supervisor", 0) for sup in supervisors if sup not in nested]


async def serve_node(
    rt: Runtime,
    address: tuple[str, int],
    *,
    extra: list[View] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the node page of ``rt`` (after the ``extra`` views, the first of which is then the home
    page) at ``address`` until cancelled; its URL goes to ``task_status``. Spawns the collector
    process in ``rt`` and kills it when done."""
    view = NodeView(rt)
    collector = rt.spawn_outside(view.collector, ())
    try:
        await serve_views([*(extra or []), view], address, task_status=task_status)
    finally:
        rt.exit(collector, collector, Atom("kill"))
