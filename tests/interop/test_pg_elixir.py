"""An Elixir node broadcasts to the members of a ``:pg`` group (the way Phoenix.PubSub does); a Python
subscriber that joined the group with ``pj.pg.join`` receives the message, and the Elixir side sees the
subscriber leave when it exits."""

from __future__ import annotations

import pytest

import philipjose as pj
from philipjose import Atom, Pid
from tests.node.support import unique
from tests.tools import require

from .dist_support import COOKIE, private_epmd, python_node, start_peer

pytestmark = pytest.mark.interop

SCRIPT = r"""
[py_s] = System.argv()
py = String.to_atom(py_s)
{:ok, _} = :pg.start_link(:chat)
true = Node.connect(py)
IO.puts("READY")
{ref, members} = :pg.monitor(:chat, "lobby")
members =
  if members == [] do
    receive do
      {^ref, :join, "lobby", pids} -> pids
    after 20_000 -> []
    end
  else
    members
  end
IO.puts("NODES #{inspect(Enum.map(members, &node/1))}")
for pid <- :pg.get_members(:chat, "lobby"), do: send(pid, {:broadcast, "lobby", "hello from elixir", self()})
receive do
  {:ack, pid} -> IO.puts("ACK #{pid in members}")
after 20_000 -> IO.puts("ACK timeout")
end
receive do
  {^ref, :leave, "lobby", pids} -> IO.puts("LEFT #{pids == members}")
after 20_000 -> IO.puts("LEFT timeout")
end
"""


async def test_elixir_broadcasts_to_a_python_subscriber() -> None:
    elixir = require("elixir")

    async def subscriber() -> None:
        pj.pg.join("lobby", pj.self(), scope="chat")  # Elixir's "lobby" is the binary b"lobby"
        msg = await pj.receive(match=lambda m: type(m) is tuple and m[0] == Atom("broadcast"))
        pj.send(msg[3], (Atom("ack"), pj.self()))
        await pj.receive(match=Atom("stop"))

    async with private_epmd() as epmd, python_node(epmd) as py:

        async def start_subscriber() -> Pid:
            return pj.spawn(subscriber)

        sub = await py.run(start_subscriber)
        name = unique("ex")
        argv = [elixir, "--sname", name, "--cookie", COOKIE, "-e", SCRIPT, "--", py.name]
        async with start_peer(argv, epmd, name) as ex:
            await ex.line("READY")
            assert await ex.line("NODES ") == f"[:{py.name}]"
            assert await ex.line("ACK ") == "true"

            async def finish() -> bool:
                ref = pj.monitor(sub)
                pj.send(sub, Atom("stop"))  # the subscriber exits: Elixir sees it leave
                down = await pj.receive(match=lambda m: type(m) is tuple and m[1] == ref, timeout=20)
                return bool(down[4] == Atom("normal"))

            assert await py.run(finish)
            assert await ex.line("LEFT ") == "true"
