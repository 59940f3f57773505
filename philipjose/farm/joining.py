"""Workers that join a farm on their own: ``philipjose worker --join FARMER_NODE``.

A farm made with ``Farm(accept_workers=True)`` accepts workers it did not start (started by hand, by
systemd, by a Kubernetes Deployment, or by a ``philipjose worker --listen`` server for its farms:
:mod:`philipjose.farm.server`) beside the ones it launches. This module holds both sides of the join
and the farm's decisions about joined workers, as pure functions.

Theory of operation
-------------------
The farmer's node is named ``Farm.node``; its cookie is ``Farm.cookie``. A joining worker starts a
hidden node with that cookie and connects to the farmer's node (found through the EPMD of the
farmer's host, or at ``--farmer-port``): the distribution handshake proves the cookie both ways, so a
worker with a wrong secret is refused by the farmer's node (which logs ``refused a connection from
ADDRESS (claims to be NODE): wrong cookie``) before it can send anything, and a worker never runs
a task from a node that did not prove the cookie. It then sends a *join request* to the farm's
*door*, a process registered as :data:`DOOR` on the farmer's node (one farm per node accepts
workers), which hands it to the farmer process. The farmer decides (:func:`refusal`), answers
``pj_welcome`` with the farm's registered name and its message limit (or ``pj_join_refused`` with a
reason), makes the worker a *joined* slot, monitors its node and gives it work at once (like a
launched worker that came up: the initializer first). From then on the worker speaks the launched
workers' protocol (:mod:`philipjose.farm.worker`).

A joined worker is not restarted by the farm (it has no way to): when its node goes down its tasks
are charged and queued again as for any lost worker (the scheduler's ``max_deaths``), and it is
logged (:func:`lost_message`). The farm kills one on purpose (a race's loser that will not stop) by
closing its connection: the worker exits, and whatever started it (systemd's ``Restart=``, a
Deployment, a server) may start it again. A worker asked to leave (SIGTERM: systemd's stop,
Kubernetes' scale-down, ``philipjose worker --stop`` of its server) sends ``pj_leave``: the farm
takes it off the scheduler at once (its queued tasks go to other workers, charged nothing), the
task it is running finishes and is reported, then it sends ``pj_left`` and the farm answers
``pj_stop``.

``min_workers=N``: the farm does not dispatch before N workers (launched, joined or from servers)
have been up at the same time once (:func:`dispatch_open`); tasks submitted meanwhile queue up.
From then on it dispatches to whatever workers there are, even fewer than N.

Protocol (Erlang terms, over a connection that proved the cookie):

- worker -> ``{pj_farm_door, FarmerNode}``: ``(pj_worker_join, WorkerPid, Host :: binary, OsPid ::
  int, Came :: joined | server, Origin :: binary, MaxMessageSize :: int)``;
- farmer -> worker: ``(pj_welcome, FarmName :: atom, MaxMessageSize :: int)`` or
  ``(pj_join_refused, Reason :: binary)``;
- worker -> ``{FarmName, FarmerNode}``: ``(pj_leave, WorkerPid)``, later ``(pj_left, WorkerPid)``.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio

import philipjose as pj
from philipjose.actors import Runtime
from philipjose.farm.errors import FarmError
from philipjose.farm.machines import Machine
from philipjose.farm.server import ServerAddress, ServerStatus, session
from philipjose.term import Atom, Pid

if TYPE_CHECKING:
    from philipjose.farm.farm import Farm, _Slot

__all__ = [
    "DOOR",
    "JOIN",
    "JOINED",
    "LAUNCHED",
    "LEAVE",
    "LEFT",
    "REFUSED",
    "SERVER",
    "WELCOME",
    "JoinDesk",
    "JoinRefused",
    "JoinRequest",
    "dispatch_open",
    "join",
    "joiner_name",
    "lost_message",
    "parse_join",
    "refusal",
    "to_forget",
]

DOOR: Final = Atom("pj_farm_door")
JOIN: Final = Atom("pj_worker_join")
WELCOME: Final = Atom("pj_welcome")
REFUSED: Final = Atom("pj_join_refused")
LEAVE: Final = Atom("pj_leave")
LEFT: Final = Atom("pj_left")

LAUNCHED: Final = "launched"
"""How a worker came: started by the farm on one of its machines."""
JOINED: Final = "joined"
"""How a worker came: it joined on its own (``philipjose worker --join``)."""
SERVER: Final = "server"
"""How a worker came: started for the farm by a ``philipjose worker --listen`` server."""

KEPT_LOST: Final = 1000
"""How many lost joined workers a farm remembers (in ``f.workers``); older ones are forgotten."""

JOIN_TIMEOUT: Final = 30.0
"""Seconds a joining worker waits for the farm's answer once it is connected to the farmer's node."""

_LOG = logging.getLogger("philipjose.farm")
_NODEDOWN: Final = Atom("nodedown")
_HOST_LABEL = re.compile(r"[^A-Za-z0-9._@:\[\]-]")


class JoinRefused(FarmError, ConnectionError):
    """The farm refused this worker, or never answered its join request; the message says why."""


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A worker's request to join, as checked by :func:`parse_join`."""

    pid: Pid
    host: str
    os_pid: int
    came: str  # JOINED or SERVER
    origin: str  # for SERVER: the server's address
    max_message_size: int


