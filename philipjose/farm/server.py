"""Long-lived worker servers, as lfarm's: ``philipjose worker --listen [HOST:]PORT --slots N``.

A server is started on its own (by hand, systemd, a container) and outlives the farms that use it;
farms name it by address: ``Farm(servers=["host:port"], cookie=...)``, or a ``kind = "server"``
entry of the machines registry. Several farms may share a server, one farm per slot.

Theory of operation
-------------------
A server is a hidden philipjose node named ``pj_server_PORT@HOST`` (:func:`server_node_name`: the
name follows from the address, so no EPMD is needed) that listens on ``HOST:PORT`` and whose cookie
is its secret (a 0600 file or the first line of stdin, as for every worker). Its one registered
process, :data:`SERVER`, answers requests; a request can only come over a connection whose peer
proved the cookie in the distribution handshake, so a farm with another cookie is refused by the
handshake (and logged by the server's node) before it can ask for anything.

A farm keeps one *session* process per server (:func:`session`): it connects, monitors the server's
node and sends ``(pj_serve, SessionPid, FarmerNode, FarmerPort, Wanted)``. The server grants free
slots (:func:`grant`), answers ``(pj_serving, Granted)`` (or ``(pj_server_refused, Reason)``),
monitors the session process, and for each granted slot keeps a fresh worker OS process running
that joins that farm exactly as ``philipjose worker --join`` does (:mod:`philipjose.farm.joining`;
the cookie on its stdin, which is also its lifeline: a server that dies takes its workers with it).
A worker that exits while its farm still holds the slot (the farm disconnected a race's loser, a
crash) is started again (after a backoff when it keeps dying young). When the session ends (the farm
closed, or its node went down) the server ends that farm's workers and frees the slots.

The farm is obstinate, as lfarm's client is: when its server goes away (the node connection goes
down) the session logs it, the workers it had are lost workers (their tasks run again elsewhere or
when the server is back: at-least-once, a task may run twice), and it tries again after the failure
policy's backoff (1 s doubling to 60 s, with jitter) for as long as the farm lives; a refusal (no
free slot, a stopping server) is retried the same way.

``philipjose worker --stop ADDRESS`` (lfarm's end-server) sends ``(pj_server_stop, From, Ref)``:
the server answers, refuses new farms from then on, asks each of its workers to leave (SIGTERM: the
worker finishes the task it is running and reports it; its farm hands its queued tasks to others)
and exits once they have all exited. ``philipjose farm ping ADDRESS`` sends ``(pj_server_info,
From, Ref)`` and prints the answer (lfarm-admin's ping).
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

import philipjose as pj
from philipjose.actors import current_runtime
from philipjose.farm.errors import FarmError
from philipjose.farm.launch import WORKER_COMMAND, LaunchError, WorkerProcess, launch
from philipjose.farm.machines import Machine, load_machines
from philipjose.farm.policy import backoff_delay
from philipjose.term import Atom, Pid, Reference

if TYPE_CHECKING:
    from philipjose.node.tls import TLSFiles

__all__ = [
    "SERVER",
    "ServerAddress",
    "ServerStatus",
    "grant",
    "parse_address",
    "serve_server",
    "server_node_name",
    "session",
    "split_servers",
]

SERVER: Final = Atom("pj_server")
SERVE: Final = Atom("pj_serve")
SERVING: Final = Atom("pj_serving")
REFUSED: Final = Atom("pj_server_refused")
STOP: Final = Atom("pj_server_stop")
STOPPING: Final = Atom("pj_server_stopping")
INFO: Final = Atom("pj_server_info")
INFO_REPLY: Final = Atom("pj_server_info_reply")

CONNECTING: Final = "connecting"
SERVING_STATE: Final = "serving"
RETRYING: Final = "retrying"

_JOIN_TIMEOUT: Final = 30.0  # seconds a farm waits for a server's answer to its request
_CAME_SERVER: Final = "server"  # joining.SERVER: how the server's workers came
_LOG = logging.getLogger("philipjose.farm.server")
_NODEDOWN: Final = Atom("nodedown")
_DOWN: Final = Atom("DOWN")
_GRACE: Final = 10.0  # seconds a worker of an ended session gets to exit before it is killed
_YOUNG: Final = 5.0  # a worker that exits sooner than this after its start is restarted after a backoff
_ADDRESS = re.compile(r"(?:(?P<host>\[[^\]]+\]|[^:\s]+):)?(?P<port>[0-9]+)")


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where a server listens (``host`` as written, brackets taken off an IPv6 address) and ``port``."""

    host: str
    port: int

    @property
    def node(self) -> str:
        return server_node_name(self.host, self.port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, *, default_host: str | None = None) -> ServerAddress:
    """``[HOST:]PORT`` (``[::1]:PORT`` for IPv6) as a :class:`ServerAddress`; ``ValueError`` for
    anything else, or a port outside 1..65535. Without a host, ``default_host`` (ValueError if None)."""
    match = _ADDRESS.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an address of the form [HOST:]PORT: {text!r}")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be from 1 to 65535, not {port}")
    host = match["host"]
    if host is None:
        if default_host is None:
            raise ValueError(f"no host in {text!r} (HOST:PORT)")
        host = default_host
    return ServerAddress(host.strip("[]"), port)


