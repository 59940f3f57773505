"""The farmer: machines, validation, task shipping, scheduling and progress for a farm of workers.

See ``docs/farm.md``. The public names are re-exported here.
"""

from philipjose.farm.errors import (
    FarmError,
    MachinesError,
    TaskError,
    TaskTimeout,
    UnpicklableTask,
    WorkerLost,
)
from philipjose.farm.executor import Executor
from philipjose.farm.farm import Farm, FarmFuture, WorkerInfo
from philipjose.farm.machines import Machine

__all__ = [
    "Executor",
    "Farm",
    "FarmError",
    "FarmFuture",
    "Machine",
    "MachinesError",
    "TaskError",
    "TaskTimeout",
    "UnpicklableTask",
    "WorkerInfo",
    "WorkerLost",
]
