"""``Farm``: the async farmer. Starts workers on machines, ships tasks to them, resolves futures.

Theory of operation
-------------------
The farmer is a distributed philipjose node (started here under plain ``trio.run``; inside ``pj.run``
the running node is used, or started). It registers one process, the *farmer process*, that receives
what workers send (``pj_worker_up``, ``pj_done``) and the ``nodedown`` of each worker's node. All
bookkeeping is the pure :class:`~philipjose.farm.scheduler.Scheduler`: every event (a submit from the
caller's task, a report, a death, a deadline) is fed to it, and :meth:`Farm._apply` carries out the
decisions: assignments are batched per worker into ``pj_run`` messages (cut to the farm's
``max_message_size``), revocations become ``pj_revoke`` (a running task is interrupted on the
worker; when it must really stop, cancelled, timed out or a race's loser, a worker that has not
reported it within the grace of :mod:`~philipjose.farm.stopping` is killed), resolutions resolve
:class:`FarmFuture` objects.
A local worker's tasks and outcomes take its *lane* instead (:mod:`~philipjose.farm.lane`: two
pipes it inherits; ``_Slot.lane``): the batches are written to it, and the keeper's lane task hands
the outcomes that come back to :meth:`Farm._on_done` as they come, as the farmer process does with
a ``pj_done``; revocations and everything else still go over the node.
Outcomes are unpickled in a thread, those of a report of at most 16 KiB on the loop
(``decode_outcome``: whatever unpickling raises becomes that task's ``TaskError``). Trio runs one
task at a time, so the scheduler is only ever touched between awaits and needs no lock.

A worker killed on purpose is *doomed* (:meth:`Farm._doom`) at the moment of the decision, before
the kill: its slot's ``doomed`` says why ("race", "cancel", "timeout"), it leaves the scheduler at
once (``Scheduler.retire``: the tasks it held that had not started are queued again, charged
nothing) and its pinned broadcasts are held on the slot for its replacement, which gets them when
it comes up (a replacement that never comes up loses them as ``WorkerLost``).

The workers are kept by a real supervisor (:mod:`philipjose.supervisors`): the farmer process
starts a ``one_for_one`` supervisor linked to it, with one transient child per worker *slot* (one
per worker a machine should run; child id ``w<slot>``), whose ``intensity``/``period`` are the farm's
``restart_intensity``/``restart_period``. A child is a *keeper* process that keeps a worker running
in its slot, one worker *life* after another (:meth:`Farm._live`): it launches the worker OS
process (:mod:`philipjose.farm.launch`, cookie on stdin, its own process group), waits for its
``pj_worker_up`` (which the farmer process forwards to it), registers the worker with the scheduler,
calls ``monitor_node`` on it, and watches until the OS process exits or the node connection goes
down (or the worker never comes up within ``start_timeout``). It then tells the scheduler the worker
is gone (its tasks are queued again), kills and reaps the OS process, and asks the pure failure
policy (:mod:`philipjose.farm.policy`) for a verdict: the death is charged to the tasks it ran, to
nobody (the farm killed it on purpose: ``_Slot.doomed``), or to its machine (an idle crash, a failed
launch: backoff, then the machine is down); the verdict says when the next life starts, or that the
slot retires (the keeper ends normally and is not restarted). When every machine is down the farm
breaks: every unresolved task fails with :class:`~philipjose.farm.errors.FarmError`, naming each
machine and its last error, and so does every later submit. The supervisor restarts only keepers
that crash (a bug); past its intensity it exits with ``shutdown`` and the farmer process, which
traps exits, breaks the farm. Closing the farm first tells the policy (nothing is started again),
then every worker to stop, then stops the supervisor, which stops the keepers in reverse order,
each waiting for its worker process to exit (killing it after a grace period).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import math
import os
import secrets
import subprocess
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import trio

import philipjose as pj
from philipjose import supervisors
from philipjose.actors import NoProcessError, Runtime, current_runtime, run_async
from philipjose.farm import worker as w
from philipjose.farm.console import console_for
from philipjose.farm.erlang import (
    ERLANG,
    PYTHON,
    ErlangWorkers,
    encode_task,
    erlang_function,
    erlang_machine,
    farmer_host_for,
    map_payloads,
    no_workers_error,
    reduce_task,
)
from philipjose.farm.errors import (
    ArgumentsTooLarge,
    FarmError,
    InitializerFailed,
    ResultTooLarge,
    TaskError,
    TaskTimeout,
    WorkerLost,
)
from philipjose.farm.history import History
from philipjose.farm.joining import LAUNCHED, JoinDesk
from philipjose.farm.journal import Journal, Record, explicit_key, task_key
from philipjose.farm.lane import FarmerLane, LaneError
from philipjose.farm.launch import WORKER_COMMAND, LaunchError, WorkerProcess, launch
from philipjose.farm.machines import Machine
from philipjose.farm.options import OptionsView, TaskOptions
from philipjose.farm.output import LineSplitter, prefixed, receive_chunk, write_stdout_line
from philipjose.farm.policy import (
    DEFAULT_MAX_LAUNCH_FAILURES,
    DOWN,
    FailurePolicy,
    MachineStatus,
    Verdict,
    describe_exit,
)
from philipjose.farm.progress import ProgressCallback
from philipjose.farm.scheduler import (
    Assignment,
    Cancellation,
    Completion,
    Counters,
    Decision,
    Expiry,
    Loss,
    Revocation,
    Scheduler,
)
from philipjose.farm.server import ServerStatus, split_servers
from philipjose.farm.service import service_specs
from philipjose.farm.shipping import (
    Outcome,
    Returned,
    decode_outcome,
    describe_task,
    dumps_task,
    unwrap,
)
from philipjose.farm.sizes import (
    DEFAULT_MAX_MESSAGE_SIZE,
    check_max_message_size,
    frame_limit,
    split_by_size,
)
from philipjose.farm.slurm import Allocation, Slurm, close_allocations, open_allocations
from philipjose.farm.speculation import Attempt, Speculation, speculation_of, stragglers
from philipjose.farm.stopping import Stopping
from philipjose.node.tls import TLSConfig, TLSFiles
from philipjose.term import Atom, Pid

__all__ = ["DEFAULT_FARM_NET_TICKTIME", "Farm", "FarmFuture", "WorkerInfo"]

T = TypeVar("T")

DEFAULT_FARM_NET_TICKTIME = 20.0
"""The farm's ``net_ticktime`` by default (OTP's 60 s is long for a farm): a stopped or cut-off worker
is found out within 20 to 25 s, and its tasks run again."""

_LOG = logging.getLogger("philipjose.farm")

_NODEDOWN: Final = Atom("nodedown")
_EXIT: Final = Atom("EXIT")
_WAKE: Final = Atom("pj_wake")
_STOP_FARM: Final = Atom("pj_farm_stop")  # asks the farmer process to stop the supervisor and end
_EXITED: Final = Atom("pj_worker_process_exited")  # a keeper's own note: its OS process has exited
_GRACE: Final = 10.0  # seconds a closing worker gets to exit before it is killed
_EXIT_WAIT: Final = 0.5  # seconds a worker whose connection went down gets to show its exit status
_STDERR_TAIL: Final = 5  # lines of a worker's stderr kept to explain why it did not come up
_DEATH_NOTES: Final = 4096  # how many dead workers' causes of death are remembered for WorkerLost
_NO_INITIAL: Final = object()
_SUBMIT_BUDGET: Final = 0.005  # seconds a map pickles and queues tasks before it lets the loop run
_PIPELINE_CAP: Final = 32  # most tasks an adaptive pipeline hands one worker at once
_PIPELINE_START: Final = 2  # and how many before anything is known about its speed
_INLINE_DECODE: Final = 16384  # bytes of outcomes in one pj_done decoded on the loop, not in a thread
_PIPELINE_WORK: Final = 0.010  # seconds of estimated work an adaptive pipeline keeps queued per worker
_RUNTIME_SAMPLE: Final = 1024  # finished tasks' runtimes kept for speculation's median


@dataclass
class WorkerInfo:
    """One worker as the farm sees it: its node, machine host, OS pid there, tasks it has reported."""

    node: str
    host: str
    os_pid: int | None
    tasks_done: int = 0
    alive: bool = True
    machine: str = ""  # the machine it was started on (its ``Machine.host``; see ``Farm.machines``)
    cause: str | None = None  # once it is lost: how it ended ("killed by SIGKILL", ...)
    came: str = LAUNCHED  # "launched" by the farm, "joined" on its own, or started by a "server"


@dataclass(eq=False)
class _Slot:
    index: int
    machine: Machine | Slurm
    generation: int = 0
    node: Atom | None = None
    keeper: Pid | None = None  # the supervised child keeping this slot's current worker
    pid: Pid | None = None
    process: WorkerProcess | None = None
    info: WorkerInfo | None = None
    busy_since: float | None = None  # when it last started or reported work while busy
    per_task: float | None = None  # its estimated seconds per task (moving average)
    last_report: float = 0.0  # when its worker came up or last reported (speculation's clock)
    doomed: str | None = None  # why the farm is killing its worker on purpose ("race", "cancel", ...)
    replacing: int | None = None  # the generation whose worker was doomed, until its replacement is up
    handover: list[int] = field(default_factory=list)  # held tasks (broadcasts) for that replacement
    settled: trio.Event = field(default_factory=trio.Event)  # its first worker came up, failed or retired
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_TAIL))
    came: str = LAUNCHED  # how its worker came (see WorkerInfo.came); only launched slots have keepers
    lane: FarmerLane | None = None  # its worker's lane (a local launched worker's), while it lives



def _lane_pipes(slot: int) -> tuple[int, int, int, int] | None:
    """A lane's two pipes: (tasks' read end, tasks' write end, outcomes' read end, outcomes' write
    end); the farmer keeps the tasks' write end and the outcomes' read end. None (logged) when
    they cannot be made (out of descriptors): that worker then goes without a lane."""
    try:
        task_r, task_w = os.pipe()
    except OSError as exc:
        _LOG.warning("w%d: no lane (%s): its tasks go over the node", slot, exc)
        return None
    try:
        out_r, out_w = os.pipe()
    except OSError as exc:
        os.close(task_r)
        os.close(task_w)
        _LOG.warning("w%d: no lane (%s): its tasks go over the node", slot, exc)
        return None
    return task_r, task_w, out_r, out_w


class _AsCompleted:
    """What :meth:`Farm.as_completed` returns: each future once, in the order they resolve."""

    __slots__ = ("_left", "_receive")

    def __init__(self, futures: Iterable[FarmFuture]) -> None:
        pending = list(futures)
        send, self._receive = trio.open_memory_channel[FarmFuture](len(pending) or 1)
        self._left = len(pending)
        for future in pending:
            future.add_done_callback(send.send_nowait)

    def __aiter__(self) -> _AsCompleted:
        return self

    async def __anext__(self) -> FarmFuture:
        if not self._left:
            raise StopAsyncIteration
        self._left -= 1
        return await self._receive.receive()


class FarmFuture:
    """The eventual outcome of one task. ``await future`` returns its value or raises.

    Raises :class:`~philipjose.farm.errors.TaskError` (the task raised), ``WorkerLost``, ``TaskTimeout``,
    ``concurrent.futures.CancelledError`` (cancelled) or ``FarmError`` (the farm broke or closed).
    """

    def __init__(self, farm: Farm, task_id: int, description: str) -> None:
        self._farm = farm
        self.task_id = task_id
        self.description = description
        self._done = False
        self._event: trio.Event | None = None  # made by the first wait(): most futures are never awaited
        self._outcome: Outcome | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[FarmFuture], None]] = []
        self._on_behalf: object = None  # the Executor's future this task resolves, if any

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<FarmFuture {self.task_id} {self.description} {state}>"

    def done(self) -> bool:
        """True once resolved (by a result, an error, a loss, a timeout or a cancellation)."""
        return self._done

    def cancelled(self) -> bool:
        return isinstance(self._error, concurrent.futures.CancelledError)

    def cancel(self) -> bool:
        """Cancel the task: a queued one is dropped; a running one is stopped for real (see "Cancel"
        in ``docs/farm.md``): ``TaskCancelled`` is raised in its thread on the worker, and if the
        worker has not reported the task within 0.25 s (a task blocked in C code, ``time.sleep``, or
        one that swallows the exception) the worker is killed and replaced. Either way its slot is
        free within about a second. A cancelled task is never run again. Returns False if it was
        already resolved.
        """
        return self._farm._cancel(self.task_id, kill="cancel")

    def result(self) -> Any:
        """The value now; raises as ``await`` would, or ``InvalidStateError`` if not resolved yet."""
        if not self.done():
            raise concurrent.futures.InvalidStateError(f"task {self.task_id} is not resolved yet")
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return unwrap(self._outcome)

    def exception(self) -> BaseException | None:
        """The error it resolved with (None for a value); ``InvalidStateError`` if not resolved."""
        try:
            self.result()
        except concurrent.futures.InvalidStateError:
            raise
        except BaseException as exc:
            return exc
        return None

    def add_done_callback(self, fn: Callable[[FarmFuture], None]) -> None:
        """Call ``fn(future)`` when it resolves (at once if it is resolved)."""
        if self.done():
            fn(self)
        else:
            self._callbacks.append(fn)

    async def wait(self) -> None:
        """Wait until resolved, without raising its error."""
        if self._done:
            await trio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._get().__await__()

    async def _get(self) -> Any:
        await self.wait()
        return self.result()

    def _resolve(self, outcome: Outcome | None, error: BaseException | None) -> None:
        if self.done():
            return
        self._outcome, self._error = outcome, error
        self._done = True
        if self._event is not None:
            self._event.set()
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)


def _run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    return [fn(*args) for args in chunk]


def _reduce_chunk(fn: Callable[[Any, Any], Any], chunk: list[Any]) -> Any:
    return functools.reduce(fn, chunk)


class Farm:
    """An async farm of worker processes (see the module docstring and ``docs/farm.md``).

    ``async with Farm(workers=4) as farm: ...`` starts 4 local workers. ``machines`` takes a list of
    :class:`~philipjose.farm.machines.Machine` or the path of a machines file instead (``workers`` then
    must be None); a machine with ``workers=None`` runs one worker per core (``os.cpu_count()`` for
    localhost, 1 for another host). With neither, one local worker per core.

    Options: ``max_in_flight`` tasks a worker holds at once (default None: adaptive, from 2 for slow
    tasks to 32 for tiny ones, about 10 ms of estimated work per worker), ``max_deaths`` worker deaths
    a task may cause before it fails with ``WorkerLost`` (default 3; they are charged to the task,
    never to the farm), ``task_timeout`` seconds a task may run (default None),
    ``max_launch_failures`` (default 5): failed launches in a row (1 s backoff doubling to 60 s, with
    jitter) after which a machine is down, ``restart_intensity``/``restart_period`` (default 10 in
    60 s): more idle crashes than that of one machine's workers (deaths with no task to blame and not
    caused by the farm) within the period is a crash loop, and the machine is down; the same flags
    bound the restarts of the workers' keepers by their supervisor (``SpecError`` for an integer
    intensity below 0 or a period that is not a whole number of seconds > 0). The farm gives up only
    when no machine can run a worker (see :attr:`machines` and ``docs/farm.md``, "Failures").
    ``net_ticktime`` (default 20 s) for the farmer's node (when the farm starts it) and its workers:
    a worker that stops answering (stopped, cut off) is found out within 1 to 1.25 times it.
    ``progress`` (a :data:`~philipjose.farm.progress.ProgressCallback`), ``start_timeout`` (seconds to
    wait for the first workers, default 60; also how long a launched worker may take to connect
    back), ``farmer_host`` (the host workers connect back to; default 127.0.0.1 when every machine is
    localhost, else this host's fully qualified name), ``worker_stderr`` (``subprocess`` destination
    for workers' stderr; default None: read by the farm and written to ``sys.stderr`` line by line,
    above any progress bar, each line prefixed with the worker's slot, ``[w0] ...``; what a worker
    that never came up wrote explains its failure instead; a worker's stdout is always read and
    written to ``sys.stdout`` line by line, prefixed the same way),
    ``tls`` (a :class:`~philipjose.node.tls.TLSConfig` made by
    :func:`~philipjose.node.tls.tls_config` from PEM files: the farmer's node and its workers then
    speak TLS distribution only, and each worker gets the same file paths on its command line, so
    on other machines the files must exist at those paths; see ``docs/security.md``), ``epmd``
    (default True: the farmer's node registers with the EPMD on this host, starting the embedded
    ``philipjose epmd`` daemon when none answers, so ``epmd -names`` lists a running farm; workers
    connect back to the farmer's port directly and never need an EPMD; False: no EPMD at all),
    ``max_message_size`` (default 1 GiB, at most about 4 GiB: the largest pickled task or outcome;
    a larger task raises ``ArgumentsTooLarge`` at submit, a larger outcome fails its task with
    ``ResultTooLarge``, and no worker dies for either; the farmer's node and the workers accept
    messages (the node option ``max_message_size``) and frames of that plus 1 MiB. Inside a running
    node started without the farm, that node's ``max_message_size`` less 1 MiB bounds it; see "Size
    limits" in ``docs/farm.md``),
    ``speculation`` (default None: off; True: :class:`~philipjose.farm.speculation.Speculation`'s
    defaults, Spark's; or a ``Speculation(...)``): a running task that takes much longer than the
    tasks that finished gets a duplicate on a worker of another machine (another worker when there
    is one machine); the first copy to succeed resolves it and the others are stopped as a race's
    losers are. Tasks submitted with ``options(idempotent=False)`` never get one. See
    "Speculation" in ``docs/farm.md``. ``journal`` (default None; a path, or a
    :class:`~philipjose.farm.journal.Journal`): every task's outcome is recorded in that SQLite file
    under the task's key (derived from what is shipped, or ``options(key=...)``), and a farm started
    again on it resolves the recorded tasks at once, without running them (recorded failures run
    again unless ``Journal(..., rerun_failed=False)``); a journal of another script or philipjose
    version is refused with :class:`~philipjose.farm.journal.JournalMismatch`. See "The journal" in
    ``docs/farm.md``. ``dashboard`` (default None; a port, 0 for any free one, or ``"HOST:PORT"``):
    serve a live web page of the farm there (loopback unless a host is given; needs the
    ``philipjose[dashboard]`` extra), at :attr:`dashboard_url` once the farm has started. See "The
    dashboard" in ``docs/farm.md``.

    Workers that start on their own (:mod:`~philipjose.farm.joining`, :mod:`~philipjose.farm.server`;
    "Workers that start on their own" in ``docs/farm.md``): ``accept_workers`` (default False): accept
    workers that join (``philipjose worker --join`` :attr:`node`); ``workers=0`` (or
    ``machines=[]``) then launches none, and the start does not wait for any. ``cookie``: the farm's
    secret (default random; see :attr:`cookie`). ``min_workers`` (default 0): dispatch nothing
    before that many workers have been up at once. ``servers``: addresses (``"host:port"``) of
    ``philipjose worker --listen`` servers to ask for workers (needs ``cookie``, the servers'), as
    ``kind = "server"`` machines do; the farm keeps reconnecting to a server that goes away.
    ``farmer_port`` (default 0: any free port): the port the farmer's node listens on;
    ``farmer_name`` (``NAME`` or ``NAME@HOST``, default ``farmer-<random>``): its node's name, so that
    standing workers (a systemd unit, a Deployment) can join each farm that takes that name in turn.
    ``erlang_nodes`` (default None; node names, or machines of ``kind="erlang"``; the registry's
    such machines count too): running Erlang/Elixir nodes that join as workers for
    :class:`~philipjose.farm.erlang.Erl` tasks (alone, no Python worker is started); Erlang nodes
    and callers must know the farm's ``cookie`` (with them, it defaults to ``$PHILIPJOSE_COOKIE`` or
    ``~/.erlang.cookie``); ``service`` (default False; True registers ``philipjose_farm`` for
    Erlang/Elixir callers, :mod:`philipjose.farm.service`). See "Mixed farms" and "Calling the farm
    from Erlang and Elixir" in ``docs/farm.md``. ``lanes`` (default True): a worker started on this
    host gets its tasks and gives back their outcomes through pipes of its own
    (:mod:`philipjose.farm.lane`: a single task's round trip about a third shorter); False sends
    them over the node, as for remote workers ("Lanes" in ``docs/farm.md``).
    """

    def __init__(
        self,
        workers: int | None = None,
        machines: Sequence[Machine | Slurm] | str | os.PathLike[str] | None = None,
        *,
        max_in_flight: int | None = None,
        max_deaths: int = 3,
        task_timeout: float | None = None,
        max_launch_failures: int = DEFAULT_MAX_LAUNCH_FAILURES,
        restart_intensity: int = 10,
        restart_period: int = 60,
        net_ticktime: float = DEFAULT_FARM_NET_TICKTIME,
        progress: ProgressCallback | None = None,
        start_timeout: float = 60.0,
        farmer_host: str | None = None,
        worker_stderr: int | None = None,
        ssh: str = "ssh",
        tls: TLSConfig | None = None,
        epmd: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        speculation: bool | Speculation | None = None,
        journal: str | os.PathLike[str] | Journal | None = None,
        erlang_nodes: Sequence[str | Machine] | None = None,
        cookie: str | bytes | None = None,
        service: bool = False,
        dashboard: int | str | None = None,
        accept_workers: bool = False,
        min_workers: int = 0,
        servers: Sequence[str] = (),
        farmer_port: int = 0,
        farmer_name: str | None = None,
        lanes: bool = True,
    ) -> None:
        if tls is not None and tls.files is None:
            raise ValueError(
                "Farm(tls=...) needs a TLSConfig made from files (tls_config): workers get the paths"
            )
        if workers is not None and machines is not None:
            raise ValueError("give workers=N (local workers) or machines=..., not both")
        machine_list: list[Machine | Slurm]
        machine_list, server_list = split_servers(machines, servers)
        elastic = bool(accept_workers or server_list)
        if server_list and cookie is None:
            raise ValueError("servers accept only farms with their cookie: give Farm(cookie=...)")
        if workers is not None and workers < (0 if elastic else 1):
            least = "0" if elastic else "1 (0 with accept_workers=True)"
            raise ValueError(f"workers must be at least {least}, not {workers}")
        if machines is None and (workers is not None or not (server_list or erlang_nodes)):
            machine_list = [Machine("localhost", workers)] if workers != 0 else []
        erlang_list = [
            erlang_machine(m)
            for m in [*machine_list, *(erlang_nodes or ())]
            if isinstance(m, str) or (isinstance(m, Machine) and m.kind == ERLANG)
        ]
        machine_list = [m for m in machine_list if isinstance(m, Slurm) or m.kind != ERLANG]
        if not machine_list and not erlang_list and not elastic:
            raise ValueError("a farm needs at least one machine (or accept_workers=True)")
        self._desk = JoinDesk(
            self, accepting=bool(accept_workers), min_workers=min_workers, servers=server_list
        )
        self._wanted_cookie = None if cookie is None else _check_cookie(cookie)
        self._wanted_port = farmer_port
        alive, _, named_host = (farmer_name or "").partition("@")
        if farmer_name is not None and not alive:
            raise ValueError(f"farmer_name must be NAME or NAME@HOST, not {farmer_name!r}")
        farmer_host = named_host or farmer_host
        self._alive = alive  # the farmer node's name before the @ (default: farmer-<random>)
        supervisors.SupFlags("one_for_one", restart_intensity, restart_period)  # SpecError if invalid
        if not net_ticktime > 0:
            raise ValueError(f"net_ticktime must be positive, not {net_ticktime}")
        self._machine_list = machine_list
        self.dashboard_url: str | None = None  # set once the dashboard serves (Farm(dashboard=...))
        self._dashboard = None if dashboard is None else _dashboard_address(dashboard)
        self.history = History(keeping=dashboard is not None)  # recent tasks and failures (bounded)
        self._allocations: dict[str, Allocation] = {}  # Slurm sources' jobs, by source name
        self.speculation = speculation_of(speculation)
        if journal is None or isinstance(journal, Journal):
            self.journal = journal
        elif isinstance(journal, (str, os.PathLike)):
            self.journal = Journal(journal)
        else:
            raise TypeError(f"journal must be a path or a farm.Journal, not {type(journal).__name__}")
        self._keys: dict[int, tuple[bytes, str]] = {}  # journaled tasks: task id -> (key, function)
        self._journal_keys: Container[bytes] = ()  # the journal's keys() once it is open
        self._journal_dirty = trio.Event()
        self._replayed = [0, 0]  # tasks resolved from the journal: succeeded, failed
        self._next_replay_id = -2  # ids of futures resolved from the journal (-1 is the initializer's)
        self._runtimes: deque[float] = deque(maxlen=_RUNTIME_SAMPLE)  # finished tasks' seconds
        self._speculated_at = -math.inf  # when speculation last looked for stragglers
        self._init_payload = None if initializer is None else dumps_task(initializer, tuple(initargs))
        self._erlang = ErlangWorkers(self, erlang_list)
        self._kind_hosts = {PYTHON: [m.host for m in machine_list], ERLANG: self._erlang.hosts}
        self._kind_down: dict[str, FarmError] = {}  # kinds whose machines are all down
        self.service = service
        self._policy = FailurePolicy(
            [m.host for m in machine_list] + self._erlang.hosts,
            max_launch_failures=max_launch_failures,
            intensity=restart_intensity,
            period=restart_period,
            allow_none=True,
        )
        self.net_ticktime = net_ticktime
        self.max_message_size = check_max_message_size(max_message_size)
        self.lanes = bool(lanes)
        self._message_limit = self.max_message_size  # lowered in _start to what the node accepts
        self.task_timeout = task_timeout
        self.restart_intensity = restart_intensity
        self.restart_period = restart_period
        self.progress = progress
        self.start_timeout = start_timeout
        self.worker_stderr = worker_stderr
        self.ssh = ssh
        self.tls = tls
        self.epmd = epmd
        self._worker_tls: TLSFiles | None = None
        all_local = all(m.is_local for m in machine_list) and not server_list
        self.farmer_host = (
            farmer_host
            or farmer_host_for(erlang_list)
            or (("localhost" if service else "127.0.0.1") if all_local and not elastic else _fqdn())
        )
        self._listen_host = (
            "127.0.0.1" if self.farmer_host in ("127.0.0.1", "localhost", "::1") else "0.0.0.0"
        )
        self._adaptive = max_in_flight is None
        self._sched: Scheduler[bytes] = Scheduler(
            max_in_flight=_PIPELINE_CAP if max_in_flight is None else max_in_flight, max_deaths=max_deaths
        )
        self._futures: dict[int, FarmFuture] = {}
        self._stopping = Stopping()
        self._slots: list[_Slot] = []
        self._by_node: dict[Atom, _Slot] = {}
        self._by_pid: dict[Pid, _Slot] = {}
        self._causes: OrderedDict[Pid, str] = OrderedDict()  # dead workers: how each ended
        self._first_up = trio.Event()  # some worker came up (or the farm broke)
        self._id = secrets.token_hex(4)
        self._name = Atom(f"pj_farm_{self._id}")
        self._rt: Runtime | None = None
        self._farmer_pid: Pid | None = None
        self._ready = trio.Event()  # set once the farmer process may start the supervisor
        self._farmer_done = trio.Event()
        self._supervisor: Pid | None = None
        self._broken: FarmError | None = None
        self._closing = False
        self._waiting_until = math.inf
        self._nursery: trio.Nursery | None = None
        self._nursery_cm: Any = None
        self._runtime_done: trio.Event | None = None
        self._stop_runtime: trio.Event | None = None
        self._node_options: dict[str, Any] = {}  # more pj.node.start options (the Executor's)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> Farm:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:  # asyncio (Jupyter's loop included), or no event loop Trio knows of
            raise FarmError("Farm needs Trio; from asyncio or Jupyter use farm.Executor") from None
        self._nursery_cm = trio.open_nursery()
        self._nursery = await self._nursery_cm.__aenter__()
        try:
            await self._start()
        except BaseException as exc:
            await self._shutdown()
            await self._exit_nursery(exc)
            raise
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            await self._shutdown()
        finally:
            await self._exit_nursery(exc)

    async def _exit_nursery(self, exc: BaseException | None) -> None:
        """Close the farm's nursery; the caller's own exception propagates as itself, not in a group."""
        try:
            await self._nursery_cm.__aexit__(
                type(exc) if exc else None, exc, exc.__traceback__ if exc else None
            )
        except BaseExceptionGroup as group:
            if exc is not None and len(group.exceptions) == 1 and group.exceptions[0] is exc:
                return  # the caller re-raises exc
            raise

    async def _start(self) -> None:
        assert self._nursery is not None
        if self.journal is not None:  # a journal another script wrote fails the start at once
            await trio.to_thread.run_sync(self.journal.open)
            self._journal_keys = self.journal.keys()
            self._nursery.start_soon(self._flush_journal, self.journal)
        try:
            rt = current_runtime()
        except NoProcessError:
            # plain trio: host a runtime in the background; the farmer process is spawned inside it
            rt, self._farmer_pid = await self._nursery.start(self._host_runtime)
        else:
            if rt.dist is None:
                await self._start_node()
            self._farmer_pid = pj.spawn(self._farmer_process)
        self._rt = rt
        node = rt.dist
        if node is None:
            raise FarmError("the runtime has no distribution node")
        self._cookie: bytes = node.cookie  # type: ignore[attr-defined]
        if self._wanted_cookie is not None and self._wanted_cookie != self._cookie:
            raise FarmError("Farm(cookie=...) differs from the cookie of the running node it would use")
        self._farmer_node: Atom = node.name  # type: ignore[attr-defined]
        self._farmer_port: int = node.port  # type: ignore[attr-defined]
        self._worker_tls = self._tls_for_workers(getattr(node, "tls", None))
        self._ticktime: float = getattr(node, "net_ticktime", self.net_ticktime)
        accepted = getattr(node, "max_message_size", frame_limit(self.max_message_size))
        self._message_limit = max(1, min(self.max_message_size, accepted - frame_limit(0)))
        if self._message_limit < self.max_message_size:
            _LOG.info(
                "the running node accepts messages of up to %d bytes: tasks and results of this farm are "
                "limited to %d bytes (not max_message_size=%d)",
                accepted,
                self._message_limit,
                self.max_message_size,
            )
        self._allocations = await open_allocations(self._machine_list, f"philipjose-farm-{self._id}")
        for machine in self._machine_list:
            count = machine.workers
            if count is None:
                count = os.cpu_count() or 1 if machine.is_local else 1
            first = len(self._slots)
            self._slots.extend(_Slot(first + i, machine) for i in range(count))
        rt.register(self._name, self._farmer_pid)
        self._desk.check(rt)
        self._ready.set()  # the farmer process may start the workers' supervisor now
        if self._dashboard is not None:
            from philipjose.dashboard.farm_view import serve_farm

            self.dashboard_url = await self._nursery.start(serve_farm, self, self._dashboard)
        launched = list(self._slots)
        with trio.move_on_after(self.start_timeout):
            # every slot has come up or failed once (a failing machine does not hold the start back
            # while it retries), and some worker is up (with no launched worker: nothing to wait for)
            for slot in launched:
                await slot.settled.wait()
            await self._erlang.settled()
            await self._desk.settled()  # every server served this farm or failed once
            if launched or self._desk.servers or self._erlang.hosts:
                await self._first_up.wait()  # servers that failed are tried again meanwhile
        if self._broken is not None:
            raise self._broken
        sources = launched or self._desk.servers or self._erlang.hosts
        up = any(s.pid is not None for s in self._slots) or self._erlang.any_up()
        if sources and not self._desk.accept_workers and not up:
            raise FarmError(f"no worker came up within {self.start_timeout:g} s{self._desk.start_problem()}")

    async def _host_runtime(
        self, task_status: trio.TaskStatus[tuple[Runtime, Pid]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        stop = self._stop_runtime = trio.Event()

        async def main() -> None:
            task_status.started((current_runtime(), pj.spawn(self._farmer_process)))
            await stop.wait()

        await run_async(main, setup=self._start_node)

    async def _start_node(self) -> None:
        """Make the runtime the farmer's node: a fresh cookie for this farm, hidden, TLS if asked."""
        await pj.node.start(
            f"{self._alive or 'farmer-' + self._id}@{self.farmer_host}",
            # Erlang nodes and callers know the farm's cookie: the given one, else ~/.erlang.cookie
            cookie=self._wanted_cookie
            if self._wanted_cookie or self._erlang.hosts or self.service
            else secrets.token_hex(16),
            epmd=self.epmd,
            port=self._wanted_port,
            listen_host=self._listen_host,
            tls=self.tls,
            net_ticktime=self.net_ticktime,
            max_frame_size=frame_limit(self.max_message_size),
            max_message_size=frame_limit(self.max_message_size),
            hidden=True,
            **self._node_options,
        )

    async def _shutdown(self) -> None:
        self._closing = True
        self._policy.shut_down()  # from now on no worker is started again
        rt = self._rt
        self._desk.stop()
        if rt is not None and self._farmer_pid is not None:
            for slot in self._slots:  # all workers start exiting now; their keepers then wait in turn
                if slot.pid is not None:
                    rt.send(slot.pid, w.STOP)
            rt.send(self._farmer_pid, _STOP_FARM)  # it stops the supervisor, which stops the keepers
            self._ready.set()
            with trio.CancelScope(shield=True):
                await self._farmer_done.wait()
        await close_allocations(self._allocations)  # the Slurm jobs it made are cancelled
        if self._broken is None:
            self._broken = FarmError("the farm is closed")
        for future in list(self._futures.values()):
            future._resolve(None, self._broken)
        self._futures.clear()
        if self.journal is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.journal.close)
        if self._stop_runtime is not None:
            self._stop_runtime.set()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _flush_journal(self, journal: Journal) -> None:
        """Write the journal's new records in batches, ``flush_interval`` seconds after the first of
        a batch (the last ones are written when the farm closes), in a thread: a batch is one row,
        and SQLite's writing it (and its WAL checkpoints) lets go of the GIL, so the loop goes on
        meanwhile (measured in ``docs/benchmarks.md``)."""
        while True:
            await self._journal_dirty.wait()
            await trio.sleep(journal.flush_interval)
            self._journal_dirty = trio.Event()
            await trio.to_thread.run_sync(journal.flush)

    def _replay(self, key: bytes, description: str) -> FarmFuture | None:
        """A future resolved at once from the journal's record of ``key``, or None."""
        assert self.journal is not None
        recorded = self.journal.lookup(key)
        if recorded is None:
            return None
        task_id, self._next_replay_id = self._next_replay_id, self._next_replay_id - 1
        future = FarmFuture(self, task_id, f"{description} (from the journal)")
        outcome = decode_outcome(recorded.outcome)
        if isinstance(outcome, Returned):
            self._replayed[0] += 1
            future._resolve(outcome, None)
        else:
            self._replayed[1] += 1
            future._resolve(None, outcome)
        return future

    # -- workers --------------------------------------------------------------------------------------

    def _tls_for_workers(self, node_tls: TLSConfig | None) -> TLSFiles | None:
        """The TLS files workers are started with: the farm's, or those of a running TLS node."""
        if node_tls is None:
            if self.tls is not None:
                raise FarmError("Farm(tls=...) inside a runtime whose node does not use TLS")
            return None
        files = self.tls.files if self.tls is not None else node_tls.files
        if files is None:
            raise FarmError(
                "the node uses TLS contexts made by hand: give Farm(tls=tls_config(...)) for workers"
            )
        return files

    def _worker_args(self, slot: _Slot) -> list[str]:
        host = "127.0.0.1" if slot.machine.is_local else slot.machine.host.rpartition("@")[2]
        slot.node = Atom(f"w{slot.index}g{slot.generation}-{self._id}@{host}")
        return [
            *WORKER_COMMAND,
            "--farmer",
            str(self._farmer_node),
            "--farmer-port",
            str(self._farmer_port),
            "--farm",
            str(self._name),
            "--name",
            str(slot.node),
            "--listen-host",
            "127.0.0.1",  # the farmer never connects to a worker: the worker connects to it
            "--net-ticktime",
            f"{self._ticktime:g}",
            "--max-message-size",
            str(self._message_limit),
            *(self._worker_tls.argv() if self._worker_tls is not None else ()),
        ]

    def _child_specs(self) -> list[supervisors.ChildSpec]:
        """The supervisor's children: one transient keeper per slot, id ``w<slot>``, started in order.

        A keeper ends normally only when its slot retires (its machine is down, or the farm closes),
        and is then not restarted. A keeper stopping may wait up to ``_GRACE`` seconds for its
        worker, so its ``shutdown`` is longer than that.
        """
        return (
            [
                supervisors.child_spec(
                    {
                        "id": f"w{slot.index}",
                        "start": (self._keep_worker, slot),
                        "restart": "transient",
                        "shutdown": _GRACE + 5,
                    }
                )
                for slot in self._slots
            ]
            + self._erlang.child_specs()
            + service_specs(self, self.service)
        )

    async def _keep_worker(self, slot: _Slot) -> None:
        """A supervised child: keeps one worker running in ``slot`` (see the theory of operation).

        Each turn of the loop is one worker's life (:meth:`_live`); the failure policy's verdict on
        its end says whether, and when, the next one starts. Returns (a normal exit: the slot
        retires) when the verdict is no: the machine is down or the farm is closing.
        """
        slot.keeper = pj.self()
        try:
            await self._lives(slot.machine.host, functools.partial(self._live, slot))
        finally:
            slot.keeper = None
            slot.settled.set()
            if slot.handover and not self._closing:  # it retires: no replacement takes its broadcasts
                self._abandon_handover(slot)

    async def _lives(self, host: str, live: Callable[[], Awaitable[Verdict]]) -> None:
        """One ``live()`` after another on ``host``, each when the failure policy lets it start,
        until a verdict says no more (the machine is down, or the farm is closing)."""
        while True:
            at = self._policy.launch_at(host)
            if at is None:
                return
            if at > trio.current_time():
                await trio.sleep_until(at)
                continue  # the machine's state may have changed meanwhile
            verdict = self._carry_out(await live())
            if not verdict.relaunch:
                return

    def _carry_out(self, verdict: Verdict) -> Verdict:
        if verdict.message:
            _LOG.log(verdict.level, "%s", verdict.message)
        if verdict.machine_down:
            self._give_up_kinds()
        if verdict.machine_down or verdict.give_up:
            self._report()
        if verdict.give_up is not None and not self._closing:
            self._break(FarmError(verdict.give_up))
        return verdict

    async def _live(self, slot: _Slot) -> Verdict:
        """One life of one worker of ``slot``: launch it, wait for it to connect back, register it,
        watch it until it is lost; then tell the scheduler (its tasks are queued again), kill and
        reap its OS process, and return the failure policy's verdict on how it ended.

        While the farm closes, the process is first given ``_GRACE`` seconds to exit on its own.
        """
        host = slot.machine.host
        token = self._policy.launching(host)
        args = self._worker_args(slot)
        slot.generation += 1
        slot.doomed = None
        slot.stderr_tail.clear()
        node = slot.node
        assert node is not None
        self._by_node[node] = slot
        process: WorkerProcess | None = None
        came_up, how, tasks = False, "", 0
        gone = False
        lane: FarmerLane | None = None
        try:
            allocation = self._allocations.get(host)  # a Slurm source: its job's srun
            local = allocation is None and isinstance(slot.machine, Machine) and slot.machine.is_local
            ends = _lane_pipes(slot.index) if local and self.lanes else None
            try:
                process = slot.process = await (launch if allocation is None else allocation.launch)(
                    slot.machine,
                    args if ends is None else [*args, "--lane", f"{ends[0]},{ends[3]}"],
                    secret=self._cookie,
                    ssh=self.ssh,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE if self.worker_stderr is None else self.worker_stderr,
                    pass_fds=() if ends is None else (ends[0], ends[3]),
                )
            except LaunchError as exc:
                how = str(exc)
                return self._policy.lost(host, trio.current_time(), token=token, came_up=False, how=how)
            finally:
                if ends is not None:  # the child's ends are the child's now (or nobody's)
                    os.close(ends[0])
                    os.close(ends[3])
                    if process is not None:
                        limit = frame_limit(self._message_limit)
                        lane = slot.lane = FarmerLane(ends[1], ends[2], max_frame=limit)
                    else:
                        os.close(ends[1])
                        os.close(ends[2])
            read_done, out_done = trio.Event(), trio.Event()
            # its output is read until all of it has come, even while this keeper is being cancelled
            readers = [trio.CancelScope(shield=True), trio.CancelScope(shield=True)]
            async with trio.open_nursery() as outputs:
                if process.process.stderr is not None:
                    err = process.process.stderr
                    outputs.start_soon(self._read_stderr, slot, node, err, read_done, readers[0])
                else:
                    read_done.set()
                if process.process.stdout is not None:
                    out = process.process.stdout
                    outputs.start_soon(self._read_stdout, slot, out, out_done, readers[1])
                else:
                    out_done.set()
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._note_exit, process, pj.self(), node, read_done)
                        if lane is not None:
                            nursery.start_soon(self._serve_lane, slot, lane)
                        came_up, status, nodedown = await self._watch_worker(slot, node)
                        if nodedown:
                            # the process may be exiting: its status says more than "connection lost"
                            if process.returncode is None:
                                with trio.move_on_after(_EXIT_WAIT):
                                    await process.wait()
                            status = process.returncode
                        nursery.cancel_scope.cancel()
                    how = self._describe_end(slot, came_up, status, nodedown)
                finally:
                    gone = True
                    tasks = self._worker_gone(slot, how or "it was stopped")
                    with trio.CancelScope(shield=True):
                        if self._closing:
                            await process.aclose(_GRACE)
                        else:
                            process.kill()
                            await process.wait()
                        slot.process = None
                        with trio.move_on_after(_EXIT_WAIT):  # what it wrote last is on its way
                            await read_done.wait()
                            await out_done.wait()
                    for reader in readers:
                        reader.cancel()
        finally:
            if not gone:
                tasks = self._worker_gone(slot, how or "it was stopped")
            if lane is not None:
                slot.lane = None
                lane.close()
            slot.settled.set()
        return self._policy.lost(
            host,
            trio.current_time(),
            token=token,
            came_up=came_up,
            how=how,
            worker=str(node).partition("-")[0],
            doomed=slot.doomed,
            tasks=tasks,
        )

    async def _serve_lane(self, slot: _Slot, lane: FarmerLane) -> None:
        """Handle the outcomes coming through ``slot``'s lane as the ``pj_done`` messages they stand
        for (here, as they come: a trip through the farmer process's mailbox would cost a task
        switch a report), while the farmer process serves; a lane that sends anything else has its
        worker killed."""

        async def deliver(batch: list[tuple[int, bytes]]) -> None:
            if lane.owner is not None and not self._farmer_done.is_set():
                await self._on_done(lane.owner, batch)

        try:
            await lane.serve(deliver)
        except LaneError as exc:
            _LOG.error("w%d: %s; killing it", slot.index, exc)
            if slot.process is not None:
                slot.process.kill()

    def _describe_end(self, slot: _Slot, came_up: bool, status: int | None, nodedown: bool) -> str:
        if status is None and not nodedown:
            return f"did not connect back within {self.start_timeout:g} s"
        how = describe_exit(status, nodedown=nodedown)
        if nodedown and status is None:
            how += f" (no answer within net_ticktime {self._ticktime:g} s, or cut off)"
        if not came_up and slot.stderr_tail:
            how = f"{slot.stderr_tail[-1]} ({how} before connecting back)"
        elif not came_up:
            how += " before connecting back"
        return how

    async def _read_stderr(
        self,
        slot: _Slot,
        node: Atom,
        stream: trio.abc.ReceiveStream,
        done: trio.Event,
        scope: trio.CancelScope | None = None,
    ) -> None:
        """Forward a worker's stderr line by line to ``sys.stderr`` (above the progress bar), each line
        prefixed with its slot (``[w0] ...``); until it comes up, keep the lines instead: they explain
        a launch that fails (ssh's message)."""
        console = console_for()
        lines = LineSplitter()
        held: list[str] = []
        name = f"w{slot.index}"

        def up() -> bool:
            return slot.info is not None and slot.info.node == str(node)

        def show(line: str) -> None:
            console.write_line(prefixed(name, line))

        try:
            with trio.CancelScope() if scope is None else scope:
                await self._forward_stderr(stream, lines, slot, show, up, held)
        finally:
            if held:
                _LOG.debug("stderr of %s, which did not come up: %s", slot.node, " | ".join(held))
            done.set()

    @staticmethod
    async def _forward_stderr(
        stream: trio.abc.ReceiveStream,
        lines: LineSplitter,
        slot: _Slot,
        show: Callable[[str], None],
        up: Callable[[], bool],
        held: list[str],
    ) -> None:
        while True:
            chunk = await receive_chunk(stream)
            for line in lines.feed(chunk):
                if not line:
                    continue
                slot.stderr_tail.append(line)
                if not up():
                    held.append(line)
                    continue
                for early in held:
                    show(early)
                held.clear()
                show(line)
            if not chunk:
                return
            if held and up():
                for early in held:
                    show(early)
                held.clear()

    async def _read_stdout(
        self,
        slot: _Slot,
        stream: trio.abc.ReceiveStream,
        done: trio.Event,
        scope: trio.CancelScope | None = None,
    ) -> None:
        """Forward a worker's stdout line by line to ``sys.stdout``, prefixed with its slot."""
        lines = LineSplitter()
        name = f"w{slot.index}"
        try:
            with trio.CancelScope() if scope is None else scope:
                while True:
                    chunk = await receive_chunk(stream)
                    for line in lines.feed(chunk):
                        write_stdout_line(prefixed(name, line))
                    if not chunk:
                        return
        finally:
            done.set()

    async def _note_exit(
        self, process: WorkerProcess, keeper: Pid, node: Atom, read_done: trio.Event
    ) -> None:
        status = await process.wait()
        with trio.move_on_after(_EXIT_WAIT):  # its last words (ssh's error) explain the exit
            await read_done.wait()
        assert self._rt is not None
        self._rt.send(keeper, (_EXITED, node, status))

    async def _watch_worker(self, slot: _Slot, node: Atom) -> tuple[bool, int | None, bool]:
        """Wait (at most ``start_timeout``) for the worker to come up, register it with the scheduler
        and watch its node; once the worker is lost, return ``(came_up, exit status or None,
        nodedown)``: its process exited, its connection went down, or (neither) it never connected
        back in time. The keeper lives through many workers: news of an earlier one (its exit, its
        nodedown, arriving late) names another node and is dropped."""
        deadline = trio.current_time() + self.start_timeout
        up = False  # not slot.pid: a doomed worker has left the scheduler (pid None) but is up
        while True:
            timeout = None if up else max(0.0, deadline - trio.current_time())
            try:
                msg: Any = await pj.receive(timeout=timeout)
            except TimeoutError:
                return False, None, False
            if type(msg) is not tuple or len(msg) < 2:
                continue
            if msg[0] == w.WORKER_UP and len(msg) == 4 and not up:
                if isinstance(msg[1], Pid) and msg[1].node == node:
                    up = True
                    pj.node.monitor_node(node)
                    self._worker_up(slot, msg[1], msg[2], msg[3])
                continue
            if msg[0] == _EXITED and len(msg) == 3 and msg[1] == node:
                return up, msg[2], False
            if msg[0] == _NODEDOWN and msg[1] == node and up:
                return True, None, True

    def _worker_gone(self, slot: _Slot, how: str) -> int:
        """The slot's worker is lost (or stopping): the scheduler queues its tasks again. Returns how
        many live tasks it held (they are charged with its death)."""
        self._by_node.pop(slot.node, None)  # type: ignore[arg-type]
        pid, slot.pid = slot.pid, None
        if slot.info is not None and slot.info.alive:
            slot.info.alive = False
            slot.info.cause = how
        if pid is None:  # it never came up, or it was doomed (and left the scheduler then)
            if slot.replacing is not None and slot.generation > slot.replacing:
                self._abandon_handover(slot)  # the replacement ended without ever coming up
            return 0
        self._by_pid.pop(pid, None)
        self._stopping.forget(pid)
        held = sum(1 for t in self._sched.in_flight(pid) if self._sched.assigned_worker(t) == pid)
        self._causes[pid] = how
        while len(self._causes) > _DEATH_NOTES:
            self._causes.popitem(last=False)
        self._apply(self._sched.worker_down(pid))
        return held

    def _doom(self, slot: _Slot, reason: str) -> None:
        """Kill the slot's worker on purpose (``reason``: "race", "cancel", "timeout").

        At the moment of the decision, before the kill: the slot is marked ``doomed``, the worker
        leaves the scheduler (:meth:`Scheduler.retire`: the tasks it held that had not started are
        queued again, charged nothing), and its pinned tasks (broadcasts) are held for the worker
        that replaces it. Its keeper then sees it die and a replacement starts.
        """
        slot.doomed = slot.doomed or reason
        pid, slot.pid = slot.pid, None
        if pid is not None:
            self._by_pid.pop(pid, None)
            self._stopping.forget(pid)
            slot.replacing = slot.generation
            slot.handover.extend(self._sched.retire(pid))
        if slot.process is not None:
            slot.process.kill()
        elif slot.came != LAUNCHED and reason != "left":
            self._desk.kill(slot)

    def _abandon_handover(self, slot: _Slot) -> None:
        held, slot.handover, slot.replacing = slot.handover, [], None
        decisions: list[Decision] = []
        for task_id in held:
            decisions += self._sched.abandon(task_id, (slot.node,))
        self._apply(decisions)

    def _kill_workers(self) -> None:
        """SIGKILL every worker process now (a second Ctrl-C while the farm closes)."""
        self._policy.shut_down()
        for slot in self._slots:
            if slot.process is not None:
                slot.process.kill()

    def _break(self, error: FarmError) -> None:
        self._broken = error
        self._fail(self._sched.live_tasks(), error)
        self._erlang.settle_all()
        for slot in self._slots:
            slot.settled.set()  # wake a start that waits for workers: it raises the error
        self._first_up.set()
        self._report()

    def _fail(self, task_ids: list[int], error: FarmError) -> None:
        for task_id in task_ids:
            self._sched.cancel(task_id)
            future = self._futures.pop(task_id, None)
            if future is not None:
                future._resolve(None, error)

    def _give_up_kinds(self) -> None:
        """Fail the tasks of a kind (Python, Erlang) whose machines are all down, and later ones."""
        for kind, hosts in self._kind_hosts.items():
            if hosts and kind not in self._kind_down and self._policy.all_down(hosts):
                parts = [f"{m.host}: {m.last_error}" for m in self._policy.status() if m.host in hosts]
                self._kind_down[kind] = FarmError(
                    f"no machine can run {kind} workers any more ({'; '.join(parts)})"
                )
                self._fail(self._sched.live_tasks(kind), self._kind_down[kind])

    # -- the farmer process ---------------------------------------------------------------------------

    async def _farmer_process(self) -> None:
        """Start the workers' supervisor (linked, trapping its exit), then serve the workers."""
        try:
            pj.process_flag("trap_exit", True)
            await self._ready.wait()
            if self._closing:  # the start failed before the supervisor was due
                return
            self._desk.start(pj.self())  # the door for joining workers, the sessions with servers
            try:
                self._supervisor = await supervisors.start_link(
                    self._child_specs(),
                    strategy="one_for_one",
                    intensity=self.restart_intensity,
                    period=self.restart_period,
                )
            except supervisors.SupervisorError as exc:
                self._break(FarmError(f"the workers' supervisor did not start: {exc}"))
                return
            await self._serve(self._supervisor)
        finally:
            if self._broken is None and not self._closing:
                self._break(FarmError("the farmer process ended unexpectedly"))
            self._farmer_done.set()

    async def _serve(self, supervisor: Pid) -> None:
        supervised = True
        while True:
            deadline = self._next_deadline()
            now = trio.current_time()
            if deadline is not None and deadline <= now:  # also when messages keep coming
                self._expire(now)
                continue
            self._waiting_until = math.inf if deadline is None else deadline
            timeout = None if deadline is None else deadline - now
            try:
                msg: Any = await pj.receive(timeout=timeout)
            except TimeoutError:
                self._expire(trio.current_time())
                continue
            if msg == _STOP_FARM:
                if supervised:
                    with contextlib.suppress(pj.Exit):  # it ended meanwhile: its EXIT is still queued
                        await supervisors.stop(supervisor)
                return
            if type(msg) is not tuple or not msg:
                continue
            tag = msg[0]
            if tag == w.DONE and len(msg) == 3:
                await self._on_done(msg[1], msg[2])
            elif tag == w.WORKER_UP and len(msg) == 4 and isinstance(msg[1], Pid):
                slot = self._by_node.get(msg[1].node)
                if slot is not None and slot.keeper is not None:
                    pj.send(slot.keeper, msg)  # its keeper registers it
            elif self._desk.handle(msg):
                pass
            elif tag == _EXIT and len(msg) == 3 and msg[1] == supervisor:
                supervised = False
                if not self._closing:
                    self._break(self._gave_up(msg[2]))

    def _next_deadline(self) -> float | None:
        """When the farmer process has timers to run: a task's timeout, a stop request's grace."""
        times = [
            t
            for t in (self._sched.next_deadline(), self._stopping.next_deadline(), self._speculation_due())
            if t is not None
        ]
        return min(times, default=None)

    def _speculation_due(self) -> float | None:
        if self.speculation is None or not self._sched.has_running():
            return None
        return self._speculated_at + self.speculation.interval

    def _speculate(self, now: float) -> None:
        """Give the stragglers a duplicate (:mod:`~philipjose.farm.speculation` decides which), each
        on a worker of another machine when there is one, else on another worker."""
        policy = self.speculation
        assert policy is not None
        self._speculated_at = now
        # (worker, machine, since): a Python worker runs its tasks in order, an Erlang one at once
        live: list[tuple[Any, str, float]] = [
            (s.pid, s.machine.host, s.last_report) for s in self._slots if s.pid is not None
        ]
        live += [(worker, host, -math.inf) for worker, host in self._erlang.live()]
        if len(live) < 2:
            return
        holder: dict[int, tuple[Any, str]] = {}
        attempts: list[Attempt] = []
        for worker, host, since in live:
            for r in self._sched.running(worker):
                holder[r.task_id] = (worker, host)
                started = max(r.assigned_at, since)
                attempts.append(Attempt(r.task_id, started, r.duplicates, r.idempotent))
        if not attempts:
            return
        c = self._sched.counters
        late = stragglers(
            policy,
            attempts,
            runtimes=self._runtimes,
            finished=c.completed,
            total=c.completed + c.submitted - c.resolved,
            now=now,
        )
        for task_id in late:
            worker, host = holder[task_id]
            kind = self._sched.worker_kind(worker)
            peers = [(w, h) for w, h, _ in live if self._sched.worker_kind(w) == kind]
            elsewhere = any(h != host for _, h in peers)
            avoid = frozenset(w for w, h in peers if w == worker or (elsewhere and h == host))
            self._sched.duplicate(task_id, avoid)
        if late:
            _LOG.debug("speculation: duplicating %d straggler(s)", len(late))
            self._apply([])

    def _expire(self, now: float) -> None:
        """Fail the tasks past their timeout (stopping those running), kill the workers that did not
        stop a task within the grace period; look for stragglers when speculation is due."""
        self._apply(self._sched.expire(now), kill="timeout")
        due = self._speculation_due()
        if due is not None and due <= now:
            self._speculate(now)
        for worker, reason in self._stopping.due(now):
            slot = self._by_pid.get(worker)  # type: ignore[call-overload]
            if slot is not None:
                self._doom(slot, reason)
        self._apply([])

    def _gave_up(self, reason: Any) -> FarmError:
        if reason == Atom("shutdown"):
            return FarmError(
                f"the workers' keepers crashed more than {self.restart_intensity} times in "
                f"{self.restart_period} s; the farm gave up (its supervisor shut down)"
            )
        return FarmError(f"the workers' supervisor ended with {reason!r}; the farm gave up")

    def _worker_up(self, slot: _Slot, pid: Pid, host: Any, os_pid: Any) -> None:
        """Register a worker that came up with the scheduler (called by its keeper)."""
        slot.pid = pid
        slot.info = WorkerInfo(
            str(pid.node),
            host.decode("utf-8", "replace") if isinstance(host, bytes) else str(host),
            os_pid if isinstance(os_pid, int) else None,
            machine=slot.machine.host,
            came=slot.came,
        )
        self._by_pid[pid] = slot
        if slot.lane is not None:
            slot.lane.owner = pid
        if self._init_payload is not None and self._rt is not None:
            if slot.lane is not None:  # first on the lane, where the tasks go: it runs before them
                slot.lane.send([(w.INIT_TASK, self._init_payload)])
            else:
                self._rt.send(pid, (w.INIT, self._init_payload))  # it runs before the worker's first task
        if slot.came == LAUNCHED:
            self._policy.worker_up(slot.machine.host)
        self._sched.worker_up(pid)
        held, slot.handover, slot.replacing = slot.handover, [], None
        for task_id in held:  # broadcasts meant for the worker this one replaces
            self._sched.pin(task_id, pid)
        slot.busy_since = slot.per_task = None
        slot.last_report = trio.current_time()
        if self._adaptive:
            self._sched.set_capacity(pid, _PIPELINE_START)
        slot.settled.set()
        self._first_up.set()
        self._apply([])

    async def _on_done(self, pid: Any, results: Any) -> None:
        """A worker's ``pj_done``: the outcomes are unpickled in a thread, off the event loop (a
        large one holds up no tick and no other connection; a report of at most ``_INLINE_DECODE``
        bytes is unpickled on the loop: the hop would cost more), each into a ``Returned`` or
        the task's ``TaskError`` (whatever unpickling raises; the farmer lives on)."""
        if not isinstance(results, list):
            return
        items = [
            item
            for item in results
            if type(item) is tuple and len(item) == 2 and type(item[0]) is int and type(item[1]) is bytes
        ]
        if items and items[0][0] == w.INIT_TASK:  # the initializer's outcome comes first
            _, init_outcome = items.pop(0)
            await self._on_initialized(pid, init_outcome)
        data = [payload for _, payload in items if payload]
        if sum(map(len, data)) <= _INLINE_DECODE:  # small: a thread hop would cost more than it saves
            decoded = _decode_all(data)
        else:
            decoded = await trio.to_thread.run_sync(_decode_all, data, abandon_on_cancel=True)
        outcomes = iter(decoded)
        slot = self._by_pid.get(pid)
        decisions: list[Decision] = []
        now = trio.current_time()
        per_task = 0.0
        if self.speculation is not None and slot is not None and data:
            # what this report took, shared by its tasks (a worker runs its tasks in order)
            started = [t for t in (self._sched.assigned_at(i) for i, p in items if p) if t is not None]
            per_task = (now - max(slot.last_report, min(started, default=now))) / len(data)
        self.history.report(slot, items, decoded, now, self._futures, self._sched.assigned_at)
        keys = self._keys
        journaled: list[Record] = []  # this report's outcomes to journal, recorded together
        for task_id, payload in items:
            self._stopping.reported(pid, task_id)
            outcome: Returned | TaskError | None = next(outcomes) if payload else None
            if slot is not None and slot.info is not None and payload:
                slot.info.tasks_done += 1
            try:
                got = self._sched.result(pid, task_id, outcome, ok=isinstance(outcome, Returned))
            except LookupError:
                continue
            if self.speculation is not None and got and isinstance(outcome, Returned):
                self._runtimes.append(per_task)
            if keys and got and payload:
                entry = keys.pop(task_id, None)
                if entry is not None:
                    journaled.append((entry[0], entry[1], isinstance(outcome, Returned), payload))
            decisions += got
        if journaled and self.journal is not None:  # before the futures resolve
            self.journal.record_all(journaled)
            self._journal_dirty.set()
        if slot is not None:
            slot.last_report = now
        if slot is not None and slot.pid is not None:
            self._tune(slot, len(data))
        self._apply(decisions)

    def _record(self, task_id: int, payload: bytes, ok: bool) -> None:
        """Journal the outcome ``payload`` of ``task_id`` (resolved now by this report)."""
        entry = self._keys.pop(task_id, None)
        if entry is not None and self.journal is not None:
            self.journal.record(entry[0], entry[1], ok, payload)
            self._journal_dirty.set()

    async def _on_initialized(self, pid: Any, payload: bytes) -> None:
        """A worker ran the farm's initializer: if it raised, the farm is broken (as a
        ``ProcessPoolExecutor`` whose initializer fails): :class:`InitializerFailed`."""
        outcome = await trio.to_thread.run_sync(decode_outcome, payload, abandon_on_cancel=True)
        if isinstance(outcome, TaskError) and self._broken is None and not self._closing:
            slot = self._by_pid.get(pid)
            worker = str(slot.node) if slot is not None else str(getattr(pid, "node", pid))
            self._break(
                InitializerFailed(
                    worker.partition("-")[0], outcome.remote_type, outcome.message, outcome.remote_traceback
                )
            )

    def _tune(self, slot: _Slot, reported: int) -> None:
        """Adapt a worker's pipeline depth to its speed: about 10 ms of queued work, 2 to 32 tasks."""
        now = trio.current_time()
        if reported and slot.busy_since is not None:
            sample = (now - slot.busy_since) / reported
            slot.per_task = sample if slot.per_task is None else 0.7 * slot.per_task + 0.3 * sample
        slot.busy_since = now if self._sched.in_flight(slot.pid) else None
        if self._adaptive and slot.per_task is not None:
            depth = _PIPELINE_WORK / max(slot.per_task, 1e-6)
            self._sched.set_capacity(slot.pid, max(_PIPELINE_START, min(_PIPELINE_CAP, math.ceil(depth))))

    # -- carrying out decisions -------------------------------------------------------------------

    def _apply(self, decisions: list[Decision], *, kill: str | None = None) -> None:
        """Carry out ``decisions``; ``kill``: why a revoked task that is running must really stop (its
        worker is then doomed with that reason: see :meth:`_doom`), None to revoke it politely."""
        for d in decisions:
            if isinstance(d, Revocation):
                if self._erlang.revoke(d):  # an Erlang task: its process is killed
                    continue
                slot = self._by_pid.get(d.worker)  # type: ignore[call-overload]
                if slot is not None:
                    # a worker runs its tasks in order: the oldest it holds is the one running
                    running = self._sched.in_flight(d.worker)[:1] == (d.task_id,)
                    if self._rt is not None:
                        self._rt.send(d.worker, (w.REVOKE, d.task_id))  # a running one is interrupted
                    reason = d.stop or kill
                    killable = slot.process is not None or slot.came != LAUNCHED
                    if reason is not None and running and killable:
                        # killed unless it reports the task within the grace period
                        self._stopping.ask(d.worker, d.task_id, reason, trio.current_time())
            else:
                self._resolve(d)
        batches: dict[Any, list[tuple[int, bytes]]] = {}
        assignments = self._sched.dispatch(trio.current_time()) if self._desk.may_dispatch() else []
        for a in assignments:
            if not self._erlang.assign(a):  # an Erlang task starts on its node at once
                batches.setdefault(a.worker, []).append((a.task_id, a.payload))
        if self._rt is not None:
            now = trio.current_time()
            for worker, batch in batches.items():
                slot = self._by_pid.get(worker)
                lane = slot.lane if slot is not None else None
                for part in split_by_size(batch, self._message_limit):
                    if lane is not None:
                        lane.send(part)
                    else:
                        self._rt.send(worker, (w.RUN, part))
                if slot is not None and slot.busy_since is None:
                    slot.busy_since = now
        deadline = self._next_deadline()
        if deadline is not None and deadline < self._waiting_until and self._farmer_pid is not None:
            self._waiting_until = deadline
            assert self._rt is not None
            self._rt.send(self._farmer_pid, _WAKE)
        self._report()

    def _resolve(self, resolution: Completion | Loss | Expiry | Cancellation | Assignment[Any]) -> None:
        if isinstance(resolution, Assignment):
            return
        if self._keys:
            self._keys.pop(resolution.task_id, None)
        future = self._futures.pop(resolution.task_id, None)
        if future is None:
            return
        if isinstance(resolution, Completion):
            outcome = resolution.outcome
            if outcome is None:
                future._resolve(None, FarmError(f"task {future.description} was dropped by its worker"))
            elif isinstance(outcome, ResultTooLarge):  # the worker knows only the task's id
                future._resolve(None, ResultTooLarge(future.description, outcome.size, outcome.limit))
            elif isinstance(outcome, TaskError):
                future._resolve(None, outcome)
            else:
                future._resolve(outcome, None)
        elif isinstance(resolution, Loss):
            future._resolve(
                None,
                WorkerLost(
                    future.description,
                    [str(getattr(p, "node", p)) for p in resolution.workers],
                    [self._causes.get(p, "") for p in resolution.workers],  # type: ignore[call-overload]
                ),
            )
        elif isinstance(resolution, Expiry):
            future._resolve(None, TaskTimeout(future.description, resolution.timeout))
        elif isinstance(resolution, Cancellation):
            future._resolve(
                None, concurrent.futures.CancelledError(f"task {future.description} was cancelled")
            )
        if isinstance(resolution, (Loss, Expiry)) and future._error is not None:
            self.history.lost(future, future._error, trio.current_time())

    def _report(self) -> None:
        if self.progress is not None and not self._closing:
            self.progress(self.counters)

    def _cancel(self, task_id: int, *, kill: str | None) -> bool:
        if task_id not in self._futures:
            return False
        self._apply(self._sched.cancel(task_id), kill=kill)
        return True

    # -- the API -------------------------------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        """The progress counters now (``machines_down``: machines the farm has given up on)."""
        down = sum(1 for m in self._policy.status() if m.state is DOWN)
        c = self._sched.counters
        ok, failed = self._replayed
        if not ok + failed:
            return dataclasses.replace(c, machines_down=down)
        return dataclasses.replace(
            c,
            machines_down=down,
            submitted=c.submitted + ok + failed,
            resolved=c.resolved + ok + failed,
            completed=c.completed + ok,
            failed=c.failed + failed,
            replayed=ok + failed,
        )

    @property
    def machines(self) -> list[MachineStatus]:
        """Each machine's :class:`~philipjose.farm.policy.MachineStatus`: its ``host``, its ``state``
        (``UP``, ``RETRYING`` after failed launches, ``DOWN`` once the farm gave up on it), the
        ``workers`` up there, the failed launches in a row and the ``last_error`` (ssh's message, the
        exit status of a worker that did not come up, ...)."""
        return self._policy.status()

    @property
    def node(self) -> str:
        """The farmer's node name (what Erlang and Elixir callers of ``service=True`` address, and what
        ``philipjose worker --join`` takes)."""
        if self._rt is None:
            raise FarmError("the farm is not started (use `async with Farm(...) as farm`)")
        return str(self._farmer_node)

    @property
    def supervisor(self) -> Pid | None:
        """The pid of the workers' supervisor, None until the farm has started it.

        A ``one_for_one`` supervisor (``intensity``/``period``: the farm's ``restart_intensity`` and
        ``restart_period``) with one permanent child per worker slot, id ``w<N>`` for slot N, whose
        worker's node is named ``w<N>g<G>-...`` (G counts its restarts). Ask it with
        :func:`philipjose.supervisors.which_children` and ``count_children`` from a process of the same
        runtime (inside ``pj.run``); stopping or changing its children by hand is not supported.
        """
        return self._supervisor

    @property
    def servers(self) -> list[ServerStatus]:
        """Each server's :class:`~philipjose.farm.server.ServerStatus` (``Farm(servers=...)`` and
        ``kind = "server"`` machines): its address, state, the slots it granted, its last error."""
        return list(self._desk.statuses)

    @property
    def port(self) -> int:
        """The port the farmer's node listens on (``farmer_port``, or any free one): what
        ``philipjose worker --join NODE --farmer-port PORT`` takes to skip EPMD."""
        if self._rt is None:
            raise FarmError("the farm is not started (use `async with Farm(...) as farm`)")
        return self._farmer_port

    @property
    def cookie(self) -> str:
        """The farm's secret (its node's cookie): what a joining worker or a server needs. Random
        unless given as ``Farm(cookie=...)``; known once the farm has started. Never logged."""
        if self._rt is None:
            raise FarmError("the farm is not started: its cookie is chosen when it starts")
        return self._cookie.decode("utf-8", "surrogateescape")

    async def wait_for_workers(self, n: int, timeout: float | None = None) -> None:
        """Wait until at least ``n`` workers are up (Dask's ``Client.wait_for_workers``);
        ``TimeoutError`` after ``timeout`` seconds."""
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while len(self._sched.workers()) < n:
                if self._broken is not None:
                    raise self._broken
                await self._desk.changed()
            return
        raise TimeoutError(f"{len(self._sched.workers())} of {n} workers up after {timeout:g} s")

    @property
    def workers(self) -> list[WorkerInfo]:
        """The workers that came up, live ones first: node, host, OS pid, tasks done, whether alive,
        the machine it was started on, for a lost one how it ended (``cause``), and how it came
        (``came``: ``"launched"``, ``"joined"`` or ``"server"``)."""
        infos = [s.info for s in self._slots if s.info is not None] + self._erlang.infos()
        return sorted(infos, key=lambda i: not i.alive)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> FarmFuture:
        """Queue ``fn(*args, **kwargs)``; returns its :class:`FarmFuture` at once (``await`` it for
        the value). Every keyword argument is the task's: the farm's own per-call options are given
        with :meth:`options` (``farm.options(timeout=5).submit(fn, x)``). Raises ``UnpicklableTask``
        at once if it cannot be shipped and ``ArgumentsTooLarge`` if it pickles to more than
        ``max_message_size`` bytes.
        """
        payload, description, kind = encode_task(fn, args, kwargs)
        return self._submit(payload, description, kind=kind)

    def options(self, **options: Any) -> OptionsView[FarmFuture]:
        """This farm with per-call options for the tasks submitted through it (Ray's ``.options``):
        ``farm.options(timeout=5).submit(fn, *args, **kwargs)``. ``timeout`` (default: the farm's
        ``task_timeout``) bounds a task's running time on a worker; when it runs out the task fails
        with ``TaskTimeout`` and is stopped as :meth:`FarmFuture.cancel` stops it (interrupted, or its
        worker killed and replaced). See :class:`~philipjose.farm.options.TaskOptions`; an unknown
        option is a ``TypeError``."""
        return OptionsView(self._submit_with, TaskOptions().replace(**options))

    def _submit_with(
        self, options: TaskOptions, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> FarmFuture:
        payload, description, kind = encode_task(fn, args, kwargs)
        return self._submit(
            payload,
            description,
            kind=kind,
            timeout=options.timeout,
            idempotent=options.idempotent,
            key=options.key,
        )

    def _submit(
        self,
        payload: bytes,
        description: str,
        *,
        timeout: float | None = None,
        pin: Any = None,
        held: bool = False,
        dispatch: bool = True,
        idempotent: bool = True,
        key: str | bytes | None = None,
        kind: str = PYTHON,
        alone: bool = False,
    ) -> FarmFuture:
        """Queue one pickled task (or Erlang one, ``kind``); ``dispatch=False`` leaves handing it to a
        worker to the caller's next ``_apply`` (a batch of submits then costs one dispatch)."""
        if self._broken is not None:
            raise self._broken
        if not self._kind_hosts[kind] and not (kind == PYTHON and self._desk.accepting):
            raise no_workers_error(kind)
        if kind in self._kind_down:
            raise self._kind_down[kind]
        if self._rt is None:
            raise FarmError("the farm is not started (use `async with Farm(...) as farm`)")
        if len(payload) > self._message_limit:
            raise ArgumentsTooLarge(description, len(payload), self._message_limit)
        journaled: bytes | None = None
        if self.journal is not None and pin is None and not held:
            journaled = task_key(payload) if key is None else explicit_key(key)
            if journaled in self._journal_keys:  # only a recorded key is looked up
                replayed = self._replay(journaled, description)
                if replayed is not None:
                    self._report()
                    return replayed
        limit = self.task_timeout if timeout is None else timeout
        task_id = self._sched.submit(
            payload, timeout=limit, pin=pin, held=held, idempotent=idempotent, kind=kind, alone=alone
        )
        future = FarmFuture(self, task_id, f"{task_id} ({description})")
        self._futures[task_id] = future
        if journaled is not None:
            self._keys[task_id] = (journaled, description)
        if dispatch:
            self._apply([])
        return future

    async def _submit_all(
        self, payloads: Iterable[bytes], description: str, kind: str, futures: list[FarmFuture]
    ) -> None:
        """Submit each of ``payloads`` (made, pickled, as they are taken) and append its future to
        ``futures``. Every ``_SUBMIT_BUDGET`` seconds the tasks so far are handed to workers and the
        loop runs other tasks (like the BEAM's reductions), so a map of 10^5 tasks does not hold the
        farmer's node (ticks, workers' reports, the dashboard) until the last is queued."""
        started = time.perf_counter()
        for payload in payloads:
            futures.append(self._submit(payload, description, kind=kind, dispatch=False))
            if time.perf_counter() - started > _SUBMIT_BUDGET:
                self._apply([])
                await trio.lowlevel.checkpoint()
                started = time.perf_counter()
        self._apply([])

    async def map(
        self,
        fn: Callable[..., T],
        iterable: Iterable[Any],
        *iterables: Iterable[Any],
        ordered: bool = True,
        chunksize: int | None = None,
    ) -> list[T]:
        """``[fn(x) for x in iterable]`` computed on the farm (several iterables zip, as ``map``).

        ``ordered=False`` returns the results in completion order. ``chunksize`` items go in one task
        (default 1; larger chunks amortize the per-task cost for small tasks). The first error
        raises and cancels the rest.
        """
        items = list(zip(iterable, *iterables, strict=False))
        size = max(1, chunksize or 1)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        kind, payloads = map_payloads(fn, chunks, _run_chunk)
        name = describe_task(fn)
        futures: list[FarmFuture] = []
        try:
            await self._submit_all(payloads, f"map {name}", kind, futures)
            if ordered:
                results: list[T] = []
                for future in futures:
                    results.extend(await future)
                return results
            unordered: list[T] = []
            async for future in self.as_completed(futures):
                unordered.extend(future.result())
            return unordered
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()

    def as_completed(self, futures: Iterable[FarmFuture]) -> AsyncIterator[FarmFuture]:
        """``futures`` as they resolve (done ones first): ``async for future in f.as_completed(fs)``.

        An iterator object, not an async generator: leaving the loop early (``break``, an exception,
        as ``race`` does on the first success) leaves nothing to finalize, and Trio has no
        unfinished generator to warn about."""
        return _AsCompleted(futures)

    async def reduce(
        self,
        fn: Callable[[Any, Any], Any],
        iterable: Iterable[Any],
        *,
        initial: Any = _NO_INITIAL,
        chunks: int | None = None,
    ) -> Any:
        """``functools.reduce(fn, iterable, initial)`` with the work spread over the workers (lfarm's
        preduce): ``fn`` must be associative. The items are cut into ``chunks`` pieces (default: two per
        worker), each reduced on a worker, and the partial results are reduced here, in order."""
        items = list(iterable)
        if not items:
            if initial is _NO_INITIAL:
                raise TypeError("reduce() of an empty iterable with no initial value")
            return initial
        erl_fn = erlang_function(fn)
        kind = PYTHON if erl_fn is None else ERLANG
        count = max(1, min(len(items), chunks or 2 * max(1, len(self._sched.workers(kind)))))
        size = math.ceil(len(items) / count)
        pieces = [items[i : i + size] for i in range(0, len(items), size)]
        name = f"reduce {describe_task(fn)}"
        if erl_fn is not None:  # the pieces, then their partial results, folded on Erlang workers
            futures = [self._submit(reduce_task(erl_fn, p).encode(), name, kind=kind) for p in pieces]
            partials = [await f for f in futures]
            rest = partials if initial is _NO_INITIAL else [initial, *partials]
            if len(rest) == 1:
                return rest[0]
            return await self._submit(reduce_task(erl_fn, rest).encode(), name, kind=kind)
        futures = [self._submit(dumps_task(_reduce_chunk, (fn, p)), name) for p in pieces]
        partials = [await f for f in futures]
        if initial is _NO_INITIAL:
            return functools.reduce(fn, partials)
        return functools.reduce(fn, partials, initial)

    async def broadcast(self, fn: Callable[..., T], *args: Any) -> list[T]:
        """Run ``fn(*args)`` once on every live worker (lfarm's broadcast-task); one result each.

        A worker the farm is killing on purpose (a race's loser, a cancelled or timed-out task) is
        not live: the call runs on the worker that replaces it instead, once it is up; so does a
        broadcast queued on a worker the farm then kills. A worker that dies on its own fails its
        call with ``WorkerLost``.
        """
        payload, description, kind = encode_task(fn, args, {})
        name = f"broadcast {description}"
        futures: list[FarmFuture] = []
        try:
            futures.extend(
                self._submit(payload, name, pin=worker, kind=kind) for worker in self._sched.workers(kind)
            )
            for slot in self._slots:
                if kind == PYTHON and slot.replacing is not None and slot.pid is None:
                    future = self._submit(payload, name, held=True)
                    slot.handover.append(future.task_id)
                    futures.append(future)
            return [await f for f in futures]
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()

    async def race(self, *thunks: Callable[[], T]) -> T:
        """Run the thunks in parallel; the first to *succeed* wins, the others are stopped for real
        (a loser still running is interrupted, or its worker killed and replaced, as
        :meth:`FarmFuture.cancel` does). If all fail, the last error raises.
        """
        if not thunks:
            raise ValueError("race needs at least one thunk")
        futures = []
        for thunk in thunks:
            # a Python worker runs one task at a time: each competitor waits for a worker of its own
            # rather than behind another competitor (an Erlang node runs each task in its own process)
            payload, description, kind = encode_task(thunk, (), {})
            futures.append(self._submit(payload, description, kind=kind, alone=kind == PYTHON))
        error: BaseException | None = None
        try:
            async for future in self.as_completed(futures):
                exc = future.exception()
                if exc is None:
                    return future.result()  # type: ignore[no-any-return]
                error = exc
            assert error is not None
            raise error
        finally:
            for future in futures:
                if not future.done():
                    self._cancel(future.task_id, kill="race")

    async def ping(self) -> int:
        """Check every live worker answers (a broadcast of a no-op); the number that did."""
        return len(await self.broadcast(os.getpid))

    def __repr__(self) -> str:
        c = self._sched.counters
        return f"<Farm {self._name} workers={c.workers} done={c.resolved}/{c.submitted}>"


def current_runtime_or_none() -> Runtime | None:
    try:
        return current_runtime()
    except NoProcessError:
        return None


def _decode_all(data: list[bytes]) -> list[Returned | TaskError]:
    return [decode_outcome(payload) for payload in data]


def _dashboard_address(address: int | str) -> tuple[str, int]:
    """``Farm(dashboard=...)`` checked: the dashboard's extra is installed and the address is valid."""
    from philipjose.dashboard import parse_address, require  # the optional extra, imported when asked

    require()
    return parse_address(address)


def _check_cookie(cookie: str | bytes) -> bytes:
    secret = cookie.encode() if isinstance(cookie, str) else cookie
    if (
        not isinstance(secret, bytes)
        or not secret
        or len(secret) > 1024
        or any(b in secret for b in b"\r\n\0")
    ):
        raise ValueError("a farm's cookie is 1 to 1024 bytes without newlines or NULs")
    return secret


def _fqdn() -> str:
    import socket

    return socket.getfqdn()