def parse_join(msg: Any) -> JoinRequest | None:
    """The join request in ``msg``, or None when it is not a well-formed one (it is then dropped)."""
    if type(msg) is not tuple or len(msg) != 7 or msg[0] != JOIN:
        return None
    _, pid, host, os_pid, came, origin, limit = msg
    if not isinstance(pid, Pid) or type(host) is not bytes or type(os_pid) is not int:
        return None
    if came not in (Atom(JOINED), Atom(SERVER)) or type(origin) is not bytes or type(limit) is not int:
        return None
    return JoinRequest(
        pid,
        host.decode("utf-8", "replace")[:255],
        os_pid,
        str(came),
        origin.decode("utf-8", "replace"),
        limit,
    )


def refusal(request: JoinRequest, *, closing: bool, known: bool, limit: int) -> str | None:
    """Why the farm refuses ``request`` (None: it is welcome). ``closing``: the farm is closing or
    broken; ``known``: a worker of that node is already in the farm; ``limit``: the farm's largest
    task or result, which the worker's node must accept."""
    if closing:
        return "the farm is closing"
    if known:
        return f"a worker named {request.pid.node} is already in the farm"
    if request.max_message_size < limit:
        return (
            f"this worker accepts messages of up to {request.max_message_size} bytes but the farm sends up "
            f"to {limit}: start it with --max-message-size {limit}"
        )
    return None


def dispatch_open(min_workers: int, workers_up: int, opened: bool) -> bool:
    """Whether the farm may dispatch: once ``min_workers`` workers have been up at the same time
    (``opened`` says it happened before), for the rest of the farm's life."""
    return opened or workers_up >= min_workers


def to_forget(lost: Sequence[bool], keep: int) -> set[int]:
    """Which of a farm's slots to forget (their positions): the oldest of those ``lost`` (lost
    joined workers) beyond the ``keep`` most recent."""
    positions = [i for i, gone in enumerate(lost) if gone]
    return set(positions[: max(0, len(positions) - keep)])


def lost_message(worker: str, host: str, how: str, tasks: int, came: str) -> tuple[int, str]:
    """The log line for a lost joined worker: ``(level, message)``."""
    running = f" while running {tasks} task{'s' if tasks != 1 else ''} (charged to them)" if tasks else ""
    return logging.WARNING, f"{came} worker {worker} on {host} {how}{running}; the farm does not restart it"


def joiner_name(host: str | None = None, token: str | None = None) -> str:
    """A node name for a joining worker: ``j<random>@<host>`` (a label: it connects only to its farmer)."""
    label = _HOST_LABEL.sub("-", host or socket.gethostname()) or "localhost"
    return f"j{token or secrets.token_hex(6)}@{label}"


def _machine_label(host: str) -> Machine:
    label = _HOST_LABEL.sub("-", host).lstrip("-") or "unknown"
    return Machine(label[:255])


# -- the worker's side --------------------------------------------------------------------------------