def split_servers(
    machines: Sequence[Any] | str | os.PathLike[str] | None, servers: Sequence[str | ServerAddress]
) -> tuple[list[Any], list[tuple[ServerAddress, int | None]]]:
    """A farm's machines (a list, a machines file or None) and ``servers``, split into the machines
    it launches workers on and the servers it asks for workers, with the slots it wants of each
    (a ``kind = "server"`` machine's ``workers``; None: all there are)."""
    if machines is None:
        listed: list[Any] = []
    elif isinstance(machines, (str, os.PathLike)):
        listed = list(load_machines(Path(machines)).values())
    else:
        listed = list(machines)
    if isinstance(servers, str):
        raise TypeError("servers is a list of addresses, not one string")
    found: list[tuple[ServerAddress, int | None]] = [
        (s if isinstance(s, ServerAddress) else parse_address(s), None) for s in servers
    ]
    launched: list[Any] = []  # Machine and farm.Slurm records: launched by the farm
    for machine in listed:
        if getattr(machine, "kind", "ssh") == "server":
            found.append((parse_address(machine.host), machine.workers))
        else:
            launched.append(machine)
    return launched, found


def server_node_name(host: str, port: int) -> str:
    """The node name of the server listening on ``host``:``port``: ``pj_server_PORT@HOST``."""
    return f"pj_server_{port}@{host}"


def grant(slots: int, used: int, wanted: int | None, *, stopping: bool) -> int | str:
    """How many slots a farm asking for ``wanted`` (None: all there are) gets, or why none (a str)."""
    if stopping:
        return "the server is stopping"
    free = slots - used
    if free <= 0:
        return f"no free slot (all {slots} serve other farms)"
    return free if wanted is None else min(free, wanted)


@dataclass
class ServerStatus:
    """A server as a farm sees it: its ``address``, ``state`` (``"connecting"``, ``"serving"``,
    ``"retrying"``), the ``slots`` it granted, failures in a row, the ``last_error`` and, while
    retrying, when the next attempt is due (``retry_at``, on the farm's monotonic clock)."""

    address: str
    state: str = CONNECTING
    slots: int = 0
    failures: int = 0
    last_error: str | None = None
    retry_at: float | None = None
    settled: trio.Event = field(default_factory=trio.Event, repr=False, compare=False)


# -- the farm's side ----------------------------------------------------------------------------------


