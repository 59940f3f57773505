"""A live web dashboard for farms and for any philipjose node (the optional extra ``philipjose[dashboard]``).

``Farm(dashboard=PORT)``, ``Executor(dashboard=PORT)``, ``philipjose farm run --dashboard [HOST:]PORT``
serve a farm's page (progress, workers, machines, a task stream, failures) and its node's page;
``pj.run(main, dashboard=PORT)``, ``philipjose run --dashboard PORT TREE.toml`` or ``[node] dashboard``
in a tree file serve a node's page (processes, supervision trees, connections). Each page is live
(server-sent events, no reloads) and has a JSON endpoint with the same data. See "The dashboard" in
``docs/farm.md`` and ``docs/actors.md``, and ``docs/security.md`` for what it shows to whom.

This module imports without the extra (the farm and ``pj.run`` call :func:`require` and
:func:`parse_address` when a dashboard is asked for); :mod:`.server` and the views need Starlette,
Hypercorn and psutil.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final

from philipjose._hostport import parse_host_port

__all__ = ["INSTALL", "DashboardUnavailable", "parse_address", "require", "url", "with_node_dashboard"]

INSTALL: Final = "pip install 'philipjose[dashboard]'"
"""How to install what the dashboard needs."""

_NEEDED: Final = ("starlette", "hypercorn.trio", "psutil")
_URLS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # runtime -> its node page


class DashboardUnavailable(ImportError):
    """The dashboard's optional dependencies are not installed (the message says how to install them)."""


def require() -> None:
    """Raise :class:`DashboardUnavailable` unless Starlette, Hypercorn and psutil import."""
    for module in _NEEDED:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise DashboardUnavailable(
                f"the dashboard needs {module.partition('.')[0]}, which is not installed: {INSTALL}"
            ) from exc


def parse_address(value: int | str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` (an int or a str) as ``(host, port)``; the host is
    127.0.0.1 unless given; port 0 means any free port. ``ValueError`` for anything else."""
    return parse_host_port(value)


def url(runtime: Any = None) -> str | None:
    """The URL of the node page of ``runtime`` (default: the current one), None if it has none."""
    if runtime is None:
        from philipjose.actors import current_runtime

        runtime = current_runtime()
    return _URLS.get(runtime)


def with_node_dashboard(
    setup: Callable[[], Awaitable[Any]] | None, address: int | str
) -> Callable[[], Awaitable[Any]]:
    """A runtime ``setup`` that runs ``setup`` (if any), then serves the node page at ``address``
    for the runtime's life (what ``pj.run(..., dashboard=...)`` does). Checks the extra and the
    address now: :class:`DashboardUnavailable`, ``ValueError``."""
    require()
    where = parse_address(address)

    async def setup_with_dashboard() -> None:
        from philipjose.actors import current_runtime
        from philipjose.dashboard.node_view import serve_node

        if setup is not None:
            await setup()
        rt = current_runtime()
        _URLS[rt] = await rt.nursery.start(serve_node, rt, where)

    return setup_with_dashboard