async def join(farmer: Atom, me: Pid, *, came: str, origin: str, max_message_size: int) -> tuple[Atom, int]:
    """Ask the farm on ``farmer`` (connected) to take this worker; ``(farm name, message limit)``.

    Raises :class:`JoinRefused` with the farm's reason, or when it did not answer in
    :data:`JOIN_TIMEOUT` seconds (no farm accepting workers runs on that node), or when the
    farmer's node went down meanwhile."""
    request = (
        JOIN,
        me,
        socket.gethostname().encode(),
        os.getpid(),
        Atom(came),
        origin.encode(),
        max_message_size,
    )
    pj.send((DOOR, farmer), request)

    def answer(msg: Any) -> bool:
        if type(msg) is not tuple or not msg:
            return False
        if msg[0] == WELCOME:
            return len(msg) == 3 and isinstance(msg[1], Atom) and type(msg[2]) is int
        if msg[0] == REFUSED:
            return len(msg) == 2
        return msg[0] == _NODEDOWN and msg[1:] == (farmer,)

    try:
        reply = await pj.receive(answer, timeout=JOIN_TIMEOUT)
    except TimeoutError:
        raise JoinRefused(
            f"{farmer} did not answer the join request within {JOIN_TIMEOUT:g} s: no farm there accepts "
            "workers (Farm(accept_workers=True))"
        ) from None
    if reply[0] == WELCOME:
        return reply[1], min(max_message_size, reply[2])
    if reply[0] == REFUSED:
        reason = reply[1].decode("utf-8", "replace") if type(reply[1]) is bytes else str(reply[1])
        raise JoinRefused(f"the farm on {farmer} refused this worker: {reason}")
    raise JoinRefused(f"the connection to {farmer} went down before the farm answered")


# -- the farmer's side --------------------------------------------------------------------------------


async def _door(farmer: Pid) -> None:
    """The farm's door: hands well-formed join requests to the farmer process, drops anything else."""
    while True:
        msg = await pj.receive()
        if parse_join(msg) is not None:
            pj.send(farmer, msg)


