"""``Executor``: the farm behind the ``concurrent.futures.Executor`` interface, for synchronous code.

``with farm.Executor(workers=4) as ex: results = list(ex.map(f, xs))`` runs a :class:`~philipjose.farm.Farm`
under ``trio.run`` in a background thread; ``submit`` hands each call to it through
``trio.from_thread`` and returns a ``concurrent.futures.Future``. Existing code written for
``ProcessPoolExecutor`` switches with one line. Differences: a task whose worker dies is rerun
(at-least-once) rather than breaking the pool, and a remote exception arrives as
:class:`~philipjose.farm.errors.TaskError` (the original exception is its ``__cause__`` when it can be
rebuilt).

Ctrl-C: the workers run in process groups of their own and never see the terminal's SIGINT; the
``KeyboardInterrupt`` is raised in the main thread, as with any Python code. Leaving the ``with``
block with it (or any ``BaseException`` that is not an ``Exception``) closes the farm at once instead
of waiting for the pending futures: they fail with ``FarmError``, the workers are stopped and reaped,
and the ``KeyboardInterrupt`` goes on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import trio

from philipjose.farm.errors import FarmError
from philipjose.farm.farm import Farm, FarmFuture, _run_chunk
from philipjose.farm.scheduler import PENDING
from philipjose.farm.shipping import describe_task, dumps_task

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


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` running tasks on a farm; takes :class:`Farm`'s arguments.

    The farm starts in the constructor (workers up before it returns) and stops in :meth:`shutdown`.
    """

    def __init__(self, workers: int | None = None, machines: Any = None, **farm_options: Any) -> None:
        self._farm = Farm(workers, machines, **farm_options)
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._shutdown = False
        self._lock = threading.Lock()
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

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Schedule ``fn(*args, **kwargs)``; returns a ``concurrent.futures.Future``.

        Raises ``RuntimeError`` after shutdown and ``UnpicklableTask`` at once for a task that cannot
        be shipped.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._error is not None:
                raise FarmError(f"the farm stopped: {self._error}")
            payload = dumps_task(_call, (fn, args, kwargs))
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            assert self._token is not None
            farm_future = trio.from_thread.run_sync(
                self._submit, payload, describe_task(fn), future, trio_token=self._token
            )
            future.add_done_callback(functools.partial(self._forward_cancel, farm_future=farm_future))
            return future

    def map(
        self, fn: Callable[..., T], *iterables: Any, timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[T]:
        """Like ``Executor.map``; ``chunksize`` items are sent as one task (as ProcessPoolExecutor)."""
        items = list(zip(*iterables, strict=False))
        size = max(1, chunksize)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        futures = self._submit_many([(_run_chunk, (fn, chunk)) for chunk in chunks], describe_task(fn))
        return _chain_results(futures, timeout)

    def _submit_many(
        self, calls: list[tuple[Callable[..., Any], tuple[Any, ...]]], description: str
    ) -> list[concurrent.futures.Future[Any]]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            payloads = [dumps_task(fn, args) for fn, args in calls]
            futures: list[concurrent.futures.Future[Any]] = [concurrent.futures.Future() for _ in payloads]
            assert self._token is not None

            def submit_all() -> list[FarmFuture]:
                return [self._submit(p, description, f) for p, f in zip(payloads, futures, strict=True)]

            farm_futures = trio.from_thread.run_sync(submit_all, trio_token=self._token)
            for future, farm_future in zip(futures, farm_futures, strict=True):
                future.add_done_callback(functools.partial(self._forward_cancel, farm_future=farm_future))
            return futures

    def _submit(self, payload: bytes, description: str, future: concurrent.futures.Future[Any]) -> FarmFuture:
        farm_future = self._farm._submit(payload, description)

        def done(ff: FarmFuture) -> None:
            if ff.cancelled():
                future.cancel()
                return
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(ff.result())
            except BaseException as exc:
                future.set_exception(exc)

        farm_future.add_done_callback(done)
        return farm_future

    def _forward_cancel(self, future: concurrent.futures.Future[Any], *, farm_future: FarmFuture) -> None:
        if farm_future.done():
            return  # resolved already (this is the farm's own cancellation coming back)
        if future.cancelled() and self._token is not None and not self._shutdown_complete():
            try:
                trio.from_thread.run_sync(farm_future.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                return

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
        """Stop accepting tasks; with ``cancel_futures`` cancel those not started; with ``wait``
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
            if cancel_futures:  # those not started: queued on the farmer (running ones finish)
                for future in list(self._farm._futures.values()):
                    if self._farm._sched.state(future.task_id) is PENDING:
                        future.cancel()
            while self._farm._futures:
                await next(iter(self._farm._futures.values())).wait()
            assert self._stop is not None
            self._stop.set()

        def start_finish() -> None:
            self._farm._nursery.start_soon(finish)  # type: ignore[union-attr]

        try:
            trio.from_thread.run_sync(start_finish, trio_token=token)
        except trio.RunFinishedError:
            return
        if wait:
            self._thread.join()
