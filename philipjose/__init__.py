"""philipjose: an Erlang-style actor runtime on Trio whose nodes speak the Erlang distribution
protocol, and a farmer that coordinates worker nodes.

See ``DESIGN`` notes in the docs folder; the public names are re-exported here.
"""

from philipjose import (
    io,  # pj.io.format, pj.io.put_chars, ...; the default group leader of every runtime
    node,  # pj.node.start, pj.node.ping, ...
    rpc,  # rpc.expose, rpc.call; every node started from now on serves rpc
)
from philipjose._version import __version__
from philipjose.actors import (
    ANY,
    NOREPLY,
    ActorError,
    BadArg,
    Busy,
    Exit,
    GenServer,
    NoProcessError,
    StartError,
    Stop,
    call,
    cast,
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
    reply,
    self,
    send,
    send_nowait,
    send_wait,
    spawn,
    spawn_link,
    spawn_monitor,
    sys,  # pj.sys.get_state, pj.sys.get_status, pj.sys.suspend, ...
    unlink,
    unregister,
    whereis,
)
from philipjose.node import (
    global_,  # pj.global_.register_name, whereis_name, send, ...
    pg,  # pj.pg.join, pj.pg.get_members, ... (OTP's pg)
    run,
)
from philipjose.term import Atom, Pid, Port, Reference

__all__ = [
    "ANY",
    "NOREPLY",
    "ActorError",
    "Atom",
    "BadArg",
    "Busy",
    "Exit",
    "GenServer",
    "NoProcessError",
    "Pid",
    "Port",
    "Reference",
    "StartError",
    "Stop",
    "__version__",
    "call",
    "cast",
    "demonitor",
    "exit",
    "global_",
    "group_leader",
    "io",
    "is_alive",
    "link",
    "monitor",
    "node",
    "pg",
    "process_flag",
    "process_info",
    "processes",
    "receive",
    "register",
    "registered",
    "reply",
    "rpc",
    "run",
    "self",
    "send",
    "send_nowait",
    "send_wait",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "sys",
    "unlink",
    "unregister",
    "whereis",
]
