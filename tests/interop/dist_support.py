"""Support for the distribution interop tests: a private EPMD, real erl/elixir peers, and a Python
node (in the test's Trio run) serving the processes of ``examples/interop_node.py``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import trio

import philipjose as pj
from philipjose import Atom
from philipjose.epmd import serve as serve_epmd
from tests.node.support import LocalNode, unique
from tests.tools import Otp, require

ROOT = Path(__file__).resolve().parents[2]
PEER_SOURCE = Path(__file__).parent / "erl" / "pj_peer.erl"
COOKIE = "interop-cookie"


def load_example() -> ModuleType:
    """``examples/interop_node.py`` as a module (its processes are what the peers talk to)."""
    spec = importlib.util.spec_from_file_location("interop_node", ROOT / "examples" / "interop_node.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_peer(out: Path, otp: Otp | None = None) -> Path:
    """Compile ``pj_peer.erl`` into ``out`` with the real ``erlc`` (``otp``'s, else the running test's)."""
    erlc = require("erlc", otp)
    subprocess.run([erlc, "-o", str(out), str(PEER_SOURCE)], check=True)
    return out


async def victims() -> None:
    """On ``{From, new}`` spawn a process that exits with R on ``{exit, R}``; reply ``{victim, Pid}``."""

    async def victim() -> None:
        msg = await pj.receive()
        raise pj.Exit(msg[1] if type(msg) is tuple and len(msg) == 2 else msg)

    while True:
        sender, _ = await pj.receive()
        pj.send(sender, (Atom("victim"), pj.spawn(victim)))


async def serve_example() -> None:
    """Start the example's echo, sink and counter, and ``victims``, in the calling node."""
    example = load_example()
    pj.register("echo", pj.spawn(example.echo))
    pj.register("sink", pj.spawn(example.sink))
    pj.register("victims", pj.spawn(victims))
    await example.Counter.start(0, name="counter")


@asynccontextmanager
async def python_node(
    epmd_port: int, *, cookie: str = COOKIE, name: str | None = None, **options: Any
) -> AsyncIterator[LocalNode]:
    """A Python node registered with the EPMD at ``epmd_port``, serving the example's processes
    (``name``: a fresh one by default)."""
    node = LocalNode(
        name or unique("py"),
        {"cookie": cookie, "epmd_port": epmd_port, "listen_host": "127.0.0.1", **options},
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node.serve)
        await node.run(serve_example)
        yield node
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def private_epmd() -> AsyncIterator[int]:
    """philipjose's EPMD server on a free loopback port (both erl and our node use it)."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_epmd, 0, "127.0.0.1")
        yield server.port
        nursery.cancel_scope.cancel()


class Peer:
    """A real ``erl`` or ``elixir`` OS process whose stdout is read line by line."""

    def __init__(self, process: trio.Process, name: str) -> None:
        self.process = process
        self.name = name
        self._buffer = b""
        self.lines: list[str] = []

    async def line(self, prefix: str, timeout: float = 60) -> str:
        """The next stdout line starting with ``prefix`` (earlier lines are kept in ``lines``)."""
        assert self.process.stdout is not None
        with trio.move_on_after(timeout):
            while True:
                while b"\n" in self._buffer:
                    raw, self._buffer = self._buffer.split(b"\n", 1)
                    text = raw.decode(errors="replace")
                    self.lines.append(text)
                    if text.startswith(prefix):
                        return text[len(prefix) :].strip()
                data = await self.process.stdout.receive_some(65536)
                if not data:
                    output = "\n".join([*self.lines, self._buffer.decode(errors="replace")])
                    raise EOFError(f"{self.name} exited; its output was:\n" + output)
                self._buffer += data
        output = "\n".join([*self.lines, self._buffer.decode(errors="replace")])
        raise TimeoutError(
            f"no line starting with {prefix!r} from {self.name} in {timeout} s; its output:\n{output}"
        )

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@asynccontextmanager
async def start_peer(argv: Sequence[str], epmd_port: int, name: str) -> AsyncIterator[Peer]:
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
    process = await trio.lowlevel.open_process(
        list(argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    peer = Peer(process, name)
    try:
        yield peer
    finally:
        peer.kill()
        with trio.move_on_after(10):
            await process.wait()


@asynccontextmanager
async def erl_peer(
    beam_dir: Path,
    epmd_port: int,
    py_node: str,
    scenario: str,
    *,
    cookie: str = COOKIE,
    module: str = "pj_peer",
) -> AsyncIterator[Peer]:
    """``erl`` running ``module:main([py_node, scenario])``; waits for its READY line."""
    erl = require("erl")
    name = unique("erl")
    argv = [erl, "-noshell", "-sname", name, "-setcookie", cookie, "-pa", str(beam_dir)]
    argv += ["-run", module, "main", py_node, scenario]
    async with start_peer(argv, epmd_port, name) as peer:
        await peer.line("READY")
        yield peer


# The Erlang side of a scenario peer (:func:`compile_scenario_peer`): ``main([Py, Scenario])`` pings the
# Python node, prints READY, runs ``scenario(Scenario, Py)`` (a list of ``check(Name, Fun)``
# results), prints one ``CHECK Name ok`` or ``CHECK Name BAD Term`` line each and DONE, then waits
# for ``stop``. ``check(Name, Fun)``: ``Fun`` returns true, or anything else (reported as bad).
_SCENARIO_HARNESS = r"""
-export([main/1]).

