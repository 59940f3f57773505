"""Nested supervision trees: crashes stay inside their subtree; intensity exceeded at each level;
trees built with supervisor_spec and from config dicts."""

from __future__ import annotations

from typing import Any

import pytest

import philipjose as pj
from philipjose import Atom, supervisors
from philipjose.supervisors import ConfigError, supervisor_spec

from .util import BOOM, SHUTDOWN, crasher, events, run, trapping_worker, wait_down, worker


def tree() -> list[Any]:
    """top (one_for_one): a, mid (one_for_one, intensity 1): [m1, leafsup (one_for_all): [l1, l2]], z"""
    leaf = supervisor_spec(
        "leafsup",
        [{"id": "l1", "start": (crasher, "l1")}, {"id": "l2", "start": (worker, "l2")}],
        strategy="one_for_all",
        intensity=1,
    )
    mid = supervisor_spec("mid", [{"id": "m1", "start": (worker, "m1")}, leaf], intensity=1)
    return [{"id": "a", "start": (worker, "a")}, mid, {"id": "z", "start": (worker, "z")}]


async def snapshot(sup: Any) -> dict[str, Any]:
    """id -> pid over the whole tree (ids are unique in these tests)."""
    out: dict[str, Any] = {}
    for info in await supervisors.which_children(sup):
        out[info.id] = info.pid
        if info.type == "supervisor" and isinstance(info.pid, pj.Pid):
            out.update(await snapshot(info.pid))
    return out


def test_tree_starts_depth_first_in_order() -> None:
    async def main() -> list[Any]:
        await supervisors.start_link(tree(), intensity=1)
        return await events(5)

    assert run(main) == [("started", t) for t in ["a", "m1", "l1", "l2", "z"]]


def test_leaf_crash_stays_inside_its_subtree() -> None:
    async def main() -> tuple[list[str], list[str]]:
        top = await supervisors.start_link(tree(), intensity=1)
        await events(5)
        before = await snapshot(top)
        pj.send(before["l1"], "crash")
        await events(2)  # one_for_all in the leaf supervisor: l1 and l2 again
        after = await snapshot(top)
        changed = sorted(k for k in before if before[k] != after[k])
        same = sorted(k for k in before if before[k] == after[k])
        return changed, same

    changed, same = run(main)
    assert changed == ["l1", "l2"]
    assert same == ["a", "leafsup", "m1", "mid", "z"]


def test_intensity_exceeded_in_the_leaf_restarts_the_leaf_supervisor() -> None:
    async def main() -> tuple[list[str], Any]:
        top = await supervisors.start_link(tree(), intensity=1)
        await events(5)
        before = await snapshot(top)
        leaf_ref = pj.monitor(before["leafsup"])
        pj.send(before["l1"], "crash")
        await events(2)
        pj.send((await snapshot(top))["l1"], "crash")  # 2nd restart within 5 s: leafsup gives up
        reason = await wait_down(leaf_ref)
        await events(2)  # mid restarts leafsup, which starts l1 and l2
        after = await snapshot(top)
        return sorted(k for k in before if before[k] == after[k]), reason

    same, reason = run(main)
    assert reason == SHUTDOWN
    assert same == ["a", "m1", "mid", "z"]


def test_intensity_exceeded_in_the_middle_restarts_the_middle() -> None:
    async def kill_leafsup(top: Any) -> None:
        """Crash l1 twice: the leaf supervisor (intensity 1) gives up."""
        leaf_ref = pj.monitor((await snapshot(top))["leafsup"])
        pj.send((await snapshot(top))["l1"], "crash")
        await events(2)
        pj.send((await snapshot(top))["l1"], "crash")
        assert await wait_down(leaf_ref) == SHUTDOWN

    async def main() -> list[str]:
        top = await supervisors.start_link(tree(), intensity=1)
        await events(5)
        before = await snapshot(top)
        mid_ref = pj.monitor(before["mid"])
        await kill_leafsup(top)
        await events(2)  # mid's restart 1: leafsup again, with l1 and l2
        await kill_leafsup(top)  # mid's restart 2 within 5 s: mid gives up
        assert await wait_down(mid_ref) == SHUTDOWN
        await events(3)  # top restarts mid: m1, l1, l2
        after = await snapshot(top)
        return sorted(k for k in before if before[k] == after[k])

    assert run(main) == ["a", "z"]


