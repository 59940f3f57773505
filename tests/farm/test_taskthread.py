"""The worker's task thread: values, exceptions, one thread in order, cancellation abandons."""

from __future__ import annotations

import threading

import pytest
import trio

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


async def test_a_cancelled_call_is_abandoned_and_the_thread_goes_on() -> None:
    thread = TaskThread()
    release = threading.Event()
    try:
        with trio.move_on_after(0.05) as scope:
            await thread.run(release.wait)
        assert scope.cancelled_caught
        release.set()  # the abandoned call ends; its outcome is dropped
        assert await thread.run(lambda: "next") == "next"
    finally:
        thread.close()
