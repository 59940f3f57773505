"""Group leaders and the io protocol between a philipjose node and real OTP ``erl`` and Elixir nodes.

- Erlang code that Python runs on erl (``rpc.call``, ``pj.node.spawn``) prints on the Python node;
- erl's ``io`` module against the Python node's io server: ``io:format`` (with OTP's MFA form),
  ``put_chars`` in both encodings, ``getopts``/``setopts``, ``get_line`` -> ``eof``, unknown
  requests, bad formats (``badarg`` in the caller, as OTP);
- the other way: ``print()`` and ``pj.io.format`` in an exposed function called by ``erpc:call``
  show up where the caller's group leader prints (erl's stdout), as OTP's rpc server does;
  ``erpc:call(P, pyexample, rpc_back, [node(), io, format, ["hi~n"]])`` returns ``ok`` and, the
  caller's group leader travelling with the call both ways, prints on erl's stdout;
- ``group_leader(GL, PyPid)`` from erl (a GROUP_LEADER signal) is honoured;
- Elixir's ``IO.puts`` called with ``:erpc`` from Python prints on the Python node.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom, rpc
from philipjose.actors import current_runtime
from tests.node.support import LocalNode, unique
from tests.tools import Otp, require

from .dist_support import (
    COOKIE,
    Peer,
    compile_scenario_peer,
    erl_peer,
    private_epmd,
    python_node,
    scenario_checks,
    start_peer,
)

pytestmark = pytest.mark.interop

PEER = r"""
%% An io server that answers ok and tells main what it got.
capture(Main) ->
    receive
        {io_request, From, ReplyAs, Req} ->
            Main ! {captured, Req},
            From ! {io_reply, ReplyAs, ok},
            capture(Main)
    end.

scenario(io, Py) ->
    GL = erpc:call(Py, pytest_io, default_gl, [], 10000),
    [check(default_gl_is_a_python_pid, fun() -> is_pid(GL) andalso node(GL) =:= Py end),
     check(format, fun() -> ok =:= io:format(GL, "format ~p ~s ~w~n", [{a, 1}, "x", [1.5]]) end),
     check(format_pretty, fun() -> ok =:= io:format(GL, "pretty ~p~n", [lists:seq(1, 30)]) end),
     check(put_chars_unicode, fun() -> ok =:= io:put_chars(GL, [<<"put_chars "/utf8>>, "é€", $\n]) end),
     check(put_chars_latin1, fun() ->
         ok =:= io:request(GL, {put_chars, latin1, <<"latin1 ", 233, "\n">>}) end),
     check(write, fun() -> ok =:= io:write(GL, {x, "y"}) end),
     check(nl, fun() -> ok =:= io:nl(GL) end),
     check(getopts, fun() -> [{binary, false}, {encoding, unicode}] =:= io:getopts(GL) end),
     check(get_line_eof, fun() -> eof =:= io:get_line(GL, "prompt> ") end),
     check(get_chars_eof, fun() -> eof =:= io:get_chars(GL, "", 3) end),
     check(read_eof, fun() -> eof =:= io:read(GL, "") end),
     check(setopts_unknown, fun() -> {error, enotsup} =:= io:setopts(GL, [{foo, 1}]) end),
     check(columns, fun() -> {error, enotsup} =:= io:columns(GL) end),
     check(unknown_request, fun() -> {error, request} =:= io:request(GL, bogus) end),
     check(requests, fun() ->
         ok =:= io:requests(GL, [{put_chars, unicode, "req1 "}, {put_chars, unicode, "req2\n"}]) end),
     check(bad_format_is_badarg, fun() ->
         try io:format(GL, [$~, $d], [1]) of V -> {returned, V}
         catch error:badarg -> true
         end end),
     check(unsupported_mfa, fun() ->
         {error, reverse} =:= io:request(GL, {put_chars, unicode, lists, reverse, ["abc"]}) end),
     check(rpc_back_io_format, fun() ->
         ok =:= erpc:call(Py, pyexample, rpc_back, [node(), io, format, ["hi from rpc_back~n"]], 10000) end),
     check(print_in_exposed_function, fun() ->
         ok =:= erpc:call(Py, pytest_io, say, [<<"printed by python">>], 10000) end),
     check(print_in_rpc_call, fun() ->
         ok =:= rpc:call(Py, pytest_io, say, [<<"printed via rex">>], 10000) end),
     check(pj_io_format_in_exposed_function, fun() ->
         ok =:= erpc:call(Py, pytest_io, fmt, [<<"pj.io.format ~p~n">>, [{b, 2}]], 10000) end),
     check(group_leader_signal, fun() ->
         Me = self(),
         Capture = spawn(fun() -> capture(Me) end),
         PyPid = erpc:call(Py, pytest_io, waiter, [], 10000),
         true = group_leader(Capture, PyPid),
         PyPid ! {go, self()},
         receive {captured, Req} ->
             receive {done, PyPid} -> ok after 10000 -> no_done end,
             {put_chars, unicode, <<"to the new group leader\n">>} =:= Req
         after 10000 -> nothing_captured end end)];
