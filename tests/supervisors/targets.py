"""Callables the supervisor tests name in configs (``tests.supervisors.targets:...``)."""

from __future__ import annotations

from typing import Any

not_callable = 42


async def idle(*args: Any) -> None:
    """A worker body used only by config tests (never run there)."""
    return None