main([PyS, ScenarioS]) ->
    Py = list_to_atom(PyS),
    register(main, self()),
    pong = net_adm:ping(Py),
    io:format("READY~n"),
    Checks = try scenario(list_to_atom(ScenarioS), Py)
             catch C:R:S -> [{crashed, {bad, {C, R, S}}}]
             end,
    [report(Name, Outcome) || {Name, Outcome} <- Checks],
    io:format("DONE~n"),
    receive stop -> ok after 120000 -> ok end,
    halt().

report(Name, ok) -> io:format("CHECK ~w ok~n", [Name]);
report(Name, {bad, Got}) -> io:format("CHECK ~w BAD ~w~n", [Name, Got]).

check(Name, Fun) ->
    Outcome = try Fun() of
                  true -> ok;
                  Other -> {bad, Other}
              catch C:R:S -> {bad, {C, R, S}}
              end,
    {Name, Outcome}.
"""


def compile_scenario_peer(out: Path, module: str, scenarios: str, otp: Any) -> Path:
    """Compile the scenario peer ``module`` (the harness above, then ``scenarios``: its
    ``scenario/2`` clauses and helpers) into ``out`` with the real ``erlc`` of ``otp``."""
    path = out / f"{module}.erl"
    path.write_text(f"-module({module}).\n{_SCENARIO_HARNESS}\n{scenarios}")
    subprocess.run([require("erlc", otp), "-o", str(out), str(path)], check=True)
    return out


async def scenario_checks(peer: Peer) -> dict[str, str]:
    """A scenario peer's ``CHECK`` lines up to DONE: name -> ``ok`` or ``BAD term``."""
    await peer.line("DONE", timeout=120)
    return {line.split()[1]: line.split(maxsplit=2)[2] for line in peer.lines if line.startswith("CHECK ")}


ELIXIR_CHECK = r"""
check = fn name, f ->
  outcome =
    try do
      case f.() do
        true -> "ok"
        other -> "BAD #{inspect(other)}"
      end
    catch
      kind, reason -> "BAD #{inspect({kind, reason})}"
    end
  IO.puts("CHECK #{name} #{outcome}")
end
"""
"""Elixir's ``check.(name, fn)``: prints the ``CHECK`` line :func:`scenario_checks` reads."""

ELIXIR_SCENARIO = (
    r"""
[py_s] = System.argv()
py = String.to_atom(py_s)
true = Node.connect(py)
IO.puts("READY")
"""
    + ELIXIR_CHECK
)
"""The start of an Elixir scenario script run as ``elixir -e SCRIPT -- PyNode``: it connects to the
Python node ``py``, prints READY and defines ``check.(name, fn)``, which prints the ``CHECK`` line
:func:`scenario_checks` reads (the script prints DONE at its end)."""

ELIXIR_SCENARIO_END = r"""
IO.puts("DONE")

receive do
  :stop -> :ok
after
  120_000 -> :ok
end
"""
"""The end of an Elixir scenario script: DONE, then it waits (the test stops it)."""
