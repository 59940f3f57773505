"""A philipjose node and a real Elixir 1.14 node on loopback (private EPMD): ping both ways, messages,
GenServer.call both ways, monitors, and the noproc exit of a call to an unknown Python name."""

from __future__ import annotations

import pytest

import philipjose as pj
from philipjose import Atom
from tests.node.support import unique
from tests.tools import require

from .dist_support import COOKIE, private_epmd, python_node, start_peer

pytestmark = pytest.mark.interop

SCRIPT = r"""
[py_s] = System.argv()
py = String.to_atom(py_s)

defmodule ExCounter do
  use GenServer
  def init(n), do: {:ok, n}
  def handle_call(:inc, _from, n), do: {:reply, n + 1, n + 1}
end

{:ok, _} = GenServer.start(ExCounter, 100, name: :ex_counter)
IO.puts("READY")
IO.puts("PING #{Node.ping(py)}")
send({:echo, py}, {self(), {:hello, [1, 2.5, "bin", %{k: :v}], self()}})
me = self()
receive do
  {:hello, [1, 2.5, "bin", %{k: :v}], ^me} -> IO.puts("ECHO ok")
after 10_000 -> IO.puts("ECHO timeout")
end
IO.puts("CALL #{GenServer.call({:counter, py}, :inc)}")
GenServer.cast({:counter, py}, {:add, 41})
IO.puts("CALL2 #{GenServer.call({:counter, py}, :get)}")
reason = try do
  GenServer.call({:nosuch, py}, :get, :infinity)
catch
  :exit, {r, _} -> r
end
IO.puts("NOPROC #{reason}")
ref = Process.monitor({:echo, py})
IO.puts("MONITORED #{is_reference(ref)}")
receive do
  :stop -> :ok
after 60_000 -> :ok
end
"""


async def test_elixir_and_python_nodes() -> None:
    elixir = require("elixir")
    async with private_epmd() as epmd, python_node(epmd) as py:
        name = unique("ex")
        argv = [elixir, "--sname", name, "--cookie", COOKIE, "-e", SCRIPT, "--", py.name]
        async with start_peer(argv, epmd, name) as ex:
            await ex.line("READY")
            assert await ex.line("PING ") == "pong"
            assert await ex.line("ECHO ") == "ok"
            assert await ex.line("CALL ") == "1"
            assert await ex.line("CALL2 ") == "42"
            assert await ex.line("NOPROC ") == "noproc"
            assert await ex.line("MONITORED ") == "true"

            async def from_python() -> list[object]:
                out: list[object] = [await pj.node.ping(name)]
                out.append(await pj.call(("ex_counter", name), Atom("inc")))
                ref = pj.monitor(("ex_counter", name))
                pj.node.monitor_node(name)
                ex.kill()
                got = {await pj.receive(timeout=30) for _ in range(2)}
                out.append(
                    got
                    == {
                        (
                            Atom("DOWN"),
                            ref,
                            Atom("process"),
                            (Atom("ex_counter"), Atom(name)),
                            Atom("noconnection"),
                        ),
                        (Atom("nodedown"), Atom(name)),
                    }
                )
                return out

            assert await py.run(from_python) == [True, 101, True]