async def session(
    address: ServerAddress, status: ServerStatus, farmer_port: int, wanted: int | None, closing: trio.Event
) -> None:
    """A farm's session with one server (a process of the farmer's runtime; see the module doc).

    Runs until it is killed (the farm closes) or ``closing`` is set."""
    node = Atom(address.node)
    dist = pj.node.current()
    dist.peer_ports[str(node)] = address.port
    dist.allow_mixed_names = True  # a server's name is its address, long or short as it comes
    me = pj.self()
    while not closing.is_set():
        status.state, status.retry_at = CONNECTING, None
        served = False
        if await pj.node.connect(str(node)):
            pj.node.monitor_node(str(node))
            request = (SERVE, me, dist.name, farmer_port, -1 if wanted is None else wanted)
            pj.send((SERVER, node), request)
            try:
                reply = await pj.receive(_reply_from(node), timeout=_JOIN_TIMEOUT)
            except TimeoutError:
                reply = (
                    REFUSED,
                    f"no answer within {_JOIN_TIMEOUT:g} s: is it a philipjose server?".encode(),
                )
            if reply[0] == SERVING:
                served = True
                status.state, status.slots, status.failures, status.last_error = (
                    SERVING_STATE,
                    reply[1],
                    0,
                    None,
                )
                status.settled.set()
                _LOG.info("server %s serves this farm with %d slot(s)", address, reply[1])
                await pj.receive(lambda m: m == (_NODEDOWN, node))
                status.slots = 0
                status.last_error = "it went away (its connection was lost)"
                if not closing.is_set():
                    _LOG.warning("server %s went away; its workers' tasks run again; reconnecting", address)
            elif reply[0] == REFUSED:
                status.last_error = f"it refused: {_text(reply[1])}"
                pj.node.disconnect(str(node))
                await pj.receive(lambda m: m == (_NODEDOWN, node))
            else:  # the node went down before it answered
                status.last_error = "its connection was lost before it answered"
        else:
            status.last_error = dist.connect_errors.get(node, "the connection failed")
            if "calls itself" in status.last_error:
                status.last_error += f" (start it with --listen {address} or use the address it names)"
        if closing.is_set():
            return
        status.failures = 1 if served else status.failures + 1
        delay = backoff_delay(status.failures, random.random())
        status.state, status.retry_at = RETRYING, trio.current_time() + delay
        status.settled.set()
        _LOG.log(
            logging.INFO if served else logging.WARNING,
            "server %s: %s; trying again in %.1f s",
            address,
            status.last_error,
            delay,
        )
        await trio.sleep(delay)


def _reply_from(node: Atom) -> Any:
    def match(msg: Any) -> bool:
        if type(msg) is not tuple or not msg:
            return False
        if msg[0] == SERVING:
            return len(msg) == 2 and type(msg[1]) is int
        if msg[0] == REFUSED:
            return len(msg) == 2
        return msg == (_NODEDOWN, node)

    return match


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if type(value) is bytes else str(value)


# -- the server's side --------------------------------------------------------------------------------


@dataclass
class _Farm:
    session: Pid
    farmer: Atom
    port: int
    ref: Reference
    granted: int
    scopes: list[trio.CancelScope] = field(default_factory=list)  # its slots' workers
    ended: bool = False

    def end(self) -> None:
        self.ended = True
        for scope in self.scopes:
            scope.cancel()


class _Server:
    def __init__(self, address: ServerAddress, slots: int, worker_args: list[str], secret: bytes) -> None:
        self.address = address
        self.slots = slots
        self.worker_args = worker_args
        self.secret = secret
        self.farms: dict[Pid, _Farm] = {}
        self.processes: set[WorkerProcess] = set()
        self._stop = trio.Event()
        self.workers_done = trio.Event()

    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def used(self) -> int:
        return sum(f.granted for f in self.farms.values())

    def worker_argv(self, farm: _Farm) -> list[str]:
        return [
            *WORKER_COMMAND,
            "--join",
            str(farm.farmer),
            "--farmer-port",
            str(farm.port),
            "--lifeline",
            "--came",
            _CAME_SERVER,
            "--origin",
            str(self.address),
            *self.worker_args,
        ]

    async def keep_slot(self, farm: _Farm) -> None:
        """Keep one worker running for ``farm`` until its session ends or the server stops."""
        failures = 0
        scope = trio.CancelScope()
        farm.scopes.append(scope)
        with scope:
            while not self.stopping() and not farm.ended:
                started = trio.current_time()
                try:
                    process = await launch(Machine("localhost"), self.worker_argv(farm), secret=self.secret)
                except LaunchError as exc:
                    failures += 1
                    _LOG.warning("cannot start a worker for %s: %s", farm.farmer, exc)
                    await trio.sleep(backoff_delay(failures, random.random()))
                    continue
                self.processes.add(process)
                try:
                    status = await process.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        if process.returncode is None:
                            await process.aclose(_GRACE)
                    self.processes.discard(process)
                    if not self.processes and self.stopping():
                        self.workers_done.set()
                if self.stopping():
                    return
                young = trio.current_time() - started < _YOUNG
                failures = failures + 1 if young else 0
                _LOG.info("a worker for %s exited (status %s); starting another", farm.farmer, status)
                if failures:
                    await trio.sleep(backoff_delay(failures, random.random()))

    def stop(self) -> None:
        if self.stopping():
            return
        self._stop.set()
        _LOG.warning("stopping: refusing new farms; %d worker(s) finish their tasks", len(self.processes))
        for process in self.processes:
            if process.returncode is None:
                process.process.send_signal(signal.SIGTERM)  # it leaves its farm once its task is done
        if not self.processes:
            self.workers_done.set()