scenario(idle, _Py) -> [].
"""


class Collector:
    """An ``io_output`` callable that keeps the text and wakes waiters."""

    def __init__(self) -> None:
        self.text = ""
        self._changed = trio.Event()

    def __call__(self, text: str) -> None:
        self.text += text
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, needle: str, timeout: float = 30) -> None:
        with trio.fail_after(timeout):
            while needle not in self.text:
                await self._changed.wait()


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    return compile_scenario_peer(tmp_path_factory.mktemp(f"io_beam-{otp}"), "pj_io_peer", PEER, otp)


@pytest.fixture
def exposed() -> Any:
    async def say(text: bytes) -> Atom:
        print(text.decode())
        return Atom("ok")

    async def fmt(fmt: bytes, args: list[Any]) -> Atom:
        await pj.io.format(fmt.decode(), args)
        return Atom("ok")

    def default_gl() -> Any:
        return current_runtime().group_leader_of(None)

    async def waiter() -> Any:
        async def body() -> None:
            _, sender = await pj.receive(match=(Atom("go"), pj.ANY))
            await pj.io.put_chars("to the new group leader\n")
            pj.send(sender, (Atom("done"), pj.self()))

        return pj.spawn(body)

    rpc.expose("pytest_io", {"say": say, "fmt": fmt, "default_gl": default_gl, "waiter": waiter})
    yield
    rpc.unexpose("pytest_io")


def erl_node(beam_dir: Path, epmd: int, py: LocalNode, scenario: str) -> AbstractAsyncContextManager[Peer]:
    return erl_peer(beam_dir, epmd, py.name, scenario, module="pj_io_peer")


async def test_erlang_io_against_python(beam_dir: Path, exposed: Any) -> None:
    out = Collector()
    async with (
        private_epmd() as epmd,
        python_node(epmd, io_output=out) as py,
        erl_node(beam_dir, epmd, py, "io") as erl,
    ):
        results = await scenario_checks(erl)
        await out.wait_for("req1 req2\n")
    assert len(results) == 22, erl.lines
    assert {name: outcome for name, outcome in results.items() if outcome != "ok"} == {}
    text = out.text
    assert "format {a,1} x [1.5]\n" in text
    # OTP's layout (the column after "pretty " counts), as erl's io_lib:format gives it
    pretty = (
        "pretty [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,\n"
        "        27,28,29,30]\n"
    )
    assert pretty in text
    assert "put_chars é€\n" in text
    assert "latin1 é\n" in text
    assert "{x,[121]}\n" in text  # io:write is ~w
    assert "prompt> " not in text  # no input: reads answer eof without a prompt
    # the caller's group leader is erl's: what the Python functions print shows on erl's stdout
    for line in ("hi from rpc_back", "printed by python", "printed via rex", "pj.io.format {b,2}"):
        assert line in erl.lines, erl.lines
        assert line not in text
    assert "to the new group leader" not in text


async def test_io_of_erlang_code_python_spawned_prints_on_python(beam_dir: Path) -> None:
    out = Collector()
    async with (
        private_epmd() as epmd,
        python_node(epmd, io_output=out) as py,
        erl_node(beam_dir, epmd, py, "idle") as erl,
    ):
        node = erl.name

        async def go() -> list[Any]:
            results = [await rpc.call(node, "io", "format", [list(b"rpc ~p~n"), [[1, 2]]], timeout=10)]
            pid, ref = await pj.node.spawn(
                node, "io", "format", [list(b"spawned ~s~n"), [list(b"x")]], monitor=True
            )
            results.append((await pj.receive(match=(Atom("DOWN"), ref, Atom("process"), pid, pj.ANY)))[4])
            # the group leader travels: a Python process with another group leader
            mine = pj.io.start_server(output=out2)
            pj.group_leader(mine, pj.self())
            results.append(await rpc.call(node, "io", "put_chars", [b"to my own group leader\n"], timeout=10))
            results.append(await rpc.call(node, "io", "getopts", [], timeout=10))
            results.append(await rpc.call(node, "io", "get_line", [list(b"p> ")], timeout=10))
            return results

        out2 = Collector()
        results = await py.run(go)
        await out.wait_for("spawned x\n")
        await out2.wait_for("to my own group leader\n")
    assert results == [
        Atom("ok"),
        Atom("normal"),
        Atom("ok"),
        [(Atom("binary"), False), (Atom("encoding"), Atom("unicode"))],
        Atom("eof"),
    ]
    assert "rpc [1,2]\n" in out.text
    assert "to my own group leader" not in out.text


async def test_elixir_io_puts_from_python() -> None:
    elixir = require("elixir")
    out = Collector()
    script = 'IO.puts("READY")\nreceive do\n  :stop -> :ok\nafter\n  120_000 -> :ok\nend\n'
    async with private_epmd() as epmd, python_node(epmd, io_output=out) as py:
        name = unique("ex")
        argv = [elixir, "--sname", name, "--cookie", COOKIE, "-e", script]
        async with start_peer(argv, epmd, name) as ex:
            await ex.line("READY", timeout=120)

            async def go() -> list[Any]:
                return [
                    await rpc.call(name, "Elixir.IO", "puts", ["héllo from Elixir"], timeout=10),
                    await rpc.call(name, "Elixir.IO", "inspect", [(Atom("a"), [1])], timeout=10),
                    await rpc.call(name, "Elixir.IO", "gets", ["prompt"], timeout=10),
                ]

            results = await py.run(go)
            await out.wait_for("{:a, [1]}\n")
    assert results == [Atom("ok"), (Atom("a"), [1]), Atom("eof")]
    assert "héllo from Elixir\n" in out.text
