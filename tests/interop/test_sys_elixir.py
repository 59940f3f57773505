"""``:sys`` and ``Supervisor``/``DynamicSupervisor`` calls from a real Elixir node to a philipjose
node: ``:sys.get_state`` on the example's counter, suspend/resume, and the supervisor API answering
in OTP's shapes (``{:error, :not_found}``, ``{:ok, pid}``, ids as ``which_children`` shows them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import philipjose as pj
from philipjose import Atom, Pid, rpc, supervisors
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

counter = {:counter, py}
top = {:app_top, py}
dyn = {:app_dyn, py}

check.(:get_state, fn ->
  n = GenServer.call(counter, :inc)
  :sys.get_state(counter) == %{"n" => n}
end)
check.(:get_status, fn ->
  {:status, pid, {:module, :gen_server}, [_pdict, :running, _parent, [], misc]} = :sys.get_status(counter)
  node(pid) == py and {:data, [{'State', :sys.get_state(counter)}]} in misc
end)
check.(:suspend_resume, fn ->
  :ok = :sys.suspend(counter)
  blocked =
    try do
      GenServer.call(counter, :get, 300)
    catch
      :exit, reason -> reason
    end
  :ok = :sys.resume(counter)
  match?({:timeout, _}, blocked) and is_integer(GenServer.call(counter, :get))
end)
check.(:which_children, fn ->
  [{:worker, pid, :worker, _}] = Supervisor.which_children(top)
  is_pid(pid) and node(pid) == py
end)
check.(:count_children, fn ->
  Supervisor.count_children(top) == %{specs: 1, active: 1, supervisors: 0, workers: 1}
end)
check.(:terminate_child_not_found, fn -> Supervisor.terminate_child(top, :nope) == {:error, :not_found} end)
check.(:delete_child_running, fn -> Supervisor.delete_child(top, :worker) == {:error, :running} end)
check.(:terminate_child, fn ->
  :ok = Supervisor.terminate_child(top, :worker)
  [{:worker, :undefined, :worker, _}] = Supervisor.which_children(top)
  true
end)
check.(:restart_child, fn -> match?({:ok, pid} when is_pid(pid), Supervisor.restart_child(top, :worker)) end)
check.(:start_child, fn ->
  {:ok, pid} = Supervisor.start_child(top, %{id: :w2, start: {:pysup, :start_worker, []}})
  node(pid) == py and Supervisor.start_child(top, %{id: :w2, start: {:pysup, :start_worker, []}}) ==
    {:error, {:already_started, pid}}
end)
check.(:start_child_not_exposed, fn ->
  match?(
    {:error, {{:EXIT, {:undef, [{File, :rm_rf, ["x"], []}]}}, _}},
    Supervisor.start_child(top, %{id: :w3, start: {File, :rm_rf, ["x"]}})
  )
end)
check.(:start_child_invalid, fn ->
  Supervisor.start_child(top, %{id: :w3, start: {:pysup, :start_worker, []}, restart: :sometimes}) ==
    {:error, {:invalid_restart_type, :sometimes}}
end)
check.(:get_childspec, fn ->
  {:ok, %{id: :w2, start: {:pysup, :start_worker, []}, restart: :permanent, shutdown: 5000}} =
    :supervisor.get_childspec(top, :w2)
  true
end)
check.(:delete_child, fn ->
  :ok = Supervisor.terminate_child(top, :w2)
  :ok = Supervisor.delete_child(top, :w2)
  Supervisor.delete_child(top, :w2) == {:error, :not_found}
end)
check.(:supervisor_get_state, fn -> elem(:sys.get_state(top), 0) == :state end)
check.(:dynamic_supervisor, fn ->
  {:ok, pid} = DynamicSupervisor.start_child(dyn, %{id: :x, start: {:pysup, :start_worker, []}})
  counts = DynamicSupervisor.count_children(dyn)
  [{:undefined, ^pid, :worker, [:pysup]}] = DynamicSupervisor.which_children(dyn)
  :ok = DynamicSupervisor.terminate_child(dyn, pid)
  counts == %{specs: 1, active: 1, supervisors: 0, workers: 1} and
    DynamicSupervisor.terminate_child(dyn, pid) == {:error, :not_found} and
    DynamicSupervisor.which_children(dyn) == []
end)
"""
    + ELIXIR_SCENARIO_END
)


def start_worker() -> tuple[Atom, Pid]:
    async def idle() -> None:
        await pj.receive()

    return Atom("ok"), pj.spawn_link(idle)


async def worker_body() -> None:
    await pj.receive()


@pytest.fixture
def exposed() -> Iterator[None]:
    rpc.expose("pysup", {"start_worker": start_worker})
    yield
    rpc.unexpose("pysup")


async def test_elixir_sys_and_supervisor_calls(exposed: None) -> None:
    elixir = require("elixir")
    async with private_epmd() as epmd, python_node(epmd) as py:

        async def start_trees() -> None:
            await supervisors.start([{"id": "worker", "start": worker_body}], name="app_top")
            await supervisors.start_dynamic(name="app_dyn")

        await py.run(start_trees)
        name = unique("ex")
        argv = [elixir, "--sname", name, "--cookie", COOKIE, "-e", SCRIPT, "--", py.name]
        async with start_peer(argv, epmd, name) as ex:
            await ex.line("READY", timeout=120)
            results = await scenario_checks(ex)
            assert len(results) == 16, results
            bad = {k: v for k, v in results.items() if v != "ok"}
            assert bad == {}, "\n".join(f"{k}: {v}" for k, v in bad.items())
