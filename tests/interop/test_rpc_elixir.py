"""rpc between a philipjose node and a real Elixir 1.14 node (private EPMD, loopback): ``:rpc.call``,
``:erpc.call``, ``Node.spawn`` / ``Node.spawn_monitor`` of exposed functions, ``GenServer.call`` into
a Python GenServer, Elixir strings and maps crossing unchanged, refusals, and Python calling Elixir
functions back."""

from __future__ import annotations

from typing import Any

import pytest

from philipjose import Atom, rpc
from tests.node.support import unique
from tests.tools import require

from .dist_support import (
    COOKIE,
    ELIXIR_SCENARIO,
    ELIXIR_SCENARIO_END,
    private_epmd,
    python_node,
    scenario_checks,
    start_peer,
)

pytestmark = pytest.mark.interop

SCRIPT = (
    ELIXIR_SCENARIO
    + r"""

down = fn ref ->
  receive do
    {:DOWN, ^ref, :process, _, reason} -> reason
  after
    10_000 -> :no_down
  end
end

term = %{"name" => "héllo wörld ✓", :list => [1, 2.5, "x", 'chars'], "nested" => %{a: {:ok, "ü"}}}

check.(:rpc_call, fn -> :rpc.call(py, :pyexample, :add, [1, 2]) == 3 end)
check.(:erpc_call, fn -> :erpc.call(py, :pyexample, :add, [40, 2], 10_000) == 42 end)
check.(:strings_and_maps_unchanged, fn -> :rpc.call(py, :pyexample, :echo, [term]) === term end)
check.(:string_unchanged, fn -> :erpc.call(py, :pyexample, :echo, ["héllo"]) === "héllo" end)
check.(:struct_like_map_unchanged, fn ->
  r = 1..10
  :rpc.call(py, :pyexample, :echo, [r]) === r
end)
check.(:rpc_error, fn ->
  match?(
    {:badrpc, {:EXIT, {{:python_exception, "ValueError", "crash() was called", _}, [_ | _]}}},
    :rpc.call(py, :pyexample, :crash, [])
  )
end)
check.(:erpc_raises, fn ->
  try do
    {:returned, :erpc.call(py, :pyexample, :crash, [])}
  catch
    :error, {:exception, {:python_exception, "ValueError", _, _}, [_ | _]} -> true
  end
end)
check.(:unexposed_refused, fn ->
  :rpc.call(py, :os, :cmd, ['ls']) == {:badrpc, {:EXIT, {:undef, [{:os, :cmd, ['ls'], []}]}}}
end)
check.(:unexposed_elixir_module_refused, fn ->
  :rpc.call(py, File, :rm_rf, ["some/dir"]) ==
    {:badrpc, {:EXIT, {:undef, [{File, :rm_rf, ["some/dir"], []}]}}}
end)
check.(:genserver_call, fn ->
  n = GenServer.call({:counter, py}, :inc)
  GenServer.call({:counter, py}, :inc) == n + 1
end)
check.(:rpc_back_into_elixir, fn ->
  :rpc.call(py, :pyexample, :rpc_back, [node(), String, :upcase, ["abc"]]) == "ABC"
end)
check.(:node_spawn, fn ->
  pid = Node.spawn(py, :pyexample, :add, [1, 2])
  is_pid(pid) and node(pid) == py
end)
check.(:node_spawn_monitor_crash, fn ->
  {_, ref} = Node.spawn_monitor(py, :pyexample, :crash, [])
  match?({:python_exception, "ValueError", _, _}, down.(ref))
end)
check.(:node_spawn_unexposed, fn ->
  {_, ref} = Node.spawn_monitor(py, :os, :cmd, ['ls'])
  down.(ref) == {:undef, [{:os, :cmd, ['ls'], []}]}
end)
check.(:node_spawn_link_and_report, fn ->
  victim = spawn(fn -> receive do: (:die -> exit(:boom)) end)
  {_, ref} = Node.spawn_monitor(py, :pyexample, :link_and_report, [victim, self()])
  :normal = down.(ref)
  send(victim, :die)
  receive do
    {:reported, :boom} -> true
  after
    10_000 -> :no_report
  end
end)
"""
    + ELIXIR_SCENARIO_END
)


async def test_elixir_and_python_call_each_other() -> None:
    elixir = require("elixir")
    async with private_epmd() as epmd, python_node(epmd) as py:
        name = unique("ex")
        argv = [elixir, "--sname", name, "--cookie", COOKIE, "-e", SCRIPT, "--", py.name]
        async with start_peer(argv, epmd, name) as ex:
            await ex.line("READY", timeout=120)
            results = await scenario_checks(ex)

            async def go() -> list[Any]:
                out: list[Any] = [await rpc.call(name, "Elixir.String", "upcase", ["grüße"], timeout=10)]
                out.append(await rpc.call(name, "Elixir.Map", "put", [{b"a": 1}, Atom("b"), [2]], timeout=10))
                try:
                    await rpc.call(name, "Elixir.Integer", "parse", [42], timeout=10)
                except rpc.RemoteError as exc:
                    out.append((str(exc.kind), exc.reason[0] if type(exc.reason) is tuple else exc.reason))
                return out

            out = await py.run(go)
    assert len(results) == 15, ex.lines
    assert {k: v for k, v in results.items() if v != "ok"} == {}
    assert out[0] == "GRÜSSE".encode()
    assert out[1] == {b"a": 1, Atom("b"): [2]}
    assert out[2][0] == "error"
