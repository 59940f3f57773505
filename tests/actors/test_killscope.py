"""Kills of processes blocked anywhere, with the cancel scope made at kill time (``killscope.LAZY``) and
with the eager per-process scope used when Trio's internals are not the expected ones: same results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing

import philipjose as pj
from philipjose import Atom
from philipjose.actors import killscope

from .helpers import KILLED, run, wait_down


@pytest.fixture(autouse=True, params=["lazy", "eager"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "lazy" and not killscope.LAZY:
        pytest.fail("this Trio release changed the internals killscope relies on; update killscope")
    monkeypatch.setattr(killscope, "LAZY", request.param == "lazy")
    yield request.param


async def _kill_when_blocked(body: Any, *args: Any, reason: str = "kill") -> Any:
    pid, ref = pj.spawn_monitor(body, *args)
    await trio.testing.wait_all_tasks_blocked()
    pj.exit(pid, reason)
    assert not pj.is_alive(pid)
    return await wait_down(ref)


@pytest.mark.parametrize(
    "blocker", ["receive", "receive_timeout", "sleep", "event", "socket", "nursery", "nursery_start"]
)
def test_kill_ends_a_process_blocked_in_any_await(blocker: str) -> None:
    reached: list[str] = []

    async def blocked() -> None:
        if blocker == "receive":
            await pj.receive()
        elif blocker == "receive_timeout":
            await pj.receive(timeout=10_000)
        elif blocker == "sleep":
            await trio.sleep(10_000)
        elif blocker == "event":
            await trio.Event().wait()
        elif blocker == "socket":
            a, b = trio.socket.socketpair()
            with a, b:
                await a.recv(10)
        elif blocker == "nursery":
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
        else:

            async def never_started(task_status: trio.TaskStatus[None]) -> None:
                await trio.sleep_forever()

            async with trio.open_nursery() as nursery:
                await nursery.start(never_started)
        reached.append("after")

    assert run(_kill_when_blocked, blocked) == KILLED
    assert reached == []


def test_the_process_own_cancel_scopes_do_not_absorb_the_kill() -> None:
    reached: list[str] = []

    async def blocked() -> None:
        with trio.move_on_after(10_000) as outer:
            with trio.CancelScope() as inner:
                await trio.sleep_forever()
            reached.append(f"after inner scope, caught={inner.cancelled_caught}")
        reached.append(f"after outer scope, caught={outer.cancelled_caught}")

    assert run(_kill_when_blocked, blocked) == KILLED
    assert reached == []


def test_the_kill_persists_at_every_later_checkpoint() -> None:
    seen: list[str] = []

    async def stubborn() -> None:
        for _ in range(3):
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                seen.append("cancelled")
        seen.append("gave up")

    assert run(_kill_when_blocked, stubborn) == KILLED
    assert seen == ["cancelled", "cancelled", "cancelled", "gave up"]


def test_a_shielded_section_finishes_before_the_kill_lands() -> None:
    steps: list[str] = []

    async def shielded() -> None:
        with trio.CancelScope(shield=True):
            await trio.sleep(5)  # the kill waits for the shield...
            steps.append("shield done")
        await trio.lowlevel.checkpoint()  # ... and lands at the next checkpoint outside it
        steps.append("never")

    async def main() -> Any:
        pid, ref = pj.spawn_monitor(shielded)
        await trio.testing.wait_all_tasks_blocked()
        pj.exit(pid, "kill")
        assert not pj.is_alive(pid)
        return trio.current_time(), await wait_down(ref), trio.current_time()

    before, reason, after = run(main)
    assert (reason, after - before) == (KILLED, 5)
    assert steps == ["shield done"]


def test_child_tasks_in_nested_scopes_are_cancelled_with_their_process() -> None:
    ended: list[str] = []

    async def child(name: str) -> None:
        try:
            with trio.move_on_after(10_000):
                await trio.sleep_forever()
            ended.append(f"{name} not cancelled")
        finally:
            ended.append(name)

    async def parent() -> None:
        with trio.CancelScope():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(child, "a")
                nursery.start_soon(child, "b")

    assert run(_kill_when_blocked, parent) == KILLED
    assert sorted(ended) == ["a", "b"]


def test_other_exit_reasons_cancel_with_that_reason_and_spare_the_others() -> None:
    async def main() -> Any:
        bystander, bystander_ref = pj.spawn_monitor(trio.sleep, 5)
        reason = await _kill_when_blocked(trio.sleep_forever, reason="custom")
        assert pj.is_alive(bystander)
        return reason, await wait_down(bystander_ref)

    assert run(main) == (Atom("custom"), Atom("normal"))


def test_killed_twice_and_killed_by_a_link_while_blocked() -> None:
    async def linked_sleeper() -> None:
        async def crasher() -> None:
            await trio.sleep(1)
            raise pj.Exit("boom")

        pj.spawn_link(crasher)
        await trio.sleep_forever()

    async def main() -> Any:
        pid, ref = pj.spawn_monitor(linked_sleeper)
        first = await wait_down(ref)
        pid2, ref2 = pj.spawn_monitor(trio.sleep_forever)
        await trio.testing.wait_all_tasks_blocked()
        pj.exit(pid2, "one")
        pj.exit(pid2, "kill")  # already doomed: the first reason stands
        return first, await wait_down(ref2), pj.is_alive(pid)

    assert run(main) == (Atom("boom"), Atom("one"), False)


def test_a_killed_process_unwinds_its_finally_blocks_and_the_runtime_ends_cleanly() -> None:
    cleaned: list[str] = []

    async def careful() -> None:
        try:
            with trio.fail_after(10_000):
                await trio.sleep_forever()
        finally:
            cleaned.append("finally")

    async def main() -> Any:
        reasons = [await _kill_when_blocked(careful) for _ in range(3)]
        pj.spawn(careful)  # still running when main returns: cancelled by the runtime, not killed
        await trio.testing.wait_all_tasks_blocked()
        return reasons

    assert run(main) == [KILLED] * 3
    assert cleaned == ["finally"] * 4
