"""``Executor``: the farm behind the ``concurrent.futures.Executor`` interface, for synchronous code.

``with farm.Executor(max_workers=4) as ex: results = list(ex.map(f, xs))`` runs a
:class:`~philipjose.farm.Farm` under ``trio.run`` in a background thread. Code written for
``ProcessPoolExecutor`` switches with one line: the constructor takes the pool's arguments
(``max_workers``, ``initializer``, ``initargs``; ``mp_context`` and ``max_tasks_per_child`` are
refused with a message saying why) besides the farm's own (``machines=...``, ``task_timeout=...``, ...),
and a task's exception is re-raised as itself, with the remote traceback as its ``__cause__`` (a
:class:`~philipjose.farm.errors.RemoteTraceback`, as the pool does); one that cannot be rebuilt here
arrives as :class:`~philipjose.farm.errors.TaskError`. Differences: a task whose worker dies is rerun
(at-least-once) rather than breaking the pool; ``cancel()`` succeeds on a running task too, and stops
it (see "Cancel" in ``docs/farm.md``); a task's ``SystemExit`` or ``KeyboardInterrupt`` arrives as a
``TaskError``, not as itself.

Theory of operation: ``submit`` never waits for the farm's thread. It pickles the task in the
caller's thread, appends it to a queue (a deque under a lock) and, only when the queue was empty,
asks the Trio thread to drain it (``TrioToken.run_sync_soon``: a wake-up, no round trip). The drain
hands every queued task to the farm and dispatches them together, so a burst of submits costs one
wake-up and one dispatch. A future cancelled while still queued is skipped by the drain; one
cancelled later has its cancel forwarded the same way. Results are set on the
``concurrent.futures.Future`` from the Trio thread, which wakes the caller's ``result()``,
``as_completed`` or ``wait``.

Ctrl-C: the workers run in process groups of their own and never see the terminal's SIGINT; the
``KeyboardInterrupt`` is raised in the main thread, as with any Python code. Leaving the ``with``
block with it (or any ``BaseException`` that is not an ``Exception``) closes the farm at once instead
of waiting for the pending futures: they fail with ``FarmError``, the workers are stopped and reaped,
and the ``KeyboardInterrupt`` goes on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import trio

from philipjose.farm.erlang import encode_task, map_payloads
from philipjose.farm.errors import ArgumentsTooLarge, FarmError, original_exception
from philipjose.farm.farm import Farm, FarmFuture, _run_chunk
from philipjose.farm.options import OptionsView, TaskOptions
from philipjose.farm.scheduler import PENDING
from philipjose.farm.shipping import describe_task

__all__ = ["Executor"]

T = TypeVar("T")


def _chain_results(futures: list[concurrent.futures.Future[list[T]]], timeout: float | None) -> Iterator[T]:
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for future in futures:
            remaining = None if deadline is None else deadline - time.monotonic()
            yield from future.result(remaining)
    finally:
        for future in futures:
            future.cancel()


class _Future(concurrent.futures.Future[Any]):
    """A ``concurrent.futures.Future`` whose ``cancel`` also reaches the farm's task."""

    def __init__(self, executor: Executor) -> None:
        super().__init__()
        self._executor = executor
        self._farm_future: FarmFuture | None = None  # set (in the farm's thread) once handed over
        self._cancel_asked = False  # read without the future's lock by the drain

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        self._cancel_asked = True
        self._executor._forward_cancel(self)
        return True


