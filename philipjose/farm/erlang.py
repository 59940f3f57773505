"""Erlang workers: already running Erlang and Elixir nodes that run a farm's Erlang tasks.

``Farm(erlang_nodes=["calc@build-8", ...])`` (or machines of ``kind = "erlang"``) adds each node as a
worker of kind ``"erlang"`` beside the Python workers. A task given as ``farm.Erl(module, function,
args)`` (or ``farm.erl(module, function)`` as the function of ``submit``, ``map``, ``reduce``,
``broadcast``) runs on one of them; Python tasks never do, and Erlang tasks never run on Python
workers (the scheduler's kinds, :mod:`philipjose.farm.scheduler`).

Theory of operation
-------------------
Each node has a *keeper*: a child of the workers' supervisor (id ``e<N>``), beside the keepers of the
Python slots. A keeper connects to its node by distribution (the farmer node's cookie, and TLS when
the farmer node speaks TLS), asks it ``erlang:system_info(schedulers_online)`` (its capacity: how many
tasks it runs at once, unless the node's ``workers`` says) and ``os:getpid()``, registers it with the
scheduler and watches it (``monitor_node``) until the connection goes down. Connecting is the
"launch" of the failure policy (:mod:`philipjose.farm.policy`): a node that does not answer is tried
again after its backoff, and after ``max_launch_failures`` in a row it is down; a node lost while it
ran tasks has them queued again (the scheduler charges them its death) and is reconnected at once,
so it comes back as a worker as soon as it answers again. When every Erlang node is down, the live
and later Erlang tasks fail with ``FarmError`` (the farm's other kind goes on).

An assignment is carried out at once, from the farm's loop: a SPAWN_REQUEST of
``erpc:execute_call(Ref, M, F, A)`` with a monitor, sent on behalf of the node's keeper, whose mailbox
gets the ``spawn_reply`` (the task's process id on the node) and then the ``DOWN`` whose reason is
the outcome, read as ``erpc:call`` reads it (:func:`philipjose.rpc.reasons.outcome`). A revoked task
(a race's loser, a cancel, a timeout, a speculation loser) is killed with ``exit(Pid, kill)`` at once,
or as soon as its pid arrives; its ``DOWN`` then frees its place on the node. A ``DOWN`` with reason
``noconnection`` is the node's loss, not the task's outcome. The keeper is the caller of every request:
when it ends (its node is lost, the farm closes) the tasks still running there are killed if the
connection is up.

Outcomes: a value is the task's result; an Erlang exception is a :class:`~philipjose.farm.errors.TaskError`
whose ``remote_type`` is ``erlang.error``, ``erlang.exit`` or ``erlang.throw``, whose ``message`` is
the reason in Erlang syntax and whose ``__cause__`` is the :class:`~philipjose.rpc.RemoteError`
(``kind``, ``reason``, ``stacktrace``). A journaled Erlang task's key is the digest of its MFA in the
external term format.

Chunks: ``map`` with ``chunksize`` items per task runs ``lists:map(fun M:F/1, Items)`` (two or three
iterables: ``lists:zipwith/3``, ``lists:zipwith3/4``); ``reduce`` runs ``lists:foldr(fun M:F/2, Last,
Rest)`` on each piece, which for an associative ``F`` is ``F(F(X1, X2), X3)...`` in order, and combines
the partial results the same way in one more Erlang task.
"""

from __future__ import annotations

import functools
import logging
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import trio

import philipjose as pj
from philipjose import rpc, supervisors
from philipjose.actors.runtime import current_process
from philipjose.farm.errors import FarmError
from philipjose.farm.machines import Machine
from philipjose.farm.policy import Verdict
from philipjose.farm.scheduler import Assignment, Revocation
from philipjose.farm.shipping import Raised, Returned, dumps_outcome, dumps_task
from philipjose.io import format_string
from philipjose.node import control as c
from philipjose.node.errors import MessageTooLarge
from philipjose.rpc.errors import RemoteError, RpcError
from philipjose.rpc.reasons import outcome as erpc_outcome
from philipjose.rpc.serve import ERPC, EXECUTE_CALL
from philipjose.rpc.spawn import Request, flush_nodedown
from philipjose.term import Atom, ExportFun, Pid, Reference, binary_to_term, term_to_binary

