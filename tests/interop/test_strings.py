"""Strings and nil across the wire with real erl and Elixir nodes, in the default style and with the
node options ``binaries="str"`` and ``none="nil"`` (``docs/terms.md``, *Strings and nil*): what Python
sees of Erlang/Elixir values, what they see of Python's, and that everything goes back byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from philipjose import rpc
from philipjose.term import Atom
from tests.node.support import unique
from tests.tools import require

from .dist_support import COOKIE, private_epmd, python_node, start_peer

pytestmark = pytest.mark.interop


def kind(value: Any) -> str:
    """``pystr:kind(X)``: the Python type of what arrived (the reply is a str: a binary)."""
    return type(value).__name__


def kinds(value: Any) -> list[str]:
    return [kind(v) for v in value]


def python_values() -> list[Any]:
    """``pystr:values()``: what Python sends: None, a str, bytes (not UTF-8), an atom."""
    return [None, "héllo", b"\xff\x00", Atom("undefined")]


@pytest.fixture
def exposed() -> Iterator[None]:
    rpc.expose("pystr", {"kind": kind, "kinds": kinds, "values": python_values, "echo": lambda x: x})
    yield
    rpc.unexpose("pystr")


ELIXIR = r"""
[py_s] = System.argv()
py = String.to_atom(py_s)
true = Node.connect(py)
sent = ["héllo", <<255, 0>>, nil, :undefined, 'chars', %{"k" => [nil, "v"]}, :get]
IO.puts("KINDS #{Enum.join(:erpc.call(py, :pystr, :kinds, [sent]), " ")}")
IO.puts("VALUES #{inspect(:erpc.call(py, :pystr, :values, []))}")
IO.puts("ECHO #{:erpc.call(py, :pystr, :echo, [sent]) === sent}")
IO.puts("COUNTER #{inspect(GenServer.call({:counter, py}, :get))}")
IO.puts("DONE")
"""

ERL = r"""
[PyS] = init:get_plain_arguments(),
Py = list_to_atom(PyS),
true = net_kernel:connect_node(Py),
Sent = [<<"héllo"/utf8>>, <<255, 0>>, nil, undefined, "chars", #{<<"k">> => [nil, <<"v">>]}, get],
io:format("KINDS ~s~n", [lists:join(" ", erpc:call(Py, pystr, kinds, [Sent]))]),
io:format("VALUES ~w~n", [erpc:call(Py, pystr, values, [])]),
io:format("ECHO ~w~n", [erpc:call(Py, pystr, echo, [Sent]) =:= Sent]),
io:format("COUNTER ~w~n", [gen_server:call({counter, Py}, get)]),
io:format("DONE~n"),
halt().
"""

DEFAULT_KINDS = "bytes bytes Atom Atom list dict Atom"
STYLED_KINDS = "str bytes NoneType Atom list dict Atom"


async def run_peer(tool: str, options: dict[str, Any]) -> dict[str, str]:
    async with private_epmd() as epmd, python_node(epmd, **options) as py:
        name = unique(tool[:2])
        if tool == "elixir":
            argv = [require("elixir"), "--sname", name, "--cookie", COOKIE, "-e", ELIXIR, "--", py.name]
        else:
            argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE, "-eval", ERL]
            argv += ["-extra", py.name]
        async with start_peer(argv, epmd, name) as peer:
            await peer.line("DONE", timeout=120)
            keys = ("KINDS ", "VALUES ", "ECHO ", "COUNTER ")
            return {
                line.split()[0]: line.split(maxsplit=1)[1] for line in peer.lines if line.startswith(keys)
            }


@pytest.mark.parametrize(
    ("options", "kinds_seen", "nil"),
    [({}, DEFAULT_KINDS, "undefined"), ({"binaries": "str", "none": "nil"}, STYLED_KINDS, "nil")],
    ids=["default", "str-nil"],
)
@pytest.mark.parametrize("tool", ["elixir", "erl"])
async def test_strings_and_nil(
    tool: str, options: dict[str, Any], kinds_seen: str, nil: str, exposed: None
) -> None:
    out = await run_peer(tool, options)
    assert out["KINDS"] == kinds_seen
    if tool == "elixir":
        assert out["VALUES"] == f'[:{nil}, "héllo", <<255, 0>>, :undefined]'.replace(":nil", "nil")
    else:
        assert out["VALUES"] == f"[{nil},<<104,195,169,108,108,111>>,<<255,0>>,undefined]"
    assert out["ECHO"] == "true"  # what Python received goes back to the same bytes
    assert out["COUNTER"] == "0"