# (payload, description, future, the task's options, its kind: Python or Erlang)
_Queued = tuple[bytes, str, _Future, TaskOptions, str]
_DRAIN_BATCH = 500  # queued tasks handed to the farm per turn of its loop (about 5 ms of its time)


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` running tasks on a farm: ``ProcessPoolExecutor``'s arguments,
    then :class:`Farm`'s (``workers=`` is another name for ``max_workers``).

    ``initializer(*initargs)`` runs on every worker before its first task (replacements included);
    if it raises, the farm is broken: pending and later tasks fail with
    :class:`~philipjose.farm.errors.InitializerFailed` (a ``BrokenProcessPool``). The farm starts in
    the constructor (workers up before it returns) and stops in :meth:`shutdown`.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        workers: int | None = None,
        machines: Any = None,
        **farm_options: Any,
    ) -> None:
        if mp_context is not None:
            raise TypeError(
                "farm.Executor takes no mp_context: its workers are philipjose worker processes that the "
                "farm starts itself (locally or over ssh), not multiprocessing children; drop the "
                "argument (machines=... chooses where the workers run)"
            )
        if max_tasks_per_child is not None:
            raise TypeError(
                "farm.Executor does not support max_tasks_per_child: a farm's workers live until they "
                "die or the farm closes (a dead worker is replaced and its tasks rerun)"
            )
        if max_workers is not None and workers is not None and max_workers != workers:
            raise ValueError(f"give max_workers or workers, not both ({max_workers} and {workers})")
        count = workers if max_workers is None else max_workers
        if count is not None and count <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._farm = Farm(count, machines, initializer=initializer, initargs=initargs, **farm_options)
        # The farm's node does not busy-poll its connections: the caller's thread needs the GIL to
        # pick up each result and submit the next task, and a polling reader would keep it waiting.
        self._farm._node_options["busy_wait"] = 0.0
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._shutdown = False
        self._lock = threading.Lock()
        self._queue: deque[_Queued] = deque()
        self._drain_due = False  # a drain is scheduled on the farm's thread (under _lock)
        self._thread = threading.Thread(target=self._run, name="philipjose-farm", daemon=True)
        self._thread.start()
        self._ready.wait()
        error = self._failure()
        if error is not None:
            self._thread.join()
            raise error

    def _failure(self) -> BaseException | None:
        return self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with self._farm:
            self._ready.set()
            await self._stop.wait()

    @property
    def farm(self) -> Farm:
        """The :class:`Farm` underneath (touch it only from its thread)."""
        return self._farm

    @property
    def dashboard_url(self) -> str | None:
        """The URL of the farm's dashboard (``Executor(dashboard=PORT)``), None without one."""
        return self._farm.dashboard_url

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Schedule ``fn(*args, **kwargs)``; returns a ``concurrent.futures.Future`` at once, without
        waiting for the farm's thread. Every keyword argument is the task's; per-call options go
        through :meth:`options`.

        Raises ``RuntimeError`` after shutdown, the farm's error once it is broken,
        ``UnpicklableTask`` at once for a task that cannot be shipped and ``ArgumentsTooLarge`` for
        one over ``max_message_size``.
        """
        return self._submit_with(_DEFAULT_OPTIONS, fn, args, kwargs)

    def options(self, **options: Any) -> OptionsView[concurrent.futures.Future[Any]]:
        """Per-call options, as :meth:`Farm.options`: ``ex.options(timeout=5).submit(fn, x)``."""
        return OptionsView(self._submit_with, TaskOptions().replace(**options))

    def _submit_with(
        self, options: TaskOptions, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        self._check_open()
        payload, description, kind = encode_task(fn, args, kwargs)
        self._check_size(payload, description)
        future = _Future(self)
        self._enqueue([(payload, description, future, options, kind)])
        return future

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if self._error is not None:
            raise FarmError(f"the farm stopped: {self._error}")
        broken = self._farm._broken
        if broken is not None:
            raise broken

    def _check_size(self, payload: bytes, description: str) -> None:
        limit = self._farm._message_limit
        if len(payload) > limit:
            raise ArgumentsTooLarge(description, len(payload), limit)

    def _enqueue(self, items: list[_Queued]) -> None:
        """Queue tasks for the farm's thread; wake it only when nothing was queued before."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.extend(items)
            wake, self._drain_due = not self._drain_due, True
        if wake:
            assert self._token is not None
            try:
                self._token.run_sync_soon(self._drain)
            except trio.RunFinishedError:
                self._fail_queued(FarmError("the farm stopped"))

    def _fail_queued(self, error: BaseException) -> None:
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
        for _, _, future, _, _ in items:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    def _drain(self) -> None:
        """(The farm's thread) hand the queued tasks to the farm, then dispatch them together: at most
        ``_DRAIN_BATCH`` of them, then this runs again after whatever else the loop has to do (ticks,
        reports), so an ``Executor.map`` of 10^5 tasks does not hold the farm's node meanwhile."""
        with self._lock:
            items = [self._queue.popleft() for _ in range(min(_DRAIN_BATCH, len(self._queue)))]
            again = self._drain_due = bool(self._queue)
        if again:
            assert self._token is not None
            self._token.run_sync_soon(self._drain)
        farm = self._farm
        for payload, description, future, options, kind in items:
            if future._cancel_asked:  # cancelled while queued here: it never reaches the farm
                future.set_running_or_notify_cancel()  # tells wait() and as_completed()
                continue
            try:
                farm_future = farm._submit(
                    payload,
                    description,
                    timeout=options.timeout,
                    idempotent=options.idempotent,
                    key=options.key,
                    dispatch=False,
                    kind=kind,
                )
            except FarmError as exc:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
                continue
            future._farm_future = farm_future
            farm_future._on_behalf = future
            farm_future.add_done_callback(self._resolved)
        if items and farm._rt is not None:
            farm._apply([])

    @staticmethod
    def _resolved(ff: FarmFuture) -> None:
        """(The farm's thread) the farm resolved ``ff``: resolve the caller's future alike."""
        future = ff._on_behalf
        assert isinstance(future, _Future)
        # the caller's future no longer holds the farm's (nor the farm's it): a resolved task then
        # costs the caller's process a plain Future, freed by reference counting, never by the GC
        ff._on_behalf = future._farm_future = None
        if ff.cancelled():
            concurrent.futures.Future.cancel(future)  # the farm's own cancel: nothing to forward
            future.set_running_or_notify_cancel()  # tells wait() and as_completed()
            return
        try:
            value = ff.result()
        except BaseException as exc:
            outcome: tuple[bool, Any] = (False, original_exception(exc))
        else:
            outcome = (True, value)
        try:  # from PENDING straight to FINISHED: one lock, not two
            if outcome[0]:
                future.set_result(outcome[1])
            else:
                future.set_exception(outcome[1])
        except concurrent.futures.InvalidStateError:  # the caller cancelled it meanwhile
            future.set_running_or_notify_cancel()

    def map(
        self, fn: Callable[..., T], *iterables: Any, timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[T]:
        """Like ``Executor.map``; ``chunksize`` items are sent as one task (as ProcessPoolExecutor)."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        self._check_open()
        items = list(zip(*iterables, strict=False))
        chunks = [items[i : i + chunksize] for i in range(0, len(items), chunksize)]
        description = describe_task(fn)
        kind, payloads = map_payloads(fn, chunks, _run_chunk)
        queued: list[_Queued] = []
        for payload in payloads:
            self._check_size(payload, description)
            queued.append((payload, description, _Future(self), _DEFAULT_OPTIONS, kind))
        self._enqueue(queued)
        return _chain_results([q[2] for q in queued], timeout)

    def _forward_cancel(self, future: _Future) -> None:
        """The caller cancelled ``future``: cancel its farm task too (on the farm's thread)."""
        if self._token is None or self._shutdown_complete():
            return
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._cancel_in_farm, future)

    @staticmethod
    def _cancel_in_farm(future: _Future) -> None:
        ff = future._farm_future
        if ff is not None and not ff.done():  # None: still queued, the drain skips it
            ff.cancel()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self._abort()
        else:
            self.shutdown(wait=True)

    def _abort(self) -> None:
        """Close the farm now, without waiting for pending futures (they fail with ``FarmError``)."""
        with self._lock:
            self._shutdown = True
        if self._token is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()

    def _shutdown_complete(self) -> bool:
        return not self._thread.is_alive()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; with ``cancel_futures`` cancel those not yet sent to a worker (before
        returning, as ``ProcessPoolExecutor``); with ``wait``
        wait for the others, then stop the workers and the farm's thread."""
        with self._lock:
            if self._shutdown:
                if wait:
                    self._thread.join()
                return
            self._shutdown = True
        if self._token is None or not self._thread.is_alive():
            return
        token = self._token

        async def finish() -> None:
            while self._farm._futures:
                await next(iter(self._farm._futures.values())).wait()
            assert self._stop is not None
            self._stop.set()

        def start_finish() -> None:
            # on return the futures to cancel are cancelled, as with ProcessPoolExecutor
            self._drain()  # whatever is still queued here goes to the farm first
            if cancel_futures:  # those not sent to a worker yet (the others finish)
                for future in list(self._farm._futures.values()):
                    if self._farm._sched.state(future.task_id) is PENDING:
                        future.cancel()
            self._farm._nursery.start_soon(finish)  # type: ignore[union-attr]

        try:
            trio.from_thread.run_sync(start_finish, trio_token=token)
        except trio.RunFinishedError:
            return
        if wait:
            self._thread.join()


_DEFAULT_OPTIONS = TaskOptions()
