"""The registry of exposed functions: names, arities, what can and cannot be exposed."""

from __future__ import annotations

import functools
import types
from typing import Any

import pytest

from philipjose import Atom
from philipjose.rpc import ExposeError, Registry


def add(a: int, b: int) -> int:
    return a + b


async def greet(name: str, greeting: str = "hello") -> str:
    return f"{greeting} {name}"


def many(first: Any, *rest: Any) -> int:
    return 1 + len(rest)


def test_dict_list_and_single_function() -> None:
    reg = Registry()
    reg.expose("m", {"plus": add})
    reg.expose("m", [greet])
    reg.expose("other", many)
    assert reg.listing() == [
        (Atom("m"), Atom("greet"), "1..2"),
        (Atom("m"), Atom("plus"), "2"),
        (Atom("other"), Atom("many"), "1.."),
    ]
    entry = reg.lookup(Atom("m"), Atom("plus"), 2)
    assert entry is not None and entry.fn is add


def test_arity_is_checked() -> None:
    reg = Registry()
    reg.expose("m", [add, greet, many])
    assert reg.lookup(Atom("m"), Atom("add"), 1) is None
    assert reg.lookup(Atom("m"), Atom("add"), 3) is None
    assert reg.lookup(Atom("m"), Atom("greet"), 1) is not None
    assert reg.lookup(Atom("m"), Atom("greet"), 2) is not None
    assert reg.lookup(Atom("m"), Atom("greet"), 3) is None
    assert reg.lookup(Atom("m"), Atom("many"), 0) is None
    assert reg.lookup(Atom("m"), Atom("many"), 40) is not None


def test_only_atoms_from_the_wire_find_anything() -> None:
    reg = Registry()
    reg.expose("m", [add])
    assert reg.lookup("m", "add", 2) is None  # binaries (str) are not atoms
    assert reg.lookup(Atom("m"), b"add", 2) is None
    assert reg.lookup(Atom("os"), Atom("system"), 1) is None


def test_module_object_exposes_its_all_or_its_own_functions() -> None:
    mod = types.ModuleType("fake_mod")
    exec(  # a module that imports a dangerous name and defines two functions
        "import os\nfrom os import system\ndef f(x):\n    return x\ndef _hidden():\n    pass\n",
        mod.__dict__,
    )
    reg = Registry()
    reg.expose("fake", mod)
    assert [name for _, name, _ in reg.listing()] == [Atom("f")]
    mod.__all__ = ["f", "system"]  # type: ignore[attr-defined]
    reg2 = Registry()
    reg2.expose("fake", mod)
    assert [name for _, name, _ in reg2.listing()] == [Atom("f"), Atom("system")]


def test_object_exposes_public_methods() -> None:
    class Service:
        def __init__(self) -> None:
            self.n = 0

        def bump(self, k: int) -> int:
            self.n += k
            return self.n

        def _private(self) -> None:
            pass

    reg = Registry()
    svc = Service()
    reg.expose("svc", svc)
    assert reg.listing() == [(Atom("svc"), Atom("bump"), "1")]
    entry = reg.lookup(Atom("svc"), Atom("bump"), 1)
    assert entry is not None and entry.fn(5) == 5 and svc.n == 5


def test_partial_and_lambda_with_names() -> None:
    reg = Registry()
    reg.expose("m", {"inc": functools.partial(add, 1), "neg": lambda x: -x})
    assert reg.listing() == [(Atom("m"), Atom("inc"), "1"), (Atom("m"), Atom("neg"), "1")]


@pytest.mark.parametrize(
    ("module", "functions", "message"),
    [
        ("", [add], "1 to 255"),
        ("x" * 256, [add], "1 to 255"),
        (3, [add], "str or Atom"),
        ("m", {"f": 42}, "not callable"),
        ("m", {"": add}, "1 to 255"),
        ("m", [functools.partial(add, 1)], "no __name__"),
        ("m", {"f": lambda *, key: key}, "keyword-only"),
        ("m", [], "nothing to expose"),
        ("m", int, "instance"),
    ],
)
def test_bad_exposures_are_refused_whole(module: Any, functions: Any, message: str) -> None:
    reg = Registry()
    with pytest.raises(ExposeError, match=message):
        reg.expose(module, functions)
    assert reg.listing() == []


def test_expose_error_is_a_value_error_and_nothing_half_done() -> None:
    reg = Registry()
    with pytest.raises(ValueError):
        reg.expose("m", {"good": add, "bad": 1})
    assert reg.listing() == []


def test_expose_again_replaces_and_unexpose() -> None:
    reg = Registry()
    reg.expose("m", {"f": add, "g": add})
    reg.expose("m", {"f": greet})
    entry = reg.lookup(Atom("m"), Atom("f"), 1)
    assert entry is not None and entry.fn is greet
    assert reg.unexpose("m", "f") == 1
    assert reg.unexpose("m", "f") == 0
    assert reg.unexpose("m") == 1
    assert reg.listing() == []
