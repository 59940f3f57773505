"""send / receive: order, selective receive, patterns, timeouts, destinations."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import ANY, Atom, Pid

from .helpers import DOWN, collect, forever, run, wait_down


def test_run_returns_main_result_and_args() -> None:
    async def main(a: int, b: int) -> int:
        return a + b

    assert run(main, 2, 3) == 5


def test_send_to_self_and_receive_in_order() -> None:
    async def main() -> list[int]:
        for i in range(100):
            pj.send(pj.self(), i)
        return await collect(100)

    assert run(main) == list(range(100))


def test_order_between_two_processes_is_kept() -> None:
    async def producer(to: Pid) -> None:
        for i in range(1000):
            pj.send(to, ("n", i))
            if i % 7 == 0:
                await trio.lowlevel.checkpoint()

    async def main() -> list[int]:
        pj.spawn(producer, pj.self())
        return [(await pj.receive())[1] for _ in range(1000)]

    assert run(main) == list(range(1000))


def test_sending_to_dead_pid_never_fails() -> None:
    async def quick() -> None:
        return None

    async def main() -> bool:
        pid, ref = pj.spawn_monitor(quick)
        await wait_down(ref)
        pj.send(pid, "into the void")
        pj.send(Pid("nonode@nohost", 999_999, 0, 0), "nobody")
        return pj.is_alive(pid)

    assert run(main) is False


def test_send_to_unregistered_name_is_badarg_but_name_node_is_dropped() -> None:
    async def main() -> None:
        with pytest.raises(pj.BadArg, match="no process is registered"):
            pj.send("nobody", "hi")
        with pytest.raises(pj.BadArg):
            pj.send(Atom("nobody"), "hi")
        pj.send(("nobody", "nonode@nohost"), "hi")  # never fails
        with pytest.raises(pj.BadArg, match="cannot send to"):
            pj.send(12, "hi")

    run(main)


def test_send_to_registered_name_and_name_node() -> None:
    async def main() -> list[Any]:
        pj.register("me", pj.self())
        pj.send("me", 1)
        pj.send(Atom("me"), 2)
        pj.send(("me", "nonode@nohost"), 3)
        return await collect(3)

    assert run(main) == [1, 2, 3]


def test_selective_receive_leaves_others_in_order() -> None:
    async def main() -> tuple[Any, list[Any]]:
        me = pj.self()
        for m in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]:
            pj.send(me, m)
        got = await pj.receive(lambda m: m[0] == "b")
        return got, await collect(4)

    got, rest = run(main)
    assert got == ("b", 2)
    assert rest == [("a", 1), ("a", 3), ("c", 4), ("b", 5)]


def test_selective_receive_waits_for_a_match_arriving_later() -> None:
    async def later(to: Pid) -> None:
        pj.send(to, "noise1")
        await trio.sleep(1)
        pj.send(to, "noise2")
        await trio.sleep(1)
        pj.send(to, ("wanted", 42))

    async def main() -> tuple[Any, list[Any]]:
        pj.spawn(later, pj.self())
        got = await pj.receive(("wanted", int))
        return got, await collect(2)

    assert run(main) == (("wanted", 42), ["noise1", "noise2"])


def test_each_new_message_is_tested_once_per_receive() -> None:
    tested: dict[Any, int] = {}

    def pred(m: Any) -> bool:
        tested[m] = tested.get(m, 0) + 1
        return m == "stop"

    async def feeder(to: Pid) -> None:
        for i in range(50):
            pj.send(to, i)
            await trio.sleep(0.1)  # each message wakes the receiver separately
        pj.send(to, "stop")

    async def main() -> None:
        for i in range(-5, 0):
            pj.send(pj.self(), i)  # queued before the receive starts
        pj.spawn(feeder, pj.self())
        assert await pj.receive(pred) == "stop"

    run(main)
    assert set(tested.values()) == {1}
    assert len(tested) == 56


def test_patterns() -> None:
    async def main() -> list[Any]:
        me = pj.self()
        for m in [1, 1.0, True, "ok", Atom("ok"), ("x", 1, "y"), ["l", 2], (Atom("EXIT"), me, "r")]:
            pj.send(me, m)
        out = []
        out.append(await pj.receive((Atom("EXIT"), Pid, ANY)))
        out.append(await pj.receive(Atom("ok")))
        out.append(await pj.receive("ok"))
        out.append(await pj.receive(float))
        out.append(await pj.receive(True))
        out.append(await pj.receive(["l", int]))
        out.append(await pj.receive(("x", ANY, str)))
        out.append(await pj.receive(1))
        with pytest.raises(TimeoutError):
            await pj.receive(ANY, timeout=0)
        return out

    me_exit, *rest = run(main)
    assert me_exit[0] == Atom("EXIT")
    assert rest == [Atom("ok"), "ok", 1.0, True, ["l", 2], ("x", 1, "y"), 1]
    assert type(rest[0]) is Atom and type(rest[1]) is str and type(rest[-1]) is int


def test_timeout_zero_polls_and_timeouts_raise() -> None:
    async def main() -> float:
        with pytest.raises(TimeoutError):
            await pj.receive(timeout=0)
        pj.send(pj.self(), "x")
        assert await pj.receive(timeout=0) == "x"
        start = trio.current_time()
        with pytest.raises(TimeoutError):
            await pj.receive(timeout=2.5)
        with pytest.raises(TimeoutError):
            await pj.receive(lambda m: m == "never", timeout=1.5)
        return trio.current_time() - start

    assert run(main) == pytest.approx(4.0)


def test_timed_out_receive_does_not_take_a_message() -> None:
    async def main() -> list[Any]:
        pj.send(pj.self(), "keep")
        with pytest.raises(TimeoutError):
            await pj.receive(lambda m: m == "other", timeout=1)
        return await collect(1)

    assert run(main) == ["keep"]


def test_cancelled_receive_takes_no_message() -> None:
    async def main() -> list[Any]:
        with trio.move_on_after(1):
            await pj.receive()
        pj.send(pj.self(), "after")
        return await collect(1)

    assert run(main) == ["after"]


def test_negative_or_nan_timeout_is_value_error() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="timeout"):
            await pj.receive(timeout=-1)
        with pytest.raises(ValueError, match="timeout"):
            await pj.receive(timeout=float("nan"))

    run(main)


def test_receive_outside_a_process_is_an_error() -> None:
    async def outside() -> None:
        with pytest.raises(pj.NoProcessError):
            await pj.receive()
        with pytest.raises(pj.NoProcessError):
            pj.self()
        with pytest.raises(pj.NoProcessError):
            pj.send(Pid("nonode@nohost", 1), 1)

    trio.run(outside)


def test_receive_from_a_helper_task_is_refused() -> None:
    async def main() -> None:
        async def helper() -> None:
            with pytest.raises(pj.NoProcessError, match="own task"):
                await pj.receive()
            pj.send(pj.self(), "helper sends as the process")

        async def nested() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(helper)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(helper)
            nursery.start_soon(nested)
        assert await pj.receive(timeout=0) == "helper sends as the process"
        assert await pj.receive(timeout=0) == "helper sends as the process"

    run(main)


def test_a_system_task_started_by_a_process_is_not_that_process() -> None:
    seen: list[str] = []

    async def system_task(done: trio.Event) -> None:
        with pytest.raises(pj.NoProcessError):
            pj.self()
        seen.append("not a process")
        done.set()

    async def main() -> None:
        done = trio.Event()
        pj.actors.current_runtime().start_system_task(system_task, done)
        await done.wait()

    run(main)
    assert seen == ["not a process"]


def test_messages_to_a_dead_process_are_dropped_and_mailbox_is_private() -> None:
    async def main() -> Any:
        pid = pj.spawn(forever)
        ref = pj.monitor(pid)
        pj.send(pid, "a")
        pj.exit(pid, "kill")
        pj.send(pid, "b")
        return await wait_down(ref)

    assert run(main) == Atom("killed")


def test_receive_checkpoint_budget_is_spent_then_renewed() -> None:
    # A process with a full mailbox receives without yielding until its budget runs out, then yields.
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        for i in range(4 * pj.actors.REDUCTIONS):
            pj.send(pj.self(), i)
        pj.spawn(other)
        for _ in range(pj.actors.REDUCTIONS - 2):
            await pj.receive()
        order.append("main drained budget-2")
        # two more budgets: main yields at least twice, so `other` (runnable) certainly runs
        for _ in range(2 * pj.actors.REDUCTIONS + 2):
            await pj.receive()
        order.append("main continued")

    run(main)
    assert order == ["main drained budget-2", "other", "main continued"]


def test_down_message_shape() -> None:
    async def main() -> Any:
        pid = pj.spawn(forever)
        ref = pj.monitor(pid)
        pj.exit(pid, "bye")
        return ref, pid, await pj.receive()

    ref, pid, msg = run(main)
    assert msg == (DOWN, ref, Atom("process"), pid, Atom("bye"))
