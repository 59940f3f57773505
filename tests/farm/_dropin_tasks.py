"""Tasks of the drop-in test (``test_dropin.py``): module-level, importable by the workers of a
``ProcessPoolExecutor`` and of a ``farm.Executor`` alike; imports nothing heavy."""

from __future__ import annotations

import os

_STATE: dict[str, object] = {}


class Refused(Exception):
    """An exception class of the tasks' own (rebuilt by its type on the caller's side)."""


def power(base: int, exp: int = 2) -> int:
    return int(base**exp)


def add(x: int, y: int) -> int:
    return x + y


def fail(n: int) -> int:
    raise ValueError(f"bad {n}")


def refuse(reason: str) -> None:
    raise Refused(reason)


def set_state(key: str, value: object) -> None:
    """An initializer: remembers ``value`` in this worker process."""
    _STATE[key] = value


def get_state(key: str) -> tuple[object, int]:
    return _STATE.get(key), os.getpid()


def broken_initializer() -> None:
    raise RuntimeError("no such resource")


def wait_for(fifo: str) -> str:
    """Blocks until someone writes to the named pipe ``fifo`` and closes it; returns what was written."""
    with open(fifo) as pipe:
        return pipe.read()
