"""Reading a dashboard from a test. The page is served by the test's own event loop, so a blocking
request must run in a thread: :func:`fetch` and :func:`get` do (for async tests), :func:`get_now`
blocks (for a thread of its own, or a dashboard on another thread's loop, as an ``Executor``'s)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import trio


def _read(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return bytes(answer.read())


def get_now(url: str) -> Any:
    """The JSON at ``url`` (blocks)."""
    return json.loads(_read(url))


async def fetch(url: str) -> bytes:
    """The bytes at ``url``, read in a thread."""
    return await trio.to_thread.run_sync(_read, url)


async def get(url: str) -> Any:
    """The JSON at ``url``, read in a thread."""
    return json.loads(await fetch(url))
