"""How processes end: normal return, pj.Exit, crashes (reason shape, logging), kills of blocked code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom
from philipjose.term import binary_to_term, term_to_binary

from .helpers import KILLED, NORMAL, SHUTDOWN, forever, run, wait_down


async def _returns() -> int:
    return 7


async def _raises_exit(reason: Any) -> None:
    raise pj.Exit(reason)


async def _crashes() -> None:
    def inner() -> float:
        return 1 / 0

    inner()


class CustomError(Exception):
    pass


async def _custom_crash() -> None:
    raise CustomError("custom text")


def test_return_is_normal_exit() -> None:
    async def main() -> Any:
        _pid, ref = pj.spawn_monitor(_returns)
        return await wait_down(ref)

    assert run(main) == NORMAL


def test_exit_reason_and_str_conversion() -> None:
    async def main() -> list[Any]:
        out = []
        for reason in [Atom("shutdown"), "boom", ("shutdown", 1), {"k": [1, 2]}]:
            _pid, ref = pj.spawn_monitor(_raises_exit, reason)
            out.append(await wait_down(ref))
        return out

    assert run(main) == [SHUTDOWN, Atom("boom"), ("shutdown", 1), {"k": [1, 2]}]


def test_crash_reason_is_etf_encodable_with_type_message_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[Any]:
        reasons = []
        for fn in (_crashes, _custom_crash):
            _pid, ref = pj.spawn_monitor(fn)
            reasons.append(await wait_down(ref))
        return reasons

    with caplog.at_level(logging.ERROR, logger="philipjose.actors"):
        zero, custom = run(main)
    assert zero[:3] == (Atom("python_exception"), b"ZeroDivisionError", b"division by zero")
    assert b"Traceback" in zero[3] and b"inner" in zero[3] and b"ZeroDivisionError" in zero[3]
    assert custom[1] == f"{__name__}.CustomError".encode()
    assert custom[2] == b"custom text"
    assert binary_to_term(term_to_binary(zero)) == zero
    assert binary_to_term(term_to_binary(custom)) == custom
    crash_logs = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crash_logs) == 2
    assert crash_logs[0].exc_info is not None and crash_logs[0].exc_info[0] is ZeroDivisionError


def test_quiet_reasons_are_not_logged_but_abnormal_exits_are(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        for reason in ["normal", "shutdown", (Atom("shutdown"), "why"), "abnormal"]:
            _pid, ref = pj.spawn_monitor(_raises_exit, reason)
            await wait_down(ref)
        _pid, ref = pj.spawn_monitor(_returns)
        await wait_down(ref)
        # killed by a signal: not a crash of that process, not logged
        pid, ref = pj.spawn_monitor(forever)
        pj.exit(pid, "kill")
        await wait_down(ref)

    with caplog.at_level(logging.DEBUG, logger="philipjose.actors"):
        run(main)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("philipjose.actors")]
    assert len(messages) == 1 and "abnormal" in messages[0]


def test_main_exception_propagates_out_of_run() -> None:
    async def main() -> None:
        raise KeyError("from main")

    with pytest.raises(KeyError, match="from main"):
        run(main)


def test_main_exit_reasons() -> None:
    async def normal_exit() -> None:
        raise pj.Exit("normal")

    async def abnormal_exit() -> None:
        raise pj.Exit("bad")

    assert run(normal_exit) is None
    with pytest.raises(pj.Exit) as info:
        run(abnormal_exit)
    assert info.value.reason == Atom("bad")


def test_main_killed_by_linked_crash_raises_exit() -> None:
    async def main() -> None:
        pj.spawn_link(_raises_exit, "linked_failure")
        await trio.sleep_forever()

    with pytest.raises(pj.Exit) as info:
        run(main)
    assert info.value.reason == Atom("linked_failure")


def test_other_processes_are_cancelled_when_main_returns() -> None:
    cleaned: list[str] = []

    async def worker() -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append("worker")

    async def main() -> str:
        for _ in range(3):
            pj.spawn(worker)
        await trio.sleep(1)
        return "done"

    assert run(main) == "done"
    assert cleaned == ["worker"] * 3


# Kills of processes blocked in any await: tests/actors/test_killscope.py (run with both kill scopes).


def test_exit_with_reason_cancels_blocked_process_with_that_reason() -> None:
    async def main() -> Any:
        pid, ref = pj.spawn_monitor(trio.sleep_forever)
        await trio.testing.wait_all_tasks_blocked()
        pj.exit(pid, "custom")
        return await wait_down(ref)

    assert run(main) == Atom("custom")


def test_killed_before_it_ever_ran() -> None:
    ran: list[str] = []

    async def body() -> None:
        ran.append("ran")

    async def main() -> Any:
        pid, ref = pj.spawn_monitor(body)
        pj.exit(pid, "kill")
        return await wait_down(ref)

    assert run(main) == KILLED
    assert ran == []


def test_kill_reaches_a_process_draining_a_flood_within_its_budget() -> None:
    drained: list[int] = []

    async def drainer() -> None:
        while True:
            drained.append(await pj.receive())

    async def main() -> Any:
        pid, ref = pj.spawn_monitor(drainer)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(10 * pj.actors.REDUCTIONS):
            pj.send(pid, i)
        await trio.lowlevel.checkpoint()  # let the drainer start
        pj.exit(pid, "kill")
        return await wait_down(ref)

    assert run(main) == KILLED
    assert len(drained) <= 2 * pj.actors.REDUCTIONS


def test_exit_self_raises_exit() -> None:
    async def self_kill(reason: str) -> None:
        pj.exit(pj.self(), reason)
        raise AssertionError("not reached")

    async def main() -> list[Any]:
        out = []
        for reason in ("kill", "normal", "other"):
            _pid, ref = pj.spawn_monitor(self_kill, reason)
            out.append(await wait_down(ref))
        return out

    assert run(main) == [KILLED, NORMAL, Atom("other")]


def test_cpu_bound_code_cannot_be_interrupted_until_it_awaits() -> None:
    progress: list[str] = []

    async def killer(victim: pj.Pid) -> None:
        pj.exit(victim, "kill")

    async def busy() -> None:
        pj.spawn(killer, pj.self())
        await trio.lowlevel.cancel_shielded_checkpoint()  # the killer runs here
        progress.append("sync code after the kill still runs")
        await trio.lowlevel.checkpoint()  # ... until the next checkpoint
        progress.append("never")

    async def main() -> Any:
        _pid, ref = pj.spawn_monitor(busy)
        return await wait_down(ref)

    assert run(main) == KILLED
    assert progress == ["sync code after the kill still runs"]


def test_finally_blocks_run_when_killed() -> None:
    async def careful(to: pj.Pid) -> None:
        try:
            await pj.receive()
        finally:
            pj.send(to, "cleaned up")

    async def main() -> Any:
        pid = pj.spawn(careful, pj.self())
        await trio.testing.wait_all_tasks_blocked()
        pj.exit(pid, "kill")
        return await pj.receive(timeout=1)

    assert run(main) == "cleaned up"
