"""The farm as a service for Elixir, and an Elixir node as an Erlang worker (Elixir 1.14 on OTP 25,
1.18 on OTP 27; private EPMD, loopback).

One Elixir node runs ``examples/philipjose_farm.ex`` and a scenario: it is the farm's Erlang worker
(the farm connects to it, which tells the script the farmer's node name) and calls
``philipjose_farm`` for maps, submits, races and stats of Python functions exposed on the farmer.
"""

from __future__ import annotations

import pytest
import trio

from philipjose import farm, rpc
from tests.node.support import unique
from tests.tools import require

from .dist_support import (
    COOKIE,
    ELIXIR_CHECK,
    ELIXIR_SCENARIO_END,
    ROOT,
    private_epmd,
    scenario_checks,
    start_peer,
)

pytestmark = pytest.mark.interop

SCRIPT = (
    r"""
IO.puts("READY")
:ok = :net_kernel.monitor_nodes(true, node_type: :all)
farm = receive do
  {:nodeup, node, _} -> node
end
call = fn request -> GenServer.call({:philipjose_farm, farm}, request, 60_000) end
"""
    + ELIXIR_CHECK
    + r"""
check.(:map_like_async_stream, fn ->
  PhilipjoseFarm.map(1..50, :pyfarm, :square, [], farm: farm, batch_size: 20) |> Enum.to_list() ==
    Enum.map(1..50, &{:ok, &1 * &1})
end)
check.(:map_with_extra_args, fn ->
  PhilipjoseFarm.map([1, 2], :pyfarm, :add, [10], farm: farm) |> Enum.map(fn {:ok, v} -> v end) == [11, 12]
end)
check.(:map_call, fn -> call.({:map, :pyfarm, :square, [[3], [4]]}) == {:ok, [9, 16]} end)
check.(:strings_cross, fn -> call.({:map, :pyfarm, :shout, [["héllo"]]}) == {:ok, ["HÉLLO!"]} end)
check.(:unexposed_refused, fn ->
  call.({:map, :os, :cmd, [['ls']]}) == {:error, {:undef, [{:os, :cmd, ['ls'], []}]}}
end)
check.(:wrong_arity_refused, fn ->
  call.({:submit, :pyfarm, :square, [1, 2]}) == {:error, {:undef, [{:pyfarm, :square, [1, 2], []}]}}
end)
check.(:unexposed_refused_by_the_wrapper, fn ->
  try do
    PhilipjoseFarm.map([1], File, :rm_rf, [], farm: farm) |> Enum.to_list()
  catch
    :exit, {{:undef, [{File, :rm_rf, [1], []}]}, {PhilipjoseFarm, :map, [File, :rm_rf]}} -> true
  end
end)
check.(:python_error_exits_like_a_crashed_task, fn ->
  try do
    PhilipjoseFarm.map([0], :pyfarm, :inverse, [], farm: farm) |> Enum.to_list()
  catch
    :exit, {{:python_exception, "ZeroDivisionError", _, tb}, {PhilipjoseFarm, :map, _}} -> tb =~ "inverse"
  end
end)
check.(:submit, fn ->
  ref = PhilipjoseFarm.submit(:pyfarm, :square, [7], farm: farm)
  is_reference(ref) and PhilipjoseFarm.await(ref, 30_000) == {:ok, 49}
end)
check.(:submit_error_message, fn ->
  ref = PhilipjoseFarm.submit(:pyfarm, :inverse, [0], farm: farm)
  match?({:error, {:python_exception, "ZeroDivisionError", _, _}}, PhilipjoseFarm.await(ref, 30_000))
end)
check.(:race, fn ->
  PhilipjoseFarm.race([{:pyfarm, :nap, [60]}, {:pyfarm, :square, [5]}], farm: farm) == {:ok, 25}
end)
check.(:stats, fn ->
  {:ok, stats} = PhilipjoseFarm.stats(farm: farm)
  stats.completed >= 50 and stats.workers == %{python: 2, erlang: 1}
end)
check.(:bad_request, fn -> call.({:map, :pyfarm, :square, :nope}) == {:error, :badarg} end)
"""
    + ELIXIR_SCENARIO_END
)


def square(x: int) -> int:
    return x * x


def add(x: int, y: int) -> int:
    return x + y


def shout(text: bytes) -> str:
    return text.decode().upper() + "!"


def inverse(x: int) -> float:
    return 1 / x


def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "woke"


async def test_elixir_calls_the_farm_and_works_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    rpc.expose("pyfarm", [square, add, shout, inverse, nap])
    elixir = require("elixir")
    name = unique("ex")
    library = str(ROOT / "examples" / "philipjose_farm.ex")
    argv = [elixir, "--sname", name, "--cookie", COOKIE, "-r", library, "-e", SCRIPT]
    try:
        async with private_epmd() as epmd, start_peer(argv, epmd, name) as ex:
            monkeypatch.setenv("ERL_EPMD_PORT", str(epmd))
            await ex.line("READY", timeout=120)
            async with farm.Farm(workers=2, erlang_nodes=[name], cookie=COOKIE, service=True) as f:
                upper = await f.submit(farm.Erl(farm.elixir("String"), "upcase", ["grüße"]))
                powers = await f.map(farm.erl(farm.elixir("Integer"), "pow"), [2, 3], [10, 2])
                with trio.fail_after(120):
                    results = await scenario_checks(ex)
    finally:
        rpc.unexpose("pyfarm")
    assert upper == "GRÜSSE".encode()
    assert powers == [1024, 9]
    assert len(results) == 13, ex.lines
    assert {k: v for k, v in results.items() if v != "ok"} == {}