if TYPE_CHECKING:
    from philipjose.farm.farm import Farm, WorkerInfo

__all__ = [
    "ERLANG",
    "PYTHON",
    "Erl",
    "ErlFunction",
    "ErlangWorkerId",
    "ErlangWorkers",
    "elixir",
    "encode_task",
    "erl",
    "erlang_function",
    "erlang_machine",
    "farmer_host_for",
    "is_erlang",
    "map_payloads",
    "map_tasks",
    "outcome_of",
    "reduce_task",
]

PYTHON: Final = "python"
"""The kind of Python tasks and workers (the scheduler's default)."""
ERLANG: Final = "erlang"
"""The kind of Erlang tasks and of the Erlang nodes that run them."""

_LOG = logging.getLogger("philipjose.farm")
_SPAWN_REPLY: Final = Atom("spawn_reply")
_DOWN: Final = Atom("DOWN")
_NODEDOWN: Final = Atom("nodedown")
_NOCONNECTION: Final = Atom("noconnection")
_OK: Final = Atom("ok")
_KILL: Final = Atom("kill")
_MONITOR: Final = Atom("monitor")
_LISTS: Final = Atom("lists")
_JOIN_TIMEOUT: Final = 10.0  # seconds a node that connected gets to answer the farm's questions


def _atom(value: Any, what: str) -> Atom:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise TypeError(f"an Erlang {what} name must be a str of 1 to 255 characters, not {value!r}")
    return value if type(value) is Atom else Atom(value)


@dataclass(frozen=True, slots=True, init=False)
class Erl:
    """An Erlang task: ``module:function(*args)`` run on an Erlang worker (``erpc:call`` there).

    ``args`` are Python values in the term mapping of ``docs/terms.md`` (a ``str`` goes as a binary;
    use ``philipjose.Atom`` for atoms, a list of ints for a charlist). Elixir modules by their full name:
    ``Erl(farm.elixir("String"), "upcase", ["abc"])``. Give it to ``Farm.submit``, ``race`` or
    ``Executor.submit`` as the task itself (no further arguments).
    """

    module: Atom
    function: Atom
    args: tuple[Any, ...]

    def __init__(self, module: str, function: str, args: Iterable[Any] = ()) -> None:
        if isinstance(args, (str, bytes)):
            raise TypeError(f"args must be a list or tuple of arguments, not {type(args).__name__}")
        object.__setattr__(self, "module", _atom(module, "module"))
        object.__setattr__(self, "function", _atom(function, "function"))
        object.__setattr__(self, "args", tuple(args))

    def encode(self) -> bytes:
        """The task as shipped and journaled: ``{Module, Function, Args}`` in the external term format."""
        return term_to_binary((self.module, self.function, list(self.args)))

    def describe(self) -> str:
        return f"{self.module}:{self.function}/{len(self.args)}"

    def __repr__(self) -> str:
        return f"Erl({str(self.module)!r}, {str(self.function)!r}, {list(self.args)!r})"


@dataclass(frozen=True, slots=True, init=False)
class ErlFunction:
    """An Erlang function ``module:function`` used where the farm takes a function: ``farm.map(
    farm.erl("lists", "sum"), chunks)``, ``farm.submit(farm.erl("erlang", "phash2"), x)``. Calling it
    makes the task: ``farm.erl("lists", "sum")([1, 2])`` is ``Erl("lists", "sum", [[1, 2]])``."""

    module: Atom
    function: Atom

    def __init__(self, module: str, function: str) -> None:
        object.__setattr__(self, "module", _atom(module, "module"))
        object.__setattr__(self, "function", _atom(function, "function"))

    def __call__(self, *args: Any) -> Erl:
        return Erl(self.module, self.function, args)

    def fun(self, arity: int) -> ExportFun:
        """``fun Module:Function/Arity``."""
        return ExportFun(self.module, self.function, arity)

    def __repr__(self) -> str:
        return f"erl({str(self.module)!r}, {str(self.function)!r})"


