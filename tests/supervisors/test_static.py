"""The supervisor process with static children: start/stop order, strategies, restart types, OTP rules."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, supervisors
from philipjose.supervisors import ChildError, SpecError, StartError

from .util import (
    BOOM,
    DOWN,
    EXIT,
    KILLED,
    NORMAL,
    SHUTDOWN,
    crasher,
    ends_with,
    events,
    failing_start,
    ignoring_start,
    next_event,
    no_message,
    run,
    trapping_worker,
    wait_down,
    worker,
)


def spec(cid: str, fn: Any = worker, *args: Any, **fields: Any) -> dict[str, Any]:
    return {"id": cid, "start": (fn, *(args or (cid,))), **fields}


async def pids(sup: Any) -> dict[Any, Any]:
    return {info.id: info.pid for info in await supervisors.which_children(sup)}


def test_children_start_in_order_and_stop_in_reverse() -> None:
    async def main() -> tuple[list[Any], list[Any], Any]:
        sup = await supervisors.start_link([spec(c, trapping_worker) for c in "abc"])
        started = await events(3)
        ref = pj.monitor(sup)
        await supervisors.stop(sup)
        stopping = await events(3)
        return started, stopping, await wait_down(ref)

    started, stopping, reason = run(main)
    assert started == [("started", "a"), ("started", "b"), ("started", "c")]
    assert stopping == [("stopping", "c"), ("stopping", "b"), ("stopping", "a")]
    assert reason == SHUTDOWN


def test_start_link_returns_after_all_children_and_which_children_is_otp_shaped() -> None:
    async def main() -> tuple[list[Any], dict[str, int], list[Any]]:
        sup = await supervisors.start_link(
            [spec("a"), spec("s", ignoring_start, type="supervisor"), spec("b")]
        )
        started = await events(2, "started")  # already queued: start_link returned after the starts
        infos = await supervisors.which_children(sup)
        counts = await supervisors.count_children(sup)
        return started, counts, [(i.id, type(i.pid).__name__, i.type, i.modules) for i in infos]

    started, counts, infos = run(main)
    assert started == [("started", "a"), ("started", "b")]
    assert infos == [
        ("a", "Pid", "worker", ("tests.supervisors.util.worker",)),
        ("s", "NoneType", "supervisor", ("tests.supervisors.util.ignoring_start",)),
        ("b", "Pid", "worker", ("tests.supervisors.util.worker",)),
    ]
    assert counts == {"specs": 3, "active": 2, "supervisors": 1, "workers": 2}


def test_failed_start_stops_started_children_and_fails_with_the_reason() -> None:
    async def main() -> tuple[Any, list[Any], bool]:
        children = [spec("a", trapping_worker), spec("b", trapping_worker), spec("c", failing_start, BOOM)]
        with pytest.raises(StartError) as info:
            await supervisors.start_link(children)
        stopping = await events(4)
        return info.value.reason, stopping, await no_message((EXIT, pj.ANY, pj.ANY))

    reason, stopping, no_exit = run(main)
    assert reason == (SHUTDOWN, (Atom("failed_to_start_child"), "c", BOOM))
    assert stopping == [("started", "a"), ("started", "b"), ("stopping", "b"), ("stopping", "a")]
    assert no_exit  # the caller gets an exception, not an exit signal


def test_failed_start_with_a_python_exception_gives_the_crash_reason() -> None:
    def bad_start(tag: Any) -> Any:
        raise ValueError("no luck")

    async def main() -> Any:
        with pytest.raises(StartError) as info:
            await supervisors.start_link([spec("x", bad_start)])
        return info.value.reason

    reason = run(main)
    assert reason[0] == SHUTDOWN and reason[1][:2] == (Atom("failed_to_start_child"), "x")
    crash = reason[1][2]
    assert crash[0] == Atom("python_exception") and crash[1] == b"ValueError" and crash[2] == b"no luck"


def test_bad_return_from_a_start_function() -> None:
    async def main() -> Any:
        with pytest.raises(StartError) as info:
            await supervisors.start_link([spec("x", lambda tag: 42)])
        return info.value.reason

    assert run(main) == (SHUTDOWN, (Atom("failed_to_start_child"), "x", (Atom("bad_return_value"), 42)))


def test_invalid_specs_fail_before_anything_starts() -> None:
    async def main() -> list[str]:
        keys = []
        for children, kwargs in [
            ([spec("a"), spec("a")], {}),
            ([spec("a", shutdown="later")], {}),
            ([spec("a")], {"strategy": "one_for_some"}),
            ([spec("a")], {"intensity": -1}),
            ([spec("a")], {"name": 5}),
        ]:
            with pytest.raises(SpecError) as info:
                await supervisors.start_link(children, **kwargs)
            keys.append(info.value.key)
        assert await no_message()
        return keys

    assert run(main) == ["children[1].id", "children[0].shutdown", "strategy", "intensity", "name"]


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [("one_for_one", ["b"]), ("one_for_all", ["a", "b", "c"]), ("rest_for_one", ["b", "c"])],
)
def test_strategies(strategy: str, restarted: list[str]) -> None:
    async def main() -> tuple[list[Any], list[str], list[str]]:
        sup = await supervisors.start_link(
            [spec(c, trapping_worker) for c in "abc"], strategy=strategy, intensity=5
        )
        await events(3)
        before = await pids(sup)
        pj.exit(before["b"], Atom("kill"))
        # The dead one reports nothing (it was not asked to stop); siblings stopped report "stopping".
        reports = await events(2 * len(restarted) - 1)
        after = await pids(sup)
        same = [c for c in "abc" if before[c] == after[c]]
        changed = [c for c in "abc" if before[c] != after[c]]
        return reports, same, changed

    reports, same, changed = run(main)
    assert changed == restarted
    assert same == [c for c in "abc" if c not in restarted]
    stops = [tag for event, tag in reports if event == "stopping"]
    starts = [tag for event, tag in reports if event == "started"]
    assert stops == [c for c in reversed(restarted) if c != "b"]
    assert starts == restarted


def test_one_for_all_forgets_temporary_siblings() -> None:
    async def main() -> list[Any]:
        sup = await supervisors.start_link(
            [spec("a"), spec("t", restart="temporary"), spec("c")], strategy="one_for_all", intensity=5
        )
        await events(3)
        pj.exit((await pids(sup))["a"], BOOM)
        await events(2)
        return [i.id for i in await supervisors.which_children(sup)]

    assert run(main) == ["a", "c"]


def test_one_for_all_also_restarts_children_that_were_not_running() -> None:
    async def main() -> dict[Any, Any]:
        sup = await supervisors.start_link([spec("a"), spec("b")], strategy="one_for_all", intensity=5)
        await events(2)
        await supervisors.terminate_child(sup, "b")
        pj.exit((await pids(sup))["a"], BOOM)
        await events(2)
        return await pids(sup)

    assert all(isinstance(p, pj.Pid) for p in run(main).values())


@pytest.mark.parametrize(
    ("restart", "reason", "restarted"),
    [
        ("permanent", NORMAL, True),
        ("permanent", SHUTDOWN, True),
        ("permanent", BOOM, True),
        ("transient", NORMAL, False),
        ("transient", SHUTDOWN, False),
        ("transient", (SHUTDOWN, "done"), False),
        ("transient", BOOM, True),
        ("temporary", BOOM, False),
        ("temporary", NORMAL, False),
    ],
)
def test_restart_types(restart: str, reason: Any, restarted: bool) -> None:
    async def main() -> tuple[list[Any], bool]:
        sup = await supervisors.start_link([spec("x", ends_with, "x", reason, restart=restart)])
        _, _, pid = await next_event("started")
        pj.send(pid, ("end", "x"))
        if restarted:
            await next_event("started")
        else:
            assert await no_message(("started", pj.ANY, pj.ANY))
        infos = await supervisors.which_children(sup)
        return [(i.id, isinstance(i.pid, pj.Pid)) for i in infos], pj.is_alive(sup)

    infos, alive = run(main)
    assert alive
    if restarted:
        assert infos == [("x", True)]
    elif restart == "temporary":
        assert infos == []  # removed when it ends
    else:
        assert infos == [("x", False)]  # spec kept, not running


def test_intensity_exceeded_stops_children_and_exits_with_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[Any, list[Any]]:
        sup = await supervisors.start_link([spec("a", trapping_worker), spec("b", crasher)])
        ref = pj.monitor(sup)
        await events(2)
        pj.send((await pids(sup))["b"], "crash")  # restart 1: within intensity 1
        await next_event("started")
        await trio.sleep(4.5)  # still inside the 5 s period
        pj.send((await pids(sup))["b"], "crash")  # restart 2: too many
        stopping = await events(1)
        return await wait_down(ref), stopping

    with caplog.at_level(logging.INFO, logger="philipjose.supervisors"):
        reason, stopping = run(main)
    assert reason == SHUTDOWN
    assert stopping == [("stopping", "a")]
    labels = [r.report["label"] for r in caplog.records if hasattr(r, "report")]
    assert labels.count("child_terminated") == 2
    assert labels[-1] == "shutdown"
    last = caplog.records[-1]
    assert last.report["reason"] == Atom("reached_max_restart_intensity")
    assert last.levelno == logging.ERROR


def test_restarts_outside_the_period_do_not_accumulate() -> None:
    async def main() -> bool:
        sup = await supervisors.start_link([spec("b", crasher)], intensity=1, period=5)
        await next_event("started")
        for _ in range(5):
            pj.send((await pids(sup))["b"], "crash")
            await next_event("started")
            await trio.sleep(6)
        return pj.is_alive(sup)

    assert run(main)


def test_zero_intensity_gives_up_at_the_first_restart() -> None:
    async def main() -> Any:
        sup = await supervisors.start_link([spec("b", crasher)], intensity=0)
        ref = pj.monitor(sup)
        await next_event("started")
        pj.send((await pids(sup))["b"], "crash")
        return await wait_down(ref)

    assert run(main) == SHUTDOWN


def test_shutdown_waits_then_kills_a_child_that_ignores_it(caplog: pytest.LogCaptureFixture) -> None:
    from .util import stubborn_worker

    async def main() -> tuple[float, Any, list[Any]]:
        sup = await supervisors.start_link([spec("s", stubborn_worker, shutdown=2)])
        _, _, child = await next_event("started")
        child_ref = pj.monitor(child)
        began = trio.current_time()
        await supervisors.terminate_child(sup, "s")
        elapsed = trio.current_time() - began
        ignored = await events(1)
        return elapsed, await wait_down(child_ref), ignored

    with caplog.at_level(logging.ERROR, logger="philipjose.supervisors"):
        elapsed, reason, ignored = run(main)
    assert elapsed == pytest.approx(2.0)
    assert reason == KILLED
    assert ignored == [("ignored", "s")]
    (record,) = [r for r in caplog.records if getattr(r, "report", {}).get("label") == "shutdown_error"]
    assert record.report["reason"] == KILLED


def test_shutdown_uses_a_monitor_so_an_unlinked_child_cannot_hang_the_supervisor() -> None:
    from .util import unlinking_worker

    async def main() -> tuple[float, Any]:
        sup = await supervisors.start_link([spec("u", unlinking_worker, "u", [], shutdown=3)])
        _, _, child = await next_event("started")
        ref = pj.monitor(child)
        began = trio.current_time()
        await supervisors.terminate_child(sup, "u")
        return trio.current_time() - began, await wait_down(ref)

    elapsed, reason = run(main)
    assert elapsed == pytest.approx(3.0)
    assert reason == KILLED


def test_brutal_kill_and_infinity() -> None:
    async def main() -> tuple[float, Any, float, Any]:
        sup = await supervisors.start_link(
            [
                spec("k", trapping_worker, "k", 0.0, shutdown="brutal_kill"),
                spec("i", trapping_worker, "i", 1000.0, shutdown="infinity"),
            ]
        )
        await events(2)
        children = await pids(sup)
        k_ref, i_ref = pj.monitor(children["k"]), pj.monitor(children["i"])
        began = trio.current_time()
        await supervisors.terminate_child(sup, "k")
        k_time = trio.current_time() - began
        began = trio.current_time()
        await supervisors.terminate_child(sup, "i")
        i_time = trio.current_time() - began
        return k_time, await wait_down(k_ref), i_time, await wait_down(i_ref)

    k_time, k_reason, i_time, i_reason = run(main)
    assert k_time == 0 and k_reason == KILLED
    assert i_time == pytest.approx(1000.0) and i_reason == SHUTDOWN


def test_ignores_exit_signals_from_strangers_and_follows_its_parent() -> None:
    async def stranger(sup: Any) -> None:
        pj.link(sup)
        pj.exit(sup, BOOM)
        raise pj.Exit(Atom("stranger_died"))

    async def parent(test: Any) -> None:
        sup = await supervisors.start_link([spec("a", trapping_worker)])
        pj.send(test, ("sup", sup))
        await pj.receive("go")
        raise pj.Exit(Atom("parent_gone"))

    async def main() -> tuple[bool, bool, list[Any], Any]:
        holder = pj.spawn(parent, pj.self())
        _, sup = await pj.receive(("sup", pj.ANY))
        await next_event("started")
        ref = pj.monitor(sup)
        _, stranger_ref = pj.spawn_monitor(stranger, sup)
        await wait_down(stranger_ref)
        quiet = await no_message(("stopping", pj.ANY, pj.ANY))
        alive = pj.is_alive(sup)
        pj.send(holder, "go")
        stopping = await events(1)
        return quiet, alive, stopping, await wait_down(ref)

    quiet, alive, stopping, reason = run(main)
    assert quiet and alive
    assert stopping == [("stopping", "a")]
    assert reason == Atom("parent_gone")


def test_kill_of_the_supervisor_takes_unprotected_children_down() -> None:
    async def main() -> Any:
        sup = await supervisors.start_link([spec("a")])
        _, _, child = await next_event("started")
        ref = pj.monitor(child)
        pj.unlink(sup)
        pj.exit(sup, Atom("kill"))
        return await wait_down(ref)

    assert run(main) == KILLED


@pytest.mark.parametrize("mode", ["any_significant", "all_significant"])
def test_auto_shutdown(mode: str) -> None:
    async def main() -> list[bool]:
        sup = await supervisors.start_link(
            [
                spec("plain", ends_with, "plain", NORMAL, restart="transient"),
                spec("s1", ends_with, "s1", NORMAL, restart="transient", significant=True),
                spec("s2", ends_with, "s2", BOOM, restart="temporary", significant=True),
            ],
            auto_shutdown=mode,
        )
        ref = pj.monitor(sup)
        started = {tag: pid for _, tag, pid in [await next_event("started") for _ in range(3)]}
        seen = []
        pj.send(started["plain"], ("end", "plain"))  # not significant: nothing happens
        await trio.testing.wait_all_tasks_blocked()
        seen.append(pj.is_alive(sup))
        pj.send(started["s1"], ("end", "s1"))
        await trio.testing.wait_all_tasks_blocked()
        seen.append(pj.is_alive(sup))
        if pj.is_alive(sup):
            pj.send(started["s2"], ("end", "s2"))  # a temporary significant child may crash
        assert await wait_down(ref) == SHUTDOWN
        return seen

    expected = [True, False] if mode == "any_significant" else [True, True]
    assert run(main) == expected


def test_significant_needs_auto_shutdown() -> None:
    async def main() -> None:
        with pytest.raises(SpecError):
            await supervisors.start_link([spec("s", restart="transient", significant=True)])
        sup = await supervisors.start_link([])
        with pytest.raises(SpecError):
            await supervisors.start_child(sup, spec("s", restart="transient", significant=True))

    run(main)


def test_dynamic_api_on_a_static_supervisor() -> None:
    async def main() -> None:
        sup = await supervisors.start_link([spec("a")])
        await next_event("started")
        pid = await supervisors.start_child(sup, spec("b"))
        assert isinstance(pid, pj.Pid)
        await next_event("started")
        assert [i.id for i in await supervisors.which_children(sup)] == ["a", "b"]
        with pytest.raises(ChildError) as info:
            await supervisors.start_child(sup, spec("b"))
        assert info.value.reason == (Atom("already_started"), pid)
        with pytest.raises(ChildError) as info:
            await supervisors.restart_child(sup, "b")
        assert info.value.reason == Atom("running")
        with pytest.raises(ChildError) as info:
            await supervisors.delete_child(sup, "b")
        assert info.value.reason == Atom("running")

        ref = pj.monitor(pid)
        await supervisors.terminate_child(sup, "b")
        assert await wait_down(ref) == SHUTDOWN
        assert (await pids(sup))["b"] is None  # spec kept
        with pytest.raises(ChildError) as info:
            await supervisors.start_child(sup, spec("b"))
        assert info.value.reason == Atom("already_present")
        new = await supervisors.restart_child(sup, "b")
        assert isinstance(new, pj.Pid) and new != pid
        await next_event("started")
        await supervisors.terminate_child(sup, "b")
        await supervisors.delete_child(sup, "b")
        assert [i.id for i in await supervisors.which_children(sup)] == ["a"]
        assert (await supervisors.get_childspec(sup, "a")).start is worker
        for call, arg in [
            (supervisors.terminate_child, "zz"),
            (supervisors.restart_child, "zz"),
            (supervisors.delete_child, "zz"),
            (supervisors.get_childspec, "zz"),
        ]:
            with pytest.raises(ChildError) as info:
                await call(sup, arg)
            assert info.value.reason == Atom("not_found")
        with pytest.raises(SpecError):
            await supervisors.start_child(sup, {"id": "c"})
        with pytest.raises(ChildError) as info:
            await supervisors.start_child(sup, spec("f", failing_start, BOOM))
        assert info.value.reason == BOOM
        assert [i.id for i in await supervisors.which_children(sup)] == ["a"]
        # a temporary child that is terminated is forgotten
        await supervisors.start_child(sup, spec("t", restart="temporary"))
        await supervisors.terminate_child(sup, "t")
        assert [i.id for i in await supervisors.which_children(sup)] == ["a"]
        # an ignored temporary start is not kept; an ignored permanent one is
        assert await supervisors.start_child(sup, spec("it", ignoring_start, restart="temporary")) is None
        assert await supervisors.start_child(sup, spec("ip", ignoring_start)) is None
        assert [i.id for i in await supervisors.which_children(sup)] == ["a", "ip"]

    run(main)


def test_failed_restart_is_retried_and_counts_towards_intensity(caplog: pytest.LogCaptureFixture) -> None:
    from .util import Flaky

    async def main() -> tuple[list[Any], Any]:
        flaky = Flaky(["ok", "fail", "ok"])
        sup = await supervisors.start_link([spec("f", flaky)], intensity=5)
        _, _, first = await next_event("started")
        pj.exit(first, BOOM)
        _, _, second = await next_event("started")
        assert second != first and flaky.calls == 3
        always = Flaky(["ok", "fail"])
        await supervisors.start_child(sup, spec("g", always))
        _, _, g = await next_event("started")
        ref = pj.monitor(sup)
        pj.exit(g, BOOM)
        reason = await wait_down(ref)
        return [flaky.calls, always.calls], reason

    with caplog.at_level(logging.ERROR, logger="philipjose.supervisors"):
        calls, reason = run(main)
    labels = [r.report["label"] for r in caplog.records if hasattr(r, "report")]
    assert labels.count("start_error") == 1 + 3
    assert labels[-1] == "shutdown"
    assert calls[0] == 3
    # f used 2 restarts (the failed one and its retry); g's restart and 2 retries fail (restarts 3-5),
    # and the 6th restart exceeds intensity 5 before it is tried
    assert calls[1] == 1 + 3
    assert reason == SHUTDOWN


def test_restarting_state_is_visible_and_blocks_delete() -> None:
    from .util import Flaky

    async def main() -> None:
        flaky = Flaky(["ok", "fail"])
        sup = await supervisors.start_link([spec("f", flaky)], intensity=1000, period=1)
        _, _, first = await next_event("started")
        ref = pj.monitor(first)
        pj.exit(first, BOOM)
        await wait_down(ref)
        # The supervisor keeps retrying; between retries it answers calls.
        infos = await supervisors.which_children(sup)
        assert infos[0].pid == "restarting"
        with pytest.raises(ChildError) as info:
            await supervisors.delete_child(sup, "f")
        assert info.value.reason == Atom("restarting")
        with pytest.raises(ChildError) as info:
            await supervisors.restart_child(sup, "f")
        assert info.value.reason == Atom("restarting")
        ref = pj.monitor(sup)
        await supervisors.stop(sup)
        assert await wait_down(ref) == SHUTDOWN

    run(main)


def test_registered_name_and_already_started() -> None:
    async def main() -> None:
        sup = await supervisors.start_link([spec("a")], name="top")
        assert pj.whereis("top") == sup
        assert [i.id for i in await supervisors.which_children("top")] == ["a"]
        with pytest.raises(StartError) as info:
            await supervisors.start_link([], name="top")
        assert info.value.reason == (Atom("already_started"), sup)

    run(main)


def test_start_is_not_linked() -> None:
    async def main() -> bool:
        sup = await supervisors.start([spec("a")])
        info = pj.process_info(pj.self())
        assert info is not None
        linked = sup in info["links"]
        await supervisors.stop(sup)
        return linked

    assert run(main) is False


def test_genserver_children() -> None:
    class Store(pj.GenServer):
        async def init(self, tag: str) -> None:
            pj.process_flag("trap_exit", True)
            self.tag = tag
            self.items: dict[str, Any] = {}
            pj.send("test", ("started", tag, pj.self()))

        async def handle_call(self, request: Any, caller: Any) -> Any:
            if request == "crash":
                raise RuntimeError("asked to crash")
            return self.tag

        async def terminate(self, reason: Any) -> None:
            pj.send("test", ("terminated", self.tag, reason))

    async def main() -> tuple[Any, Any]:
        sup = await supervisors.start_link([{"id": "store", "start": (Store, "s1")}], intensity=3)
        _, _, first = await next_event("started")
        assert await pj.call(first, "tag") == "s1"
        with pytest.raises(pj.Exit):
            await pj.call(first, "crash")
        crash_terminate = await next_event("terminated")
        _, _, second = await next_event("started")
        assert second != first
        await supervisors.stop(sup)
        return crash_terminate[2][0], (await next_event("terminated"))[2]

    crash, stopped = run(main)
    assert crash == Atom("python_exception")
    assert stopped == SHUTDOWN


def test_genserver_init_failure_is_a_start_error() -> None:
    class Broken(pj.GenServer):
        async def init(self) -> None:
            raise pj.Exit(Atom("no_db"))

    async def main() -> Any:
        with pytest.raises(StartError) as info:
            await supervisors.start_link([{"id": "b", "start": Broken}])
        return info.value.reason

    assert run(main) == (SHUTDOWN, (Atom("failed_to_start_child"), "b", Atom("no_db")))


def test_unexpected_messages_are_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> bool:
        sup = await supervisors.start_link([spec("a")])
        pj.send(sup, "hello")
        await supervisors.which_children(sup)
        return pj.is_alive(sup)

    with caplog.at_level(logging.ERROR, logger="philipjose.supervisors"):
        assert run(main)
    assert any("unexpected message" in r.getMessage() for r in caplog.records)


def test_progress_reports(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        await supervisors.start_link([spec("a")], name="reported")

    with caplog.at_level(logging.INFO, logger="philipjose.supervisors"):
        run(main)
    (record,) = [r for r in caplog.records if getattr(r, "report", {}).get("label") == "progress"]
    assert record.report["supervisor"] == "reported"
    assert record.report["started"]["id"] == "a"
    assert record.levelno == logging.INFO


def test_down_messages_are_not_left_behind() -> None:
    async def main() -> bool:
        sup = await supervisors.start_link([spec("a")])
        await next_event("started")
        await supervisors.terminate_child(sup, "a")
        await supervisors.restart_child(sup, "a")
        await next_event("started")
        info = pj.process_info(sup)
        assert info is not None
        return info["message_queue_len"] == 0 and await no_message((DOWN, pj.ANY, pj.ANY, pj.ANY, pj.ANY))

    assert run(main)


def test_malformed_requests_do_not_crash_the_supervisor_and_otp_shapes_for_erlang() -> None:
    async def main() -> None:
        sup = await supervisors.start_link(
            [spec("a"), {"id": ("t", 1), "start": ignoring_start, "args": ["t"], "modules": "dynamic"}]
        )
        _, _, a = await next_event("started")
        pj_request = Atom("$pj_supervisor")
        bad = (pj_request, Atom("which_children"), 1)
        assert await pj.call(sup, bad) == (False, (Atom("bad_request"), bad[1:]))
        assert await pj.call(sup, (pj_request, 42)) == (False, (Atom("bad_request"), (42,)))
        assert await pj.call(sup, 42) == (Atom("error"), (Atom("bad_request"), 42))
        assert await pj.call(sup, ()) == (Atom("error"), (Atom("bad_request"), ()))
        assert await pj.call(sup, Atom("which_children")) == [  # newest first, as OTP
            (("t", 1), Atom("undefined"), Atom("worker"), Atom("dynamic")),
            (Atom("a"), a, Atom("worker"), [Atom("tests.supervisors.util.worker")]),
        ]
        assert await pj.call(sup, Atom("count_children")) == [
            (Atom("specs"), 2),
            (Atom("active"), 1),
            (Atom("supervisors"), 0),
            (Atom("workers"), 2),
        ]
        assert await pj.call(sup, Atom("nonsense")) == (
            Atom("error"),
            (Atom("bad_request"), Atom("nonsense")),
        )
        assert pj.is_alive(sup)

    run(main)
