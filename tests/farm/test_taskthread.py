"""The worker's task thread: values, exceptions, one thread in order, cancellation abandons."""

from __future__ import annotations

import threading
import time

import pytest
import trio
import trio.testing

from philipjose.farm.taskthread import TaskThread


async def test_calls_run_in_one_other_thread_in_order() -> None:
    thread = TaskThread()
    try:
        seen: list[int] = []
        idents = {await thread.run(lambda i=i: (seen.append(i), threading.get_ident())[1]) for i in range(50)}
        assert seen == list(range(50))
        assert len(idents) == 1 and threading.get_ident() not in idents
        assert await thread.run(divmod, 7, 2) == (3, 1)
        with pytest.raises(ZeroDivisionError):
            await thread.run(divmod, 1, 0)
    finally:
        thread.close()


@pytest.mark.parametrize(("wait", "next_wait"), [(0.0, 0.0), (0.001, 1.0)], ids=["no wait", "after its wait"])
async def test_a_cancelled_call_is_abandoned_and_the_thread_goes_on(wait: float, next_wait: float) -> None:
    thread = TaskThread()
    release = threading.Event()
    try:
        with trio.move_on_after(0.05) as scope:
            await thread.run(release.wait, wait=wait)
        assert scope.cancelled_caught
        release.set()  # the abandoned call ends; its outcome is dropped
        assert await thread.run(lambda: "next", wait=next_wait) == "next"
    finally:
        thread.close()


async def test_with_wait_a_quick_call_returns_without_yielding_and_a_slow_one_still_returns() -> None:
    thread = TaskThread()
    release = threading.Event()
    try:
        assert await thread.run(divmod, 7, 2, wait=5.0) == (3, 1)  # done long before the wait ends
        with pytest.raises(ZeroDivisionError):
            await thread.run(divmod, 1, 0, wait=5.0)
        # done within the wait: nothing else ran meanwhile (the call did not go through the scheduler)
        ran: list[str] = []

        async def other() -> None:
            ran.append("other")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            assert await thread.run(lambda: "quick", wait=5.0) == "quick"
            assert ran == []  # the nursery's task has not had a turn yet
        assert ran == ["other"]
        # not done within the wait: the loop goes on meanwhile, and the outcome arrives through it
        got: list[bool] = []

        async def slow() -> None:
            got.append(await thread.run(release.wait, wait=0.001))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.testing.wait_all_tasks_blocked()  # slow() gave up waiting and is parked
            assert got == []
            release.set()
        assert got == [True]
    finally:
        thread.close()


async def test_calls_that_end_as_the_wait_gives_up_are_delivered_once_each() -> None:
    """A call that ends just as its wait runs out is the race the call's lock settles: every call
    returns exactly its own value, once, whichever way it came back."""
    thread = TaskThread()
    try:
        for i in range(300):
            wait = (i % 7) * 20e-6
            spin = (i % 5) * 20e-6

            def busy(i: int = i, spin: float = spin) -> int:
                end = time.perf_counter() + spin
                while time.perf_counter() < end:
                    pass
                return i

            assert await thread.run(busy, wait=wait) == i
    finally:
        thread.close()