def erl(module: str, function: str) -> ErlFunction:
    """The Erlang function ``module:function`` as a farm task's function (see :class:`ErlFunction`)."""
    return ErlFunction(module, function)


def elixir(module: str) -> Atom:
    """The Erlang name of the Elixir module ``module``: ``elixir("String")`` is ``'Elixir.String'``."""
    name = module if module.startswith("Elixir.") else f"Elixir.{module}"
    return _atom(name, "module")


def is_erlang(fn: object) -> bool:
    """Whether ``fn`` (a task's function) is an Erlang task or function."""
    return isinstance(fn, (Erl, ErlFunction))


def erlang_function(fn: object) -> ErlFunction | None:
    """``fn`` as the Erlang function of a ``map`` or ``reduce``; None for a Python function.
    ``TypeError`` for an :class:`Erl` (a whole task, not a function)."""
    if isinstance(fn, Erl):
        raise TypeError(f"{fn!r} is a whole task; map and reduce take farm.erl(module, function)")
    return fn if isinstance(fn, ErlFunction) else None


def encode_task(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bytes, str, str]:
    """``(payload, description, kind)`` of the task ``fn(*args, **kwargs)``: an Erlang one for an
    :class:`Erl` or :class:`ErlFunction`, else a pickled Python one."""
    if not is_erlang(fn):
        from philipjose.farm.shipping import describe_task

        return dumps_task(fn, args, kwargs), describe_task(fn), PYTHON
    if kwargs:
        raise TypeError(f"an Erlang task takes no keyword arguments, got {sorted(kwargs)}")
    if isinstance(fn, Erl):
        if args:
            raise TypeError(f"{fn!r} is a whole task: it takes no further arguments")
        task = fn
    else:
        task = fn(*args)
    return task.encode(), task.describe(), ERLANG


def map_tasks(fn: ErlFunction, chunks: Sequence[Sequence[tuple[Any, ...]]]) -> list[Erl]:
    """The Erlang tasks of ``map(fn, ...)``: one per chunk of argument tuples (one to three
    iterables zipped), each returning the list of its results (see the module docstring)."""
    tasks = []
    for chunk in chunks:
        width = len(chunk[0]) if chunk else 1
        columns = [[item[i] for item in chunk] for i in range(width)]
        if width == 1:
            tasks.append(Erl(_LISTS, "map", [fn.fun(1), columns[0]]))
        elif width == 2:
            tasks.append(Erl(_LISTS, "zipwith", [fn.fun(2), *columns]))
        elif width == 3:
            tasks.append(Erl(_LISTS, "zipwith3", [fn.fun(3), *columns]))
        else:
            raise ValueError(f"map over {width} iterables: an Erlang function takes one to three")
    return tasks


def map_payloads(
    fn: Any, chunks: Sequence[Sequence[tuple[Any, ...]]], run_chunk: Callable[..., Any]
) -> tuple[str, Iterator[bytes]]:
    """``(kind, payloads)`` of a map's tasks: :func:`map_tasks` for an Erlang function, else
    ``run_chunk(fn, chunk)`` pickled for each chunk. The payloads are made as they are taken, so a
    caller on the farm's loop can let it run between them (:meth:`Farm.map`)."""
    erl_fn = erlang_function(fn)
    if erl_fn is None:
        return PYTHON, (dumps_task(run_chunk, (fn, list(chunk))) for chunk in chunks)
    return ERLANG, (task.encode() for task in map_tasks(erl_fn, chunks))


def reduce_task(fn: ErlFunction, items: Sequence[Any]) -> Erl:
    """The Erlang task reducing ``items`` (at least one) with the associative ``fn``, in order."""
    if not items:
        raise ValueError("reduce_task needs at least one item")
    return Erl(_LISTS, "foldr", [fn.fun(2), items[-1], list(items[:-1])])