async def serve_server(address: ServerAddress, slots: int, worker_args: Sequence[str]) -> None:
    """The server's main process (inside a node named :func:`server_node_name`); returns once stopped."""
    rt = current_runtime()
    server = _Server(address, slots, list(worker_args), pj.node.current().cookie)
    rt.register(SERVER, pj.self())
    print(
        f"philipjose worker: serving {slots} slot(s) as {address.node}; farms reach it as {address}",
        file=sys.stderr,
        flush=True,
    )
    async with trio.open_nursery() as nursery:

        async def finish() -> None:
            await server.workers_done.wait()  # set once stopping and the last worker has exited
            _LOG.info("stopped")
            nursery.cancel_scope.cancel()

        nursery.start_soon(finish)
        while True:
            _handle(server, nursery, await pj.receive())


def _handle(server: _Server, nursery: trio.Nursery, msg: Any) -> None:
    if type(msg) is not tuple or not msg:
        return
    tag = msg[0]
    if tag == SERVE and len(msg) == 5:
        _, who, farmer, port, wanted = msg
        if not (
            isinstance(who, Pid) and isinstance(farmer, Atom) and type(port) is int and type(wanted) is int
        ):
            return
        if who in server.farms:
            return
        granted = grant(server.slots, server.used, None if wanted < 0 else wanted, stopping=server.stopping())
        if isinstance(granted, str):
            _LOG.info("refused farm %s: %s", farmer, granted)
            pj.send(who, (REFUSED, granted.encode()))
            return
        farm = _Farm(who, farmer, port, pj.monitor(who), granted)
        server.farms[who] = farm
        pj.send(who, (SERVING, granted))
        _LOG.info("serving farm %s with %d slot(s)", farmer, granted)
        for _ in range(granted):
            nursery.start_soon(server.keep_slot, farm)
    elif tag == _DOWN and len(msg) == 5:
        farm = server.farms.pop(msg[3], None)  # type: ignore[arg-type]
        if farm is not None:
            _LOG.info("farm %s is gone (%s): its %d slot(s) are free", farm.farmer, msg[4], farm.granted)
            farm.end()
    elif tag == STOP and len(msg) == 3 and isinstance(msg[1], Pid):
        pj.send(msg[1], (STOPPING, msg[2], len(server.processes)))
        server.stop()
    elif tag == INFO and len(msg) == 3 and isinstance(msg[1], Pid):
        info = (
            str(server.address).encode(),
            server.slots,
            server.used,
            len(server.farms),
            Atom("true" if server.stopping() else "false"),
            os.getpid(),
        )
        pj.send(msg[1], (INFO_REPLY, msg[2], info))


# -- the admin's side: stop and ping ------------------------------------------------------------------


async def ask(address: ServerAddress, request: Atom, timeout: float) -> Any:
    """Send ``(request, self(), Ref)`` to the server at ``address`` (from a node with its cookie)
    and return its answer's third element; ``FarmError`` when it cannot be reached or does not
    answer within ``timeout`` seconds."""
    node = address.node
    dist = pj.node.current()
    dist.peer_ports[node] = address.port
    dist.allow_mixed_names = True
    reply_tag = STOPPING if request == STOP else INFO_REPLY
    with trio.move_on_after(timeout) as scope:
        if not await pj.node.connect(node):
            raise FarmError(f"server {address} is not reachable: {dist.connect_errors.get(Atom(node), '')}")
        ref = current_runtime().make_ref()
        pj.send((SERVER, Atom(node)), (request, pj.self(), ref))
        reply = await pj.receive(lambda m: type(m) is tuple and len(m) == 3 and m[:2] == (reply_tag, ref))
        return reply[2]
    assert scope.cancelled_caught
    raise FarmError(f"server {address} did not answer within {timeout:g} s")


def describe_info(info: Any) -> str:
    """One line for ``farm ping``: ``ADDRESS: alive, SLOTS slots, USED in use by FARMS farm(s)``."""
    if type(info) is not tuple or len(info) != 6:
        return f"an unexpected answer: {info!r}"
    address, slots, used, farms, stopping, os_pid = info
    state = "stopping" if stopping == Atom("true") else "alive"
    return f"{_text(address)}: {state}, {slots} slot(s), {used} in use by {farms} farm(s) (pid {os_pid})"


def worker_tls_args(files: TLSFiles | None) -> list[str]:
    return [] if files is None else files.argv()
