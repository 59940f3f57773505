"""philipjose TLS nodes and real OTP 25 ``erl -proto_dist inet_tls`` nodes (verify_peer and
fail_if_no_peer_cert on both sides, a throwaway CA): ping, messages, gen_server calls and rpc both
ways; plain TCP and wrongly certified peers refused both ways, the node serving on afterwards; the
example node with ``--tls-*``; an Elixir 1.14 TLS node."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

import philipjose as pj
from philipjose import Atom, rpc
from tests.interop.dist_support import COOKIE, ROOT, private_epmd, python_node, start_peer
from tests.node.support import LocalNode, unique
from tests.tools import Otp, require

from .certs import PKI, NodeFiles, write_optfile
from .support import compile_peer, erl_node, node_tls

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("otp")]


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    return compile_peer(tmp_path_factory.mktemp(f"beam-{otp}"), otp)


async def test_erl_pings_messages_calls_and_rpcs_python(beam_dir: Path, pki: PKI) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd, tls=node_tls(pki.good)) as py,
        erl_node(beam_dir, epmd, py.name, "calls", files=pki.good) as erl,
    ):
        result = await erl.line("RESULT ")
        over_tls = "<<111,118,101,114,32,116,108,115>>"
        assert result == "{pong,{hello," + over_tls + ",[1,2.5]},1,6,3,{x,[121]},[3,2,1],tls}"


async def test_python_pings_messages_calls_and_rpcs_erl(beam_dir: Path, pki: PKI) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd, tls=node_tls(pki.good)) as py,
        erl_node(beam_dir, epmd, py.name, "idle", files=pki.good) as erl,
    ):

        async def go() -> list[object]:
            out: list[object] = [await pj.node.ping(erl.name)]
            pj.send(("agent", erl.name), (pj.self(), Atom("echo"), (Atom("hi"), b"x" * 100_000)))
            out.append(await pj.receive(timeout=20))
            out.append(await pj.call(("pj_counter", erl.name), Atom("inc")))
            out.append(await rpc.call(erl.name, "lists", "reverse", [[1, 2, 3]], timeout=20))
            out.append(await rpc.call(erl.name, "erlang", "node", [], timeout=20))
            return out

        assert await py.run(go) == [True, (Atom("hi"), b"x" * 100_000), 1, [3, 2, 1], Atom(erl.name)]


async def test_ten_thousand_messages_in_order_over_tls(beam_dir: Path, pki: PKI) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd, tls=node_tls(pki.good)) as py,
        erl_node(beam_dir, epmd, py.name, "order", files=pki.good) as erl,
    ):
        assert await erl.line("RESULT ") == "{ok,10000}"


async def _py_ping(py: LocalNode, node: str) -> bool:
    async def go() -> bool:
        return await pj.node.ping(node, timeout=10)

    result: bool = await py.run(go)
    return result


async def test_plain_erl_and_tls_python_refuse_each_other(
    beam_dir: Path, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    async with private_epmd() as epmd, python_node(epmd, tls=node_tls(pki.good)) as py:
        with caplog.at_level(logging.WARNING, "philipjose.node"):
            async with erl_node(beam_dir, epmd, py.name, "ping", files=None) as plain:
                assert await plain.line("RESULT ") == "pang"
                assert "TLS handshake failed" in caplog.text
                assert not await _py_ping(py, plain.name)
        async with erl_node(beam_dir, epmd, py.name, "ping", files=pki.good) as erl:
            assert await erl.line("RESULT ") == "pong"  # the node still serves
            assert await _py_ping(py, erl.name)


async def test_tls_erl_and_plain_python_refuse_each_other(
    beam_dir: Path, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py:
        with caplog.at_level(logging.WARNING, "philipjose.node"):
            async with erl_node(beam_dir, epmd, py.name, "ping", files=pki.good) as erl:
                assert await erl.line("RESULT ") == "pang"
                assert "this node does not use TLS" in caplog.text
                assert not await _py_ping(py, erl.name)
        async with erl_node(beam_dir, epmd, py.name, "ping", files=None) as plain:
            assert await plain.line("RESULT ") == "pong"  # the node still serves
            assert await _py_ping(py, plain.name)


async def test_erl_with_a_certificate_from_another_ca_is_refused(
    beam_dir: Path, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    rogue = NodeFiles(pki.rogue.certfile, pki.rogue.keyfile, pki.good.cafile)  # trusts our CA
    async with private_epmd() as epmd, python_node(epmd, tls=node_tls(pki.good)) as py:
        with caplog.at_level(logging.WARNING, "philipjose.node"):
            async with erl_node(beam_dir, epmd, py.name, "ping", files=rogue) as erl:
                assert await erl.line("RESULT ") == "pang"
                assert "certificate verify failed" in caplog.text  # we refused its client certificate
                caplog.clear()
                assert not await _py_ping(py, erl.name)
                assert "certificate verify failed" in caplog.text  # we refused its server certificate
        async with erl_node(beam_dir, epmd, py.name, "ping", files=pki.good) as erl:
            assert await erl.line("RESULT ") == "pong"


async def test_erl_refuses_python_with_a_certificate_from_another_ca(beam_dir: Path, pki: PKI) -> None:
    rogue = NodeFiles(pki.rogue.certfile, pki.rogue.keyfile, pki.good.cafile)  # trusts erl's CA
    async with (
        private_epmd() as epmd,
        python_node(epmd, tls=node_tls(rogue)) as py,
        erl_node(beam_dir, epmd, py.name, "ping", files=pki.good) as erl,
    ):
        assert await erl.line("RESULT ") == "pang"  # erl refuses our server certificate
        assert not await _py_ping(py, erl.name)  # and our client certificate


async def test_example_node_over_tls(beam_dir: Path, pki: PKI) -> None:
    """``examples/interop_node.py NAME COOKIE --tls-certfile F --tls-keyfile F --tls-cafile F``."""
    name = unique("example")
    files = pki.good
    argv = [sys.executable, str(ROOT / "examples" / "interop_node.py"), name, COOKIE]
    argv += ["--tls-certfile", str(files.certfile), "--tls-keyfile", str(files.keyfile)]
    argv += ["--tls-cafile", str(files.cafile)]
    async with private_epmd() as epmd, start_peer(argv, epmd, name) as example:
        assert await example.line("ready ") == name
        async with erl_node(beam_dir, epmd, name, "calls", files=files) as erl:
            result = await erl.line("RESULT ")
            assert result.startswith("{pong,{hello,") and result.endswith(",1,6,3,{x,[121]},[3,2,1],tls}")
        async with erl_node(beam_dir, epmd, name, "ping", files=None) as plain:
            assert await plain.line("RESULT ") == "pang"


ELIXIR = r"""
[py] = System.argv() |> Enum.map(&String.to_atom/1)
pong = Node.ping(py)
1 = GenServer.call({:counter, py}, :inc)
3 = :rpc.call(py, :pyexample, :add, [1, 2])
"ok" = :erpc.call(py, :pyexample, :echo, ["ok"])
IO.puts("RESULT #{pong} #{inspect(:net_kernel.node_info(py) |> elem(1) |> Keyword.get(:address) |> elem(3))}")
"""


async def test_elixir_tls_node(tmp_path: Path, pki: PKI) -> None:
    elixir = require("elixir")
    optfile = write_optfile(tmp_path / "dist.conf", pki.good)
    name = unique("ex")
    erl_flags = f"-proto_dist inet_tls -ssl_dist_optfile {optfile}"
    async with private_epmd() as epmd, python_node(epmd, tls=node_tls(pki.good)) as py:
        argv = [elixir, "--erl", erl_flags, "--sname", name, "--cookie", COOKIE, "-e", ELIXIR, "--", py.name]
        async with start_peer(argv, epmd, name) as ex:
            assert await ex.line("RESULT ") == "pong :tls"
