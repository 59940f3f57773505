"""Erlang-style processes on Trio: spawn, send, selective receive, links, monitors, exit signals,
a name registry, and the GenServer behaviour.

Start a runtime with :func:`run` (or :func:`run_async` inside an existing Trio program); every
process is a Trio task of that runtime. See ``docs/actors.md`` for the semantics and the speed notes.
The node layer plugs in through :func:`current_runtime` and :class:`DistributionHooks`.
"""

from philipjose.actors.api import (
    demonitor,
    exit,
    group_leader,
    is_alive,
    link,
    monitor,
    process_flag,
    process_info,
    processes,
    receive,
    register,
    registered,
    self,
    send,
    send_nowait,
    send_wait,
    spawn,
    spawn_link,
    spawn_monitor,
    unlink,
    unregister,
    whereis,
)
from philipjose.actors.errors import ActorError, BadArg, Busy, Exit, NoProcessError, StartError, Stop
from philipjose.actors.genserver import NOREPLY, Caller, GenServer, call, cast, reply
from philipjose.actors.hooks import DistributionHooks
from philipjose.actors.patterns import ANY
from philipjose.actors.process import REDUCTIONS
from philipjose.actors.reasons import crash_reason
from philipjose.actors.runtime import (
    Runtime,
    current_runtime,
    run,
    run_async,
    set_default_group_leader_starter,
)

__all__ = [
    "ANY",
    "NOREPLY",
    "REDUCTIONS",
    "ActorError",
    "BadArg",
    "Busy",
    "Caller",
    "DistributionHooks",
    "Exit",
    "GenServer",
    "NoProcessError",
    "Runtime",
    "StartError",
    "Stop",
    "call",
    "cast",
    "crash_reason",
    "current_runtime",
    "demonitor",
    "exit",
    "group_leader",
    "is_alive",
    "link",
    "monitor",
    "process_flag",
    "process_info",
    "processes",
    "receive",
    "register",
    "registered",
    "reply",
    "run",
    "run_async",
    "self",
    "send",
    "send_nowait",
    "send_wait",
    "set_default_group_leader_starter",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "unlink",
    "unregister",
    "whereis",
]
