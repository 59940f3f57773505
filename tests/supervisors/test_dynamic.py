"""Dynamic children: simple_one_for_one (one template, extra args) and the Elixir-style dynamic supervisor."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, supervisors
from philipjose.supervisors import ChildError, SpecError, StartError

from .util import (
    BOOM,
    KILLED,
    SHUTDOWN,
    ends_with,
    events,
    failing_start,
    ignoring_start,
    next_event,
    run,
    stubborn_worker,
    trapping_worker,
    wait_down,
    worker,
)


async def tagged(prefix: str, tag: Any) -> None:
    await worker((prefix, tag))


def test_simple_one_for_one_appends_extra_args_and_starts_nothing_at_first() -> None:
    async def main() -> None:
        sup = await supervisors.start_link(
            [{"id": "t", "start": (tagged, "w")}], strategy="simple_one_for_one"
        )
        assert await supervisors.which_children(sup) == []
        first = await supervisors.start_child(sup, [1])
        second = await supervisors.start_child(sup, (2,))
        assert await events(2) == [("started", ("w", 1)), ("started", ("w", 2))]
        infos = await supervisors.which_children(sup)
        assert (
            sorted((i.id, i.type, i.modules) for i in infos)
            == [(None, "worker", ("tests.supervisors.test_dynamic.tagged",))] * 2
        )
        assert {i.pid for i in infos} == {first, second}
        assert await supervisors.count_children(sup) == {
            "specs": 1,
            "active": 2,
            "supervisors": 0,
            "workers": 2,
        }
        assert (await supervisors.get_childspec(sup, first)).id == "t"

    run(main)


def test_simple_one_for_one_api_restrictions() -> None:
    async def main() -> None:
        sup = await supervisors.start_link([{"id": "t", "start": worker}], strategy="simple_one_for_one")
        pid = await supervisors.start_child(sup, ["x"])
        for call in (supervisors.restart_child, supervisors.delete_child):
            with pytest.raises(ChildError) as info:
                await call(sup, "t")
            assert info.value.reason == Atom("simple_one_for_one")
        with pytest.raises(ChildError) as info:
            await supervisors.terminate_child(sup, "t")  # by id: refused
        assert info.value.reason == Atom("simple_one_for_one")
        with pytest.raises(ChildError) as info:
            await supervisors.terminate_child(sup, pj.self())  # alive, not a child
        assert info.value.reason == Atom("not_found")
        with pytest.raises(ChildError):
            await supervisors.start_child(sup, "not a list")
        assert isinstance(pid, pj.Pid)
        ref = pj.monitor(pid)
        await supervisors.terminate_child(sup, pid)
        assert await wait_down(ref) == SHUTDOWN
        assert await supervisors.which_children(sup) == []
        await supervisors.terminate_child(sup, pid)  # a dead pid: ok, as in OTP

    run(main)


def test_simple_one_for_one_needs_exactly_one_spec() -> None:
    async def main() -> None:
        with pytest.raises(SpecError):
            await supervisors.start_link([], strategy="simple_one_for_one")

    run(main)


def test_dynamic_children_restart_with_their_own_args() -> None:
    async def main() -> None:
        sup = await supervisors.start_link(
            [{"id": "t", "start": (ends_with,), "restart": "transient"}],
            strategy="simple_one_for_one",
            intensity=5,
        )
        a = await supervisors.start_child(sup, ["a", BOOM])
        b = await supervisors.start_child(sup, ["b", Atom("normal")])
        await events(2)
        assert a is not None and b is not None
        pj.send(a, ("end", "a"))
        _, tag, new_a = await next_event("started")
        assert tag == "a" and new_a != a
        ref = pj.monitor(b)
        pj.send(b, ("end", "b"))
        await wait_down(ref)
        await trio.testing.wait_all_tasks_blocked()
        assert [i.pid for i in await supervisors.which_children(sup)] == [new_a]  # b ended normally: gone

    run(main)


def test_dynamic_intensity_and_failed_restarts() -> None:
    from .util import Flaky

    async def main() -> Any:
        flaky = Flaky(["ok", "fail"])
        sup = await supervisors.start_link(
            [{"id": "t", "start": flaky}], strategy="simple_one_for_one", intensity=2
        )
        ref = pj.monitor(sup)
        pid = await supervisors.start_child(sup, ["f"])
        await next_event("started")
        assert pid is not None
        pj.exit(pid, BOOM)
        return await wait_down(ref), flaky.calls

    reason, calls = run(main)
    assert reason == SHUTDOWN
    assert calls == 3  # the first start, then restarts 1 and 2 fail; restart 3 exceeds intensity 2


def test_dynamic_start_errors_and_ignore() -> None:
    async def main() -> None:
        sup = await supervisors.start_link(
            [{"id": "t", "start": failing_start}], strategy="simple_one_for_one"
        )
        with pytest.raises(ChildError) as info:
            await supervisors.start_child(sup, [BOOM])
        assert info.value.reason == BOOM
        ign = await supervisors.start_link(
            [{"id": "t", "start": ignoring_start}], strategy="simple_one_for_one"
        )
        assert await supervisors.start_child(ign, ["x"]) is None
        assert await supervisors.which_children(ign) == []

    run(main)


def test_all_dynamic_children_stop_at_once_and_stubborn_ones_are_killed() -> None:
    async def main() -> tuple[float, list[Any], Any]:
        sup = await supervisors.start_link(
            [{"id": "t", "start": stubborn_worker, "shutdown": 7}], strategy="simple_one_for_one"
        )
        refs = []
        for i in range(5):
            pid = await supervisors.start_child(sup, [i])
            refs.append(pj.monitor(pid))
        await events(5)
        sup_ref = pj.monitor(sup)
        began = trio.current_time()
        await supervisors.stop(sup)
        elapsed = trio.current_time() - began
        return elapsed, [await wait_down(r) for r in refs], await wait_down(sup_ref)

    elapsed, reasons, sup_reason = run(main)
    assert elapsed == pytest.approx(7.0)  # one shared timeout, not 5 x 7 s
    assert reasons == [KILLED] * 5
    assert sup_reason == SHUTDOWN


def test_dynamic_shutdown_of_cooperative_children_is_quick() -> None:
    async def main() -> tuple[float, list[Any]]:
        sup = await supervisors.start_link(
            [{"id": "t", "start": trapping_worker, "restart": "temporary"}], strategy="simple_one_for_one"
        )
        for i in range(100):
            await supervisors.start_child(sup, [i])
        await events(100)
        began = trio.current_time()
        await supervisors.stop(sup)
        return trio.current_time() - began, await events(100)

    elapsed, stopping = run(main)
    assert elapsed == 0
    assert sorted(tag for _, tag in stopping) == list(range(100))


def test_elixir_style_dynamic_supervisor() -> None:
    async def main() -> None:
        sup = await supervisors.start_dynamic_link(max_children=2, extra_args=("x",))
        assert await supervisors.which_children(sup) == []
        a = await supervisors.start_child(sup, {"id": "ignored", "start": (tagged, 1)})
        b = await supervisors.start_child(sup, (tagged, 2))
        assert await events(2) == [("started", ("x", 1)), ("started", ("x", 2))]
        with pytest.raises(ChildError) as info:
            await supervisors.start_child(sup, (tagged, 3))
        assert info.value.reason == Atom("max_children")
        assert await supervisors.count_children(sup) == {
            "specs": 2,
            "active": 2,
            "supervisors": 0,
            "workers": 2,
        }
        assert a is not None and b is not None
        pj.exit(a, BOOM)  # permanent: restarted with the same args
        assert await events(1) == [("started", ("x", 1))]
        with pytest.raises(ChildError) as info:
            await supervisors.terminate_child(sup, "ignored")
        assert info.value.reason == Atom("not_found")
        await supervisors.terminate_child(sup, b)
        assert len(await supervisors.which_children(sup)) == 1
        assert await supervisors.start_child(sup, (tagged, 4)) is not None
        with pytest.raises(SpecError):
            await supervisors.start_child(sup, {"id": "x"})
        with pytest.raises(SpecError):
            await supervisors.start_dynamic_link(max_children=-1)

    run(main)


def test_dynamic_supervisor_default_intensity_is_elixirs() -> None:
    async def main() -> Any:
        sup = await supervisors.start_dynamic_link()
        ref = pj.monitor(sup)
        for _ in range(4):  # 3 restarts are allowed within 5 s; the 4th stops it
            pid = await supervisors.start_child(sup, {"id": 0, "start": worker, "args": ["d"]})
            await next_event("started")
            if pid is not None:
                pj.exit(pid, BOOM)
            if not pj.is_alive(sup):
                break
            await trio.testing.wait_all_tasks_blocked()
        return await wait_down(ref)

    assert run(main) == SHUTDOWN


def test_dynamic_supervisor_named_and_unlinked() -> None:
    async def main() -> None:
        sup = await supervisors.start_dynamic(name="dyn")
        assert pj.whereis("dyn") == sup
        with pytest.raises(StartError):
            await supervisors.start_dynamic(name="dyn")
        await supervisors.stop("dyn")
        assert pj.whereis("dyn") is None

    run(main)


def test_dynamic_auto_shutdown_with_significant_children() -> None:
    async def main() -> Any:
        sup = await supervisors.start_link(
            [{"id": "t", "start": ends_with, "restart": "transient", "significant": True}],
            strategy="simple_one_for_one",
            auto_shutdown="all_significant",
        )
        ref = pj.monitor(sup)
        a = await supervisors.start_child(sup, ["a", Atom("normal")])
        b = await supervisors.start_child(sup, ["b", Atom("normal")])
        await events(2)
        pj.send(a, ("end", "a"))
        await trio.testing.wait_all_tasks_blocked()
        assert pj.is_alive(sup)
        pj.send(b, ("end", "b"))
        return await wait_down(ref)

    assert run(main) == SHUTDOWN
