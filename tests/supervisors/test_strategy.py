"""Restart decisions: which reasons restart which restart types, and each strategy's plan."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from philipjose.supervisors.strategy import (
    RestartPlan,
    auto_shutdown_triggered,
    is_reported,
    is_shutdown_reason,
    plan_restart,
    should_restart,
    shutdown_ok,
)
from philipjose.term import Atom

NORMAL, SHUTDOWN, KILLED, BOOM = Atom("normal"), Atom("shutdown"), Atom("killed"), Atom("boom")

CHILDREN = [("a", "permanent"), ("b", "temporary"), ("c", "transient"), ("d", "permanent")]


@pytest.mark.parametrize(
    ("restart", "reason", "expected"),
    [
        ("permanent", NORMAL, True),
        ("permanent", SHUTDOWN, True),
        ("permanent", BOOM, True),
        ("transient", NORMAL, False),
        ("transient", SHUTDOWN, False),
        ("transient", (SHUTDOWN, "bye"), False),
        ("transient", BOOM, True),
        ("transient", KILLED, True),
        ("transient", (BOOM, 1), True),
        ("transient", "normal", True),  # a binary, not the atom
        ("temporary", BOOM, False),
        ("temporary", NORMAL, False),
    ],
)
def test_should_restart(restart: str, reason: Any, expected: bool) -> None:
    assert should_restart(restart, reason) is expected


def test_shutdown_reasons_and_reports() -> None:
    assert is_shutdown_reason((SHUTDOWN, {"any": 1}))
    assert not is_shutdown_reason((SHUTDOWN, 1, 2))
    assert is_reported("permanent", NORMAL)
    assert not is_reported("transient", NORMAL)
    assert is_reported("temporary", BOOM)
    assert not is_reported("temporary", (SHUTDOWN, 1))


def test_one_for_one_and_simple() -> None:
    assert plan_restart("one_for_one", CHILDREN, "c") == RestartPlan((), (), ("c",))
    assert plan_restart("simple_one_for_one", [], "pid") == RestartPlan((), (), ("pid",))


def test_one_for_all() -> None:
    plan = plan_restart("one_for_all", CHILDREN, "c")
    assert plan.terminate == ("d", "b", "a")
    assert plan.forget == ("b",)
    assert plan.start == ("a", "c", "d")


def test_rest_for_one() -> None:
    plan = plan_restart("rest_for_one", CHILDREN, "a")
    assert plan.terminate == ("d", "c", "b")
    assert plan.forget == ("b",)
    assert plan.start == ("a", "c", "d")
    last = plan_restart("rest_for_one", CHILDREN, "d")
    assert last == RestartPlan((), (), ("d",))


def test_plan_errors() -> None:
    with pytest.raises(ValueError):
        plan_restart("rest_for_one", CHILDREN, "zz")
    with pytest.raises(ValueError):
        plan_restart("one_for_some", CHILDREN, "a")


def test_shutdown_ok() -> None:
    assert shutdown_ok(5.0, "permanent", SHUTDOWN)
    assert not shutdown_ok(5.0, "permanent", KILLED)  # killed after the timeout: reported
    assert not shutdown_ok(5.0, "permanent", NORMAL)
    assert shutdown_ok(5.0, "transient", NORMAL)
    assert shutdown_ok("infinity", "temporary", (SHUTDOWN, 1))
    assert shutdown_ok("brutal_kill", "permanent", KILLED)
    assert not shutdown_ok("brutal_kill", "permanent", SHUTDOWN)
    assert shutdown_ok("brutal_kill", "transient", SHUTDOWN)
    assert not shutdown_ok("brutal_kill", "transient", BOOM)


def test_auto_shutdown() -> None:
    assert not auto_shutdown_triggered("never", True, False)
    assert not auto_shutdown_triggered("any_significant", False, False)
    assert auto_shutdown_triggered("any_significant", True, True)
    assert not auto_shutdown_triggered("all_significant", True, True)
    assert auto_shutdown_triggered("all_significant", True, False)


@given(
    st.lists(st.sampled_from(["permanent", "transient", "temporary"]), min_size=1, max_size=12),
    st.data(),
    st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]),
)
def test_plan_invariants(restarts: list[str], data: st.DataObject, strategy: str) -> None:
    children = [(f"c{i}", r) for i, r in enumerate(restarts)]
    ids = [cid for cid, _ in children]
    dead = data.draw(st.sampled_from(ids))
    plan = plan_restart(strategy, children, dead)
    position = ids.index(dead)
    affected = {
        "one_for_one": [],
        "one_for_all": [c for c in ids if c != dead],
        "rest_for_one": ids[position + 1 :],
    }[strategy]
    # siblings are stopped in reverse start order, the dead one is never among them
    assert list(plan.terminate) == list(reversed(affected))
    # temporary siblings are forgotten, never started again
    temporaries = {cid for cid, r in children if r == "temporary"}
    assert set(plan.forget) == set(affected) & temporaries
    assert not set(plan.start) & set(plan.forget)
    # starts follow start order and include the dead child
    assert list(plan.start) == sorted(plan.start, key=ids.index)
    assert dead in plan.start
    assert set(plan.start) == ({dead} | set(affected)) - set(plan.forget)
