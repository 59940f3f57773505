"""Child specs and supervisor flags: validation at the boundary, defaults as in OTP."""

from __future__ import annotations

import functools
import math
from typing import Any

import pytest

from philipjose.supervisors.errors import SpecError
from philipjose.supervisors.spec import (
    ChildSpec,
    SupFlags,
    check_child,
    child_spec,
    is_start_function,
    start_function,
    validate_children,
)


async def body(*args: Any) -> None:
    return None


def plain_start(*args: Any) -> None:
    return None


@start_function
async def marked_start(*args: Any) -> None:
    return None


class WithSpec:
    @classmethod
    def child_spec(cls, arg: int) -> dict[str, Any]:
        return {"id": f"with-{arg}", "start": (body, arg), "restart": "transient"}


def test_defaults_follow_otp() -> None:
    worker = ChildSpec(id="w", start=body)
    assert worker.restart == "permanent"
    assert worker.type == "worker"
    assert worker.shutdown == 5.0
    assert worker.shutdown_timeout == 5.0
    assert worker.significant is False
    assert worker.modules == (f"{__name__}.body",)
    sup = ChildSpec(id="s", start=plain_start, type="supervisor")
    assert sup.shutdown == "infinity"
    assert sup.shutdown_timeout is None
    assert ChildSpec(id="k", start=body, shutdown="brutal_kill").shutdown_timeout == 0.0


def test_spec_is_frozen_and_hashable_fields() -> None:
    spec = ChildSpec(id=("a", 1), start=body, args=[1, 2])  # type: ignore[arg-type]
    assert spec.args == (1, 2)
    with pytest.raises(AttributeError):
        spec.id = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("shutdown", "expected"),
    [
        (0, 0.0),
        (2, 2.0),
        (0.5, 0.5),
        ("infinity", "infinity"),
        (math.inf, "infinity"),
        ("brutal_kill", "brutal_kill"),
    ],
)
def test_shutdown_values(shutdown: Any, expected: Any) -> None:
    assert ChildSpec(id="w", start=body, shutdown=shutdown).shutdown == expected


@pytest.mark.parametrize("shutdown", [-1, math.nan, True, "soon", "5000", [5]])
def test_bad_shutdown_values(shutdown: Any) -> None:
    with pytest.raises(SpecError) as info:
        ChildSpec(id="w", start=body, shutdown=shutdown)
    assert info.value.key == "shutdown"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"restart": "sometimes"}, "restart"),
        ({"type": "manager"}, "type"),
        ({"significant": "yes"}, "significant"),
        ({"significant": True}, "significant"),  # permanent cannot be significant
        ({"modules": "static"}, "modules"),
        ({"modules": [1]}, "modules"),
        ({"args": 5}, "args"),
        ({"args": "abc"}, "args"),
    ],
)
def test_bad_fields(fields: dict[str, Any], key: str) -> None:
    with pytest.raises(SpecError) as info:
        ChildSpec(id="w", start=body, **fields)
    assert info.value.key == key


def test_unhashable_id_and_uncallable_start() -> None:
    with pytest.raises(SpecError, match="hashable"):
        ChildSpec(id=["x"], start=body)
    with pytest.raises(SpecError) as info:
        ChildSpec(id="x", start=42)  # type: ignore[arg-type]
    assert info.value.key == "start"


def test_dict_spec_with_tuple_start() -> None:
    spec = child_spec({"id": "w", "start": (body, 1, 2), "restart": "temporary", "shutdown": 1})
    assert (spec.start, spec.args, spec.restart, spec.shutdown) == (body, (1, 2), "temporary", 1.0)
    spec = child_spec({"id": "w", "start": body, "args": [3]})
    assert spec.args == (3,)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"start": body}, "id"),
        ({"id": "w"}, "start"),
        ({"id": "w", "start": body, "colour": "red"}, "colour"),
        ({"id": "w", "start": (body, 1), "args": [2]}, "args"),
        ({"id": "w", "start": ()}, "start"),
    ],
)
def test_bad_dict_specs(spec: dict[str, Any], key: str) -> None:
    with pytest.raises(SpecError) as info:
        child_spec(spec)
    assert info.value.key == key


def test_callable_and_tuple_shorthands() -> None:
    assert child_spec(body).id == "body"
    spec = child_spec((body, 7), id="seven", restart="transient")
    assert (spec.id, spec.args, spec.restart) == ("seven", (7,), "transient")
    made = child_spec((WithSpec, 3))
    assert (made.id, made.args, made.restart) == ("with-3", (3,), "transient")


def test_overrides() -> None:
    base = child_spec({"id": "w", "start": body})
    assert child_spec(base, type="supervisor").shutdown == "infinity"
    assert child_spec(base, type="supervisor", shutdown=3).shutdown == 3.0
    swapped = child_spec(base, start=(plain_start, 1))
    assert swapped.start is plain_start and swapped.args == (1,)
    assert swapped.modules == (f"{__name__}.plain_start",)
    with pytest.raises(SpecError) as info:
        child_spec(base, colour="red")
    assert info.value.key == "colour"
    with pytest.raises(SpecError):
        child_spec(42)


def test_start_function_detection() -> None:
    assert is_start_function(plain_start)
    assert is_start_function(marked_start)
    assert is_start_function(functools.partial(marked_start, 1))
    assert not is_start_function(functools.partial(body, 1))
    assert not is_start_function(body)
    assert not is_start_function(WithSpec)


def test_flags() -> None:
    assert SupFlags() == SupFlags("one_for_one", 1, 5, "never")
    for kwargs, key in [
        ({"strategy": "one_for_some"}, "strategy"),
        ({"intensity": -1}, "intensity"),
        ({"intensity": True}, "intensity"),
        ({"period": 0}, "period"),
        ({"period": 1.5}, "period"),
        ({"auto_shutdown": "sometimes"}, "auto_shutdown"),
    ]:
        with pytest.raises(SpecError) as info:
            SupFlags(**kwargs)
        assert info.value.key == key


def test_validate_children() -> None:
    flags = SupFlags()
    specs = validate_children([{"id": "a", "start": body}, (body, 1)], flags)
    assert [s.id for s in specs] == ["a", "body"]
    with pytest.raises(SpecError) as info:
        validate_children([{"id": "a", "start": body}, {"id": "a", "start": body}], flags)
    assert info.value.key == "children[1].id"
    assert "duplicate" in info.value.reason
    with pytest.raises(SpecError) as info:
        validate_children([{"id": "a", "start": body, "shutdown": "later"}], flags)
    assert info.value.key == "children[0].shutdown"
    significant = {"id": "a", "start": body, "restart": "transient", "significant": True}
    with pytest.raises(SpecError) as info:
        validate_children([significant], flags)
    assert info.value.key == "children[0].significant"
    assert validate_children([significant], SupFlags(auto_shutdown="any_significant"))[0].significant
    with pytest.raises(SpecError) as info:
        validate_children([], SupFlags(strategy="simple_one_for_one"))
    assert info.value.key == "children"
    with pytest.raises(SpecError):
        validate_children("abc", flags)
    with pytest.raises(SpecError):
        check_child(significant, flags)


def test_to_dict_round_trip() -> None:
    spec = ChildSpec(id="w", start=body, args=(1,), restart="transient")
    assert child_spec(spec.to_dict()) == spec