class JoinDesk:
    """The farmer's side of joining, for one :class:`~philipjose.farm.farm.Farm` (its façade calls in).

    ``accepting``: the farm takes joining workers (``accept_workers``); servers' workers join
    through the same door. ``min_workers``: see :func:`dispatch_open`.
    """

    def __init__(
        self,
        farm: Farm,
        *,
        accepting: bool,
        min_workers: int,
        servers: Sequence[tuple[ServerAddress, int | None]] = (),
    ) -> None:
        if type(min_workers) is not int or min_workers < 0:
            raise ValueError(f"min_workers must be an int >= 0, not {min_workers!r}")
        self._farm = farm
        self.accept_workers = accepting
        self.accepting = accepting or bool(servers)  # the door opens for joiners and servers' workers
        self.servers = list(servers)
        self.statuses = [ServerStatus(str(address)) for address, _ in servers]
        self._sessions: list[Pid] = []
        self._closing = trio.Event()
        self.min_workers = min_workers
        self._open = min_workers == 0
        self._door: Pid | None = None
        self._farmer: Pid | None = None
        self._changed: trio.Event | None = None  # set when the workers may have changed

    def check(self, rt: Runtime) -> None:
        """``FarmError`` if this farm cannot open its door on ``rt``'s node (another farm did)."""
        if self.accepting and rt.whereis(DOOR) is not None:
            raise FarmError(f"another farm of node {rt.node} accepts workers: one farm per node may")

    def start(self, farmer: Pid) -> None:
        """Open the door (called by the farmer process): registers :data:`DOOR` on the farmer's node
        and starts a session with each server."""
        if not self.accepting:
            return
        self._farmer = farmer
        self._door = pj.spawn(_door, farmer)
        pj.register(DOOR, self._door)
        for (address, wanted), status in zip(self.servers, self.statuses, strict=True):
            self._sessions.append(
                pj.spawn(session, address, status, self._farm._farmer_port, wanted, self._closing)
            )

    async def settled(self) -> None:
        """Wait until every server has served this farm or failed once."""
        for status in self.statuses:
            await status.settled.wait()

    def start_problem(self) -> str:
        """What the servers said, for a farm whose start found no worker."""
        said = [f"{s.address}: {s.last_error}" for s in self.statuses if s.last_error]
        return f" (servers: {'; '.join(said)})" if said else ""

    def stop(self) -> None:
        rt = self._farm._rt
        self._closing.set()
        if self._door is not None and rt is not None and self._farmer is not None:
            for pid in [self._door, *self._sessions]:
                rt.exit(self._farmer, pid, Atom("kill"))
            self._door, self._sessions = None, []

    def may_dispatch(self) -> bool:
        """The min_workers gate (see :func:`dispatch_open`); called at every change of the farm's
        books, it also wakes :meth:`changed`."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        if not self._open:
            self._open = dispatch_open(self.min_workers, len(self._farm._sched.workers()), False)
        return self._open

    async def changed(self) -> None:
        """Wait until the farm's books change (a worker came or went, a task moved)."""
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    def handle(self, msg: tuple[Any, ...]) -> bool:
        """A message for the farmer process about joined workers; False if it is none of those."""
        tag = msg[0]
        if tag == JOIN:
            request = parse_join(msg)
            if request is not None:
                self._admit(request)
            return True
        if tag in (LEAVE, LEFT) and len(msg) == 2 and isinstance(msg[1], Pid):
            slot = self._farm._by_node.get(msg[1].node)
            if slot is not None and slot.came != LAUNCHED:
                if tag == LEAVE:
                    self._leave(slot)
                else:
                    pj.send(msg[1], Atom("pj_stop"))
            return True
        if tag == _NODEDOWN and len(msg) == 2:
            slot = self._farm._by_node.get(msg[1])
            if slot is not None and slot.came != LAUNCHED:
                self._lost(slot)
                return True
        return False

    def _admit(self, request: JoinRequest) -> None:
        farm = self._farm
        node = request.pid.node
        why = refusal(
            request,
            closing=farm._closing or farm._broken is not None,
            known=node in farm._by_node,
            limit=farm._message_limit,
        )
        if why is not None:
            _LOG.warning("refused worker %s (%s) from %s: %s", node, request.came, request.host, why)
            pj.send(request.pid, (REFUSED, why.encode()))
            return
        from philipjose.farm.farm import _Slot

        machine = _machine_label(request.origin if request.came == SERVER else request.host)
        slot = _Slot(max((s.index for s in farm._slots), default=-1) + 1, machine, came=request.came)
        slot.node = node
        farm._slots.append(slot)
        farm._by_node[node] = slot
        pj.node.monitor_node(str(node))
        pj.send(request.pid, (WELCOME, farm._name, farm._message_limit))
        _LOG.info("%s worker %s joined from %s", request.came, node, request.host)
        farm._worker_up(slot, request.pid, request.host.encode(), request.os_pid)

    def _leave(self, slot: _Slot) -> None:
        farm = self._farm
        _LOG.info("%s worker %s is leaving", slot.came, slot.node)
        farm._doom(slot, "left")
        if slot.handover:
            farm._abandon_handover(slot)
        farm._apply([])

    def _lost(self, slot: _Slot) -> None:
        farm = self._farm
        if slot.doomed is None:
            how = "lost its connection"
        else:
            how = "left" if slot.doomed == "left" else f"was disconnected by the farm ({slot.doomed})"
        worker = str(slot.node)
        tasks = farm._worker_gone(slot, how)
        if slot.handover:
            farm._abandon_handover(slot)
        if slot.doomed is None:
            level, message = lost_message(worker, slot.machine.host, how, tasks, slot.came)
            _LOG.log(level, "%s", message)
        lost = [s.came != LAUNCHED and s.pid is None and s.node not in farm._by_node for s in farm._slots]
        forget = to_forget(lost, KEPT_LOST)  # the oldest lost joined workers (f.workers, the dashboard)
        if forget:
            farm._slots[:] = [s for i, s in enumerate(farm._slots) if i not in forget]
        farm._report()

    def kill(self, slot: _Slot) -> None:
        """End a joined worker on purpose: close its connection (it exits when its farmer's node goes)."""
        rt = self._farm._rt
        if slot.node is not None and rt is not None and rt.dist is not None:
            rt.dist.disconnect(slot.node)  # type: ignore[attr-defined]
