"""Tasks for the farm's failure tests, in a module that imports nothing heavy: a fresh worker runs
its first task at once instead of importing the test modules (pytest, psutil) first."""

from __future__ import annotations

import contextlib
import os
import time


def square(x: int) -> int:
    return x * x


def brief_square(x: int) -> int:
    time.sleep(0.005)  # the workload, not a wait
    return x * x


def slow_square(x: int) -> int:
    time.sleep(0.02)  # the workload, not a wait
    return x * x


def poison_every_20th(i: int) -> int:
    if i % 20 == 0:
        os._exit(3)
    return i * i


def stubborn() -> None:
    """Swallows the farm's request to stop (``TaskCancelled`` raised in its thread): only a kill
    stops it."""
    while True:
        with contextlib.suppress(BaseException):  # the point: it refuses to stop
            time.sleep(1000)


def stubborn_once_started(fifo: str) -> None:
    """Says it is running (a line into the named pipe ``fifo``), then behaves as :func:`stubborn`."""
    with open(fifo, "w") as out:
        out.write("running\n")
    stubborn()


def when_started(fifo: str) -> str:
    """Returns once :func:`stubborn_once_started` is running (blocks on the named pipe)."""
    with open(fifo) as source:
        return source.readline().strip()


def fifty_ms_square(x: int) -> int:
    time.sleep(0.05)  # the workload, not a wait
    return x * x


def logged_square(path: str, x: int) -> int:
    """Appends ``x`` to the file at ``path`` when it has run (counts executions honestly), after 50 ms
    of work."""
    time.sleep(0.05)  # the workload, not a wait
    with open(path, "a") as out:
        out.write(f"{x}\n")
    return x * x


def gated_square(flag: str, x: int) -> int:
    """``x * x``; from ``x = 100`` on, only once the file ``flag`` exists (the test creates it when it
    wants the rest of a map to run), and after 5 ms of work."""
    if x >= 100:
        deadline = time.monotonic() + 120
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.01)  # the task waits for the test's go-ahead (a file), not for time
    time.sleep(0.005)  # the workload, not a wait
    return x * x


def running_until_told(started: str, go: str) -> str:
    """Says it is running (a line into the named pipe ``started``), then waits for a line from the
    named pipe ``go`` and returns ``"finished"``."""
    with open(started, "w") as out:
        out.write("running\n")
    with open(go) as source:
        source.readline()
    return "finished"


def write_file(path: str) -> None:
    with open(path, "w") as out:
        out.write("ran\n")


def stubborn_from_the_start(fifo: str) -> None:
    """As :func:`stubborn_once_started`, but it swallows the farm's request to stop from its first
    line on, even one that comes while it says it is running."""
    said = False
    while True:
        with contextlib.suppress(BaseException):  # the point: it refuses to stop
            if not said:
                with open(fifo, "w") as out:
                    out.write("running\n")
                said = True
            time.sleep(1000)