def outcome_of(ok: bool, value: Any) -> Returned | Raised:
    """A farm outcome from an ``erpc`` outcome: the value, or the Erlang exception as a
    :class:`Raised` whose rebuilt error has the :class:`~philipjose.rpc.RemoteError` as its cause."""
    if ok:
        return Returned(value)
    if isinstance(value, RemoteError):
        kind = f"erlang.{value.kind}"
        message = format_string("~0tp", [value.reason])
        trace = "".join(format_string("    ~0tp~n", [frame]) for frame in value.stacktrace)
    else:
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        message, trace = str(value), ""
    try:
        pickled: bytes | None = pickle.dumps(value)
    except (pickle.PicklingError, TypeError, AttributeError):
        pickled = None
    return Raised(kind, message, trace, pickled)


def erlang_machine(node: str | Machine) -> Machine:
    """The machine record of an Erlang worker node (a node name, or a ``kind = "erlang"`` Machine)."""
    if isinstance(node, Machine):
        if node.kind != ERLANG:
            raise ValueError(f"erlang_nodes takes node names or machines of kind 'erlang', not {node!r}")
        return node
    return Machine(node, kind=ERLANG)


def farmer_host_for(nodes: Sequence[Machine]) -> str | None:
    """The host the farmer's node is named after so that these Erlang nodes can talk to it: short
    names (``w1@build-8``, no dot) need a short-named farmer (Erlang refuses to mix the two), so the
    first such node's host; None when they all have long names (the farm's default works)."""
    for machine in nodes:
        host = machine.host.partition("@")[2]
        if "." not in host and ":" not in host:
            return host
    return None


@dataclass(frozen=True, slots=True)
class ErlangWorkerId:
    """How the scheduler knows one life of an Erlang worker: its node and the how-manyth connection."""

    node: Atom
    life: int

    def __repr__(self) -> str:
        return f"<erlang worker {self.node} #{self.life}>"


@dataclass(slots=True)
class _Call:
    task_id: int
    req_id: Reference
    res: Reference
    started: float
    pid: Pid | None = None
    killed: bool = False


@dataclass(eq=False)
class _Node:
    index: int
    machine: Machine
    name: Atom
    keeper: Pid | None = None
    leader: Pid | None = None
    worker: ErlangWorkerId | None = None
    life: int = 0
    info: WorkerInfo | None = None
    calls: dict[int, _Call] = field(default_factory=dict)  # by task id
    by_req: dict[Reference, int] = field(default_factory=dict)
    settled: trio.Event = field(default_factory=trio.Event)  # it came up, failed once or retired


