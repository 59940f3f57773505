"""The dashboard's web server: a Starlette app served by Hypercorn's Trio worker on the caller's loop.

Each *view* (the farm's, a node's) makes a JSON-able snapshot of what it shows. The app serves, per
view ``V``: the page ``/`` (the first view) or ``/V``, its data ``/api/V`` (JSON) and ``/events/V``
(server-sent events: one snapshot every ``interval`` seconds, so the page updates without reloads),
and the page's own scripts and styles under ``/static/`` (shipped in the package: no CDN, works
offline). A snapshot is made at most once per :data:`MAX_AGE` seconds whatever the number of
clients, and its size is bounded by the views (see "The dashboard" in ``docs/farm.md``).

The server is read-only and has no authentication: it binds to 127.0.0.1 unless a host is given, and
on a loopback address it answers only requests whose ``Host`` is a loopback name (a web page elsewhere
cannot read it through DNS rebinding). See ``docs/security.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, Final

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["INTERVAL", "MAX_AGE", "View", "serve_views"]

_LOG = logging.getLogger("philipjose.dashboard")

INTERVAL: Final = 0.5
"""Seconds between two snapshots pushed to a live page."""

MAX_AGE: Final = 0.25
"""A snapshot younger than this is served again instead of being made anew."""

_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1", "[::1]")
_HEADERS: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class View:
    """What one page shows: :meth:`collect` makes a snapshot (a dict of JSON types); :meth:`snapshot`
    gives the JSON of a recent one, made at most every :data:`MAX_AGE` seconds (concurrent callers
    share one collection)."""

    name = "view"
    title = "philipjose"

    def __init__(self) -> None:
        self._data = b""
        self._made = -float("inf")
        self._lock = trio.Lock()

    async def collect(self) -> dict[str, Any]:
        raise NotImplementedError

    async def snapshot(self) -> bytes:
        async with self._lock:
            if trio.current_time() - self._made >= MAX_AGE:
                self._data = json.dumps(await self.collect(), separators=(",", ":"), default=str).encode()
                self._made = trio.current_time()
            return self._data


def _page(view: View, links: Sequence[View]) -> str:
    template = resources.files("philipjose.dashboard").joinpath("static", "page.html").read_text("utf-8")
    nav = " ".join(
        f'<a href="{"./" if i == 0 else v.name}" id="nav-{v.name}">{v.title}</a>' for i, v in enumerate(links)
    )
    return template.replace("{{view}}", view.name).replace("{{title}}", view.title).replace("{{nav}}", nav)


def _app(views: Sequence[View], loopback: bool) -> Starlette:
    by_name = {v.name: v for v in views}

    async def page(request: Request) -> Response:
        name = request.path_params.get("view", views[0].name)
        view = by_name.get(name)
        if view is None:
            return Response("no such page", status_code=404)
        return HTMLResponse(_page(view, views), headers=_HEADERS)

    async def api(request: Request) -> Response:
        view = by_name.get(request.path_params["view"])
        if view is None:
            return Response("no such view", status_code=404)
        return Response(await view.snapshot(), media_type="application/json", headers=_HEADERS)

    async def events(request: Request) -> Response:
        view = by_name.get(request.path_params["view"])
        if view is None:
            return Response("no such view", status_code=404)

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            while True:
                yield b"data: " + await view.snapshot() + b"\n\n"
                await trio.sleep(INTERVAL)

        return StreamingResponse(stream(), media_type="text/event-stream", headers=_HEADERS)

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(_LOOPBACK))] if loopback else []
    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/{view}", api),
            Route("/events/{view}", events),
            Mount("/static", StaticFiles(packages=[("philipjose.dashboard", "static")])),
            Route("/{view}", page),
        ],
        middleware=middleware,
    )


async def serve_views(
    views: Sequence[View],
    address: tuple[str, int],
    *,
    background: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``views`` at ``address`` (host, port; port 0: any free one) until cancelled; reports the
    first view's URL through ``task_status``. ``background`` (optional) runs beside the server.
    ``OSError`` if the address cannot be bound."""
    host, port = address
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("philipjose.dashboard.http")
    config.graceful_timeout = 0.5
    loopback = host in _LOOPBACK
    async with trio.open_nursery() as nursery:
        if background is not None:
            nursery.start_soon(background)
        binds: list[str] = await nursery.start(serve, _app(views, loopback), config)
        where = binds[0] + "/"
        _LOG.info("dashboard at %s", where)
        task_status.started(where)
