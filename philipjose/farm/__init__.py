"""The farmer: machines, validation, task shipping, scheduling and progress for a farm of workers.

See ``docs/farm.md``. The public names are re-exported here.
"""

from philipjose.farm.erlang import Erl, ErlFunction, elixir, erl
from philipjose.farm.errors import (
    ArgumentsTooLarge,
    FarmError,
    InitializerFailed,
    MachinesError,
    RemoteTraceback,
    ResultTooLarge,
    TaskError,
    TaskTimeout,
    UnpicklableTask,
    WorkerLost,
)
from philipjose.farm.executor import Executor
from philipjose.farm.farm import Farm, FarmFuture, WorkerInfo
from philipjose.farm.journal import Journal, JournalError, JournalMismatch
from philipjose.farm.machines import Machine
from philipjose.farm.slurm import Slurm, SlurmError
from philipjose.farm.speculation import Speculation

__all__ = [
    "ArgumentsTooLarge",
    "Erl",
    "ErlFunction",
    "Executor",
    "Farm",
    "FarmError",
    "FarmFuture",
    "InitializerFailed",
    "Journal",
    "JournalError",
    "JournalMismatch",
    "Machine",
    "MachinesError",
    "RemoteTraceback",
    "ResultTooLarge",
    "Slurm",
    "SlurmError",
    "Speculation",
    "TaskError",
    "TaskTimeout",
    "UnpicklableTask",
    "WorkerInfo",
    "WorkerLost",
    "elixir",
    "erl",
]
