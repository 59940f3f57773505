"""Stopping a task's thread with TaskCancelled (threads only, no processes)."""

from __future__ import annotations

import threading
import time

from philipjose.farm.interrupt import Interrupter, TaskCancelled
from philipjose.farm.shipping import dumps_task, loads_outcome, run_task

_STARTED = threading.Event()  # a module global: the task travels by reference, the event stays here


def spin() -> None:
    _STARTED.set()
    while True:
        pass


def quick(x: int) -> int:
    for _ in range(2000):
        pass
    return x + 1


def test_a_running_python_loop_is_stopped() -> None:
    interrupter = Interrupter()
    results: list[bytes] = []
    thread = threading.Thread(
        target=lambda: results.append(run_task(dumps_task(spin), task=1, interrupter=interrupter))
    )
    _STARTED.clear()
    thread.start()
    assert _STARTED.wait(10)
    assert not interrupter.interrupt(2)  # another task: not running
    assert interrupter.interrupt(1)
    thread.join(10)
    assert not thread.is_alive() and results == [b""]
    assert not interrupter.interrupt(1)  # done with


def test_nothing_leaks_out_of_a_task_that_ended_before_the_interrupt() -> None:
    interrupter = Interrupter()
    assert not interrupter.interrupt(None)
    assert not interrupter.interrupt(0)  # nothing runs
    assert loads_outcome(run_task(dumps_task(quick, (1,)), task=0, interrupter=interrupter)).value == 2  # type: ignore[union-attr]
    assert not interrupter.interrupt(0)
    time.sleep(0.01)  # (a leaked exception would surface in this thread's next bytecodes)


def test_interrupts_racing_with_quick_tasks_never_escape_run_task() -> None:
    interrupter = Interrupter()
    stop = threading.Event()
    escaped: list[BaseException] = []
    outcomes: list[bytes] = []

    def runner() -> None:
        try:
            for i in range(3000):
                outcomes.append(run_task(dumps_task(quick, (i,)), task=i, interrupter=interrupter))
                for _ in range(50):  # bytecodes after each task, where a stray exception would land
                    pass
        except TaskCancelled as exc:
            escaped.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=runner)
    thread.start()
    hits = 0
    while not stop.is_set():
        hits += interrupter.interrupt(interrupter._task)  # whatever runs now, at any point of it
    thread.join(30)
    assert escaped == []
    assert 0 < hits == sum(o == b"" for o in outcomes)  # each interrupt stopped its task, no other
    assert len(outcomes) == 3000
    assert all(o == b"" or loads_outcome(o).value == i + 1 for i, o in enumerate(outcomes))  # type: ignore[union-attr]
