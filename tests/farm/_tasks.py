"""Tasks for the farm's failure tests, in a module that imports nothing heavy: a fresh worker runs
its first task at once instead of importing the test modules (pytest, psutil) first."""

from __future__ import annotations

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