def test_intensity_exceeded_at_the_top_stops_everything() -> None:
    async def main() -> tuple[Any, list[Any]]:
        top = await supervisors.start_link(
            [{"id": "t", "start": (trapping_worker, "t")}, {"id": "c", "start": (crasher, "c")}], intensity=0
        )
        ref = pj.monitor(top)
        await events(2)
        pj.send((await snapshot(top))["c"], "crash")
        return await wait_down(ref), await events(1)

    reason, stopping = run(main)
    assert reason == SHUTDOWN
    assert stopping == [("stopping", "t")]


def test_stopping_a_tree_stops_every_level_in_reverse_order() -> None:
    async def main() -> list[Any]:
        inner = supervisor_spec(
            "inner", [{"id": f"i{n}", "start": (trapping_worker, f"i{n}")} for n in (1, 2)]
        )
        top = await supervisors.start_link(
            [
                {"id": "a", "start": (trapping_worker, "a")},
                inner,
                {"id": "z", "start": (trapping_worker, "z")},
            ]
        )
        await events(4)
        await supervisors.stop(top)
        return await events(4)

    assert run(main) == [("stopping", t) for t in ["z", "i2", "i1", "a"]]


def test_from_config_dict_starts_a_nested_tree() -> None:
    config = {
        "strategy": "rest_for_one",
        "intensity": 2,
        "name": "cfgtop",
        "children": [
            {"id": "a", "start": worker, "args": ["a"]},
            {
                "id": "sub",
                "strategy": "one_for_all",
                "name": "cfgsub",
                "children": [{"id": "b", "start": "tests.supervisors.util:worker", "args": ["b"]}],
            },
        ],
    }

    async def main() -> tuple[list[Any], list[Any]]:
        top = await supervisors.from_config(config)
        started = await events(2)
        assert pj.whereis("cfgtop") == top
        infos = await supervisors.which_children(top)
        return started, [
            (i.id, i.type, i.pid == pj.whereis("cfgsub") if i.id == "sub" else True) for i in infos
        ]

    started, infos = run(main)
    assert started == [("started", "a"), ("started", "b")]
    assert infos == [("a", "worker", True), ("sub", "supervisor", True)]


def test_from_config_fails_before_starting_anything() -> None:
    async def main() -> None:
        with pytest.raises(ConfigError) as info:
            await supervisors.from_config(
                {"children": [{"id": "a", "start": worker}, {"id": "b", "start": "nowhere_pj:fn"}]}
            )
        assert info.value.key == "children[1].start"
        assert pj.processes() == [pj.self()]

    run(main)


def test_supervisor_spec_defaults() -> None:
    spec = supervisor_spec("s", [])
    assert (spec.type, spec.shutdown, spec.restart) == ("supervisor", "infinity", "permanent")
    from philipjose.supervisors import SpecError

    with pytest.raises(SpecError):
        supervisor_spec("s", [], strategy="bad")


def test_nested_supervisor_start_failure_propagates() -> None:
    async def main() -> Any:
        from .util import failing_start

        inner = supervisor_spec("inner", [{"id": "f", "start": (failing_start, BOOM)}])
        with pytest.raises(supervisors.StartError) as info:
            await supervisors.start_link([{"id": "a", "start": (worker, "a")}, inner])
        return info.value.reason

    reason = run(main)
    assert reason == (
        SHUTDOWN,
        (Atom("failed_to_start_child"), "inner", (SHUTDOWN, (Atom("failed_to_start_child"), "f", BOOM))),
    )


def test_start_link_through_partial_nests_a_supervisor() -> None:
    import functools

    async def main() -> list[Any]:
        sub = functools.partial(
            supervisors.start_link, [{"id": "w", "start": (worker, "w")}], strategy="one_for_all"
        )
        top = await supervisors.start_link([{"id": "sub", "start": sub, "type": "supervisor"}])
        await events(1)
        (info,) = await supervisors.which_children(top)
        inner = await supervisors.which_children(info.pid)
        return [info.type, [i.id for i in inner]]

    assert run(main) == ["supervisor", ["w"]]
