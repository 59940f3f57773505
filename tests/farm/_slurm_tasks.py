"""Tasks for the Slurm tests, in a module that imports nothing heavy (a fresh worker runs its first
task at once). Each reports where it ran: the job and step its worker is in."""

from __future__ import annotations

import os
import time


def where_square(x: int) -> tuple[int, str, str]:
    time.sleep(0.01)  # the workload, not a wait
    return x * x, os.environ.get("SLURM_JOB_ID", ""), os.environ.get("SLURM_STEP_ID", "")