class ErlangWorkers:
    """The Erlang workers of one farm (see the module docstring). The farm calls :meth:`assign` and
    :meth:`revoke` for decisions about them; each returns False for a worker that is not Erlang."""

    def __init__(self, farm: Farm, machines: Sequence[Machine]) -> None:
        self._farm = farm
        self._nodes = [_Node(i, m, Atom(m.host)) for i, m in enumerate(machines)]
        self._by_worker: dict[ErlangWorkerId, _Node] = {}
        self._service: rpc.RpcService | None = None  # the farmer node's, set by the first keeper

    @property
    def hosts(self) -> list[str]:
        """The nodes' names, as the failure policy knows them."""
        return [n.machine.host for n in self._nodes]

    def child_specs(self) -> list[supervisors.ChildSpec]:
        """One transient keeper per node, id ``e<N>``."""
        return [
            supervisors.child_spec(
                {"id": f"e{n.index}", "start": (self._keep, n), "restart": "transient", "shutdown": 5}
            )
            for n in self._nodes
        ]

    async def settled(self) -> None:
        """Wait until every node has come up, failed once, or retired."""
        for node in self._nodes:
            await node.settled.wait()

    def any_up(self) -> bool:
        return bool(self._by_worker)

    def infos(self) -> list[WorkerInfo]:
        return [n.info for n in self._nodes if n.info is not None]

    def live(self) -> list[tuple[ErlangWorkerId, str]]:
        """``(worker, machine host)`` of each Erlang worker up."""
        return [(w, n.machine.host) for w, n in self._by_worker.items()]

    def settle_all(self) -> None:
        for node in self._nodes:
            node.settled.set()

    # -- decisions carried out -------------------------------------------------------------------

    def assign(self, a: Assignment[Any]) -> bool:
        """Start the assigned Erlang task now (False: not an Erlang worker's assignment)."""
        if type(a.worker) is not ErlangWorkerId:
            return False
        node = self._by_worker.get(a.worker)
        service = self._service
        if node is None or node.keeper is None or node.leader is None or service is None:
            return True  # it is being lost: its nodedown requeues the task
        module, function, args = binary_to_term(a.payload)
        rt = service.node.rt
        res, req_id = rt.make_ref(), rt.make_ref()
        service.pending[req_id] = Request(node.keeper, node.name, "yes")
        event = c.SpawnRequest(
            req_id, node.keeper, node.leader, ERPC, EXECUTE_CALL, 4, [_MONITOR], [res, module, function, args]
        )
        node.calls[a.task_id] = _Call(a.task_id, req_id, res, trio.current_time())
        node.by_req[req_id] = a.task_id
        try:
            service.node.send_control(node.name, event)
        except MessageTooLarge as exc:
            service.pending.pop(req_id, None)
            self._finish(node, a.task_id, outcome_of(False, exc))
        return True

    def revoke(self, d: Revocation) -> bool:
        """Kill the revoked Erlang task's process (False: not an Erlang worker's revocation)."""
        if type(d.worker) is not ErlangWorkerId:
            return False
        node = self._by_worker.get(d.worker)
        call = None if node is None else node.calls.get(d.task_id)
        if node is not None and call is not None and not call.killed:
            call.killed = True
            if call.pid is not None and node.keeper is not None:
                self._kill(node, call.pid)
        return True

    def _kill(self, node: _Node, pid: Pid) -> None:
        rt = self._farm._rt
        assert rt is not None and node.keeper is not None
        rt.exit(node.keeper, pid, _KILL)

    def _finish(self, node: _Node, task_id: int, outcome: Returned | Raised) -> None:
        """The task's process on ``node`` ended with ``outcome``: report it to the scheduler."""
        call = node.calls.pop(task_id, None)
        if call is not None:
            node.by_req.pop(call.req_id, None)
        worker = node.worker
        if worker is None:
            return
        farm = self._farm
        ok = isinstance(outcome, Returned)
        result = outcome if isinstance(outcome, Returned) else outcome.to_error()
        try:
            decisions = farm._sched.result(worker, task_id, result, ok=ok)
        except LookupError:
            return
        if decisions and node.info is not None:
            node.info.tasks_done += 1
        if decisions and ok and call is not None and farm.speculation is not None:
            farm._runtimes.append(trio.current_time() - call.started)
        if decisions and task_id in farm._keys:
            farm._record(task_id, dumps_outcome(outcome), ok)
        farm._apply(decisions)

    # -- the keepers ----------------------------------------------------------------------------

    async def _keep(self, node: _Node) -> None:
        """A supervised child: keeps ``node`` in the farm, one connection after another."""
        farm = self._farm
        node.keeper = pj.self()
        self._service = rpc.current_service()
        node.leader = farm._rt.group_leader_of(current_process()) if farm._rt is not None else None
        try:
            await farm._lives(node.machine.host, functools.partial(self._live, node))
        finally:
            self._gone(node, "the farm stopped it")  # if it is still up (a keeper that crashed)
            node.keeper = None
            node.settled.set()

    async def _live(self, node: _Node) -> Verdict:
        """One connection to ``node``: connect, join it, serve its tasks until it is lost."""
        farm = self._farm
        host = node.machine.host
        token = farm._policy.launching(host)
        joined = await self._join(node)
        if isinstance(joined, str):
            node.settled.set()
            return farm._policy.lost(host, trio.current_time(), token=token, came_up=False, how=joined)
        how = "the farm stopped it"  # unless its connection goes down first
        try:
            how = await self._serve(node)
        finally:
            tasks = self._gone(node, how)
        return farm._policy.lost(
            host, trio.current_time(), token=token, came_up=True, how=how, worker=host, tasks=tasks
        )

    async def _join(self, node: _Node) -> int | str:
        """Connect to the node and register it as a worker: its capacity, or why it did not join."""
        from philipjose.farm.farm import WorkerInfo

        farm = self._farm
        name = node.name
        if not await pj.node.connect(name):
            return "did not answer (no connection: is it running, with the farm's cookie?)"
        pj.node.monitor_node(name)
        try:
            capacity = node.machine.workers or await rpc.call(
                name, "erlang", "system_info", [Atom("schedulers_online")], timeout=_JOIN_TIMEOUT
            )
            os_pid = await rpc.call(name, "os", "getpid", [], timeout=_JOIN_TIMEOUT)
        except (RpcError, TimeoutError) as exc:
            return await self._not_joined(name, f"connected but did not answer the farm ({exc})")
        if type(capacity) is not int or capacity < 1:
            return await self._not_joined(name, f"answered schedulers_online with {capacity!r}")
        node.life += 1
        worker = node.worker = ErlangWorkerId(name, node.life)
        self._by_worker[worker] = node
        node.info = WorkerInfo(
            str(name),
            str(name).partition("@")[2],
            int(bytes(os_pid)) if type(os_pid) is list and all(type(x) is int for x in os_pid) else None,
            machine=node.machine.host,
        )
        farm._policy.worker_up(node.machine.host)
        farm._sched.worker_up(worker, kind=ERLANG, capacity=capacity)
        _LOG.info("Erlang worker %s joined the farm (%d tasks at once)", name, capacity)
        node.settled.set()
        farm._first_up.set()
        farm._apply([])
        return capacity

    @staticmethod
    async def _not_joined(name: Atom, how: str) -> str:
        pj.node.demonitor_node(name)
        await flush_nodedown(name)  # the watch's nodedown, if the connection went down meanwhile
        return how

    async def _serve(self, node: _Node) -> str:
        """Read the replies and ``DOWN``s of the node's tasks until its connection goes down."""
        while True:
            msg: Any = await pj.receive()
            if type(msg) is not tuple:
                continue
            if len(msg) == 2 and msg[0] == _NODEDOWN and msg[1] == node.name:
                return "its connection was lost"
            if len(msg) == 4 and msg[0] == _SPAWN_REPLY:
                task_id = node.by_req.get(msg[1])
                call = None if task_id is None else node.calls.get(task_id)
                if call is None:
                    continue
                if msg[2] == _OK and type(msg[3]) is Pid:
                    call.pid = msg[3]
                    if call.killed:
                        self._kill(node, call.pid)
                else:
                    self._finish(node, call.task_id, outcome_of(False, rpc.BadRpc(msg[3])))
            elif len(msg) == 5 and msg[0] == _DOWN:
                task_id = node.by_req.get(msg[1])
                call = None if task_id is None else node.calls.get(task_id)
                if call is None or msg[4] == _NOCONNECTION:
                    continue  # the node's loss, not the task's outcome: its nodedown follows
                self._finish(node, call.task_id, outcome_of(*erpc_outcome(call.res, msg[4])))

    def _gone(self, node: _Node, how: str) -> int:
        """The node's worker is lost (or stopping): kill what still runs there if the connection is
        up, and let the scheduler queue its tasks again. Returns how many live tasks it held."""
        worker, node.worker = node.worker, None
        if worker is None:
            return 0
        farm = self._farm
        self._by_worker.pop(worker, None)
        service = self._service
        assert service is not None
        peer = service.node.peers.get(node.name)
        for call in node.calls.values():
            service.pending.pop(call.req_id, None)
            if call.pid is not None and peer is not None and peer.up and node.keeper is not None:
                self._kill(node, call.pid)
        node.calls.clear()
        node.by_req.clear()
        with_tasks = sum(1 for t in farm._sched.in_flight(worker) if farm._sched.assigned_worker(t) == worker)
        if node.info is not None and node.info.alive:
            node.info.alive = False
            node.info.cause = how
        farm._causes[worker] = how  # type: ignore[index]
        farm._apply(farm._sched.worker_down(worker))
        return with_tasks


def no_workers_error(kind: str) -> FarmError:
    """The error of a task of ``kind`` submitted to a farm that has no worker of that kind."""
    if kind == ERLANG:
        return FarmError("this farm has no Erlang workers (give Farm(erlang_nodes=[...]))")
    return FarmError("this farm has no Python workers (give Farm(workers=N) or machines=...)")
