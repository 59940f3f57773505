"""Tasks for the dashboard's farm tests (importable by the workers: the tests' own package)."""

from __future__ import annotations

import time


def slow(x: int) -> int:
    time.sleep(0.02)
    return x


def tiny(x: int) -> int:
    """20 us of work (so a map of 100,000 lasts several of the dashboard's snapshots, however quiet)."""
    end = time.perf_counter() + 20e-6
    while time.perf_counter() < end:
        pass
    return x + 1


def fails(token: str) -> None:
    raise ValueError(f"dashboard test failure {token}")
