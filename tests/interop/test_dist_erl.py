"""A philipjose node and real OTP ``erl`` nodes on loopback (private EPMD): ping both ways, terms,
10,000 messages in order both ways, gen_server calls both ways, links and monitors both ways
including kill and noconnection, disconnect and reconnect, wrong cookies, junk connections."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import philipjose as pj
from philipjose import Atom, Pid
from tests.node.support import LocalNode
from tests.tools import Otp

from .dist_support import COOKIE, Peer, compile_peer, erl_peer, private_epmd, python_node

pytestmark = pytest.mark.interop

EXIT = Atom("EXIT")
DOWN = Atom("DOWN")


@asynccontextmanager
async def setup(beam_dir: Path, scenario: str) -> AsyncIterator[tuple[LocalNode, Peer]]:
    """A private EPMD, a Python node, and erl running ``scenario`` against it."""
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, scenario) as erl,
    ):
        yield py, erl


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    return compile_peer(tmp_path_factory.mktemp(f"beam-{otp}"), otp)


async def test_erl_pings_python(beam_dir: Path) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, "ping") as erl,
    ):
        assert await erl.line("RESULT ") == "pong"


async def test_python_pings_erl_and_calls_its_gen_server(beam_dir: Path) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, "idle") as erl,
    ):
        erl_node = f"{erl.name}"

        async def go() -> list[object]:
            out: list[object] = [await pj.node.ping(erl_node), [str(n) for n in pj.node.nodes()]]
            out.append(await pj.call(("pj_counter", erl_node), Atom("inc")))
            pj.cast(("pj_counter", erl_node), (Atom("add"), 10))
            out.append(await pj.call(("pj_counter", erl_node), Atom("get")))
            try:
                await pj.call(("nosuch", erl_node), Atom("get"), timeout=None)
            except pj.Exit as exc:
                out.append(exc.reason[0])
            return out

        assert await py.run(go) == [True, [erl_node], 1, 11, Atom("noproc")]


async def test_terms_of_every_kind_echo_unchanged(beam_dir: Path) -> None:
    async with setup(beam_dir, "echo_terms") as (_, erl):
        result = await erl.line("RESULT ")
        assert result.startswith("{ok,"), result


async def test_python_terms_echo_through_erl(beam_dir: Path) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, "idle") as erl,
    ):
        terms: list[object] = [
            0,
            -(1 << 100),
            3.25,
            b"x" * 300_000,
            Atom("ünï"),
            [],
            [1, [2, (3,)]],
            (),
            {Atom("a"): {b"b": [1.5]}},
            pj.Reference("x@y", 1, (1, 2, 3)),
        ]

        async def go() -> list[object]:
            me = pj.self()
            terms.append(me)
            back = []
            for term in terms:
                pj.send(("agent", erl.name), (me, Atom("echo"), term))
                back.append(await pj.receive(timeout=20))
            return back

        assert await py.run(go) == terms


async def test_ten_thousand_messages_in_order_both_ways(beam_dir: Path) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, "order") as erl,
    ):
        assert await erl.line("RESULT ") == "{ok,10000}"

        async def go() -> object:
            me = pj.self()
            pj.send(("agent", erl.name), (me, Atom("collect"), 10_000))
            for i in range(1, 10_001):
                pj.send(("agent", erl.name), (Atom("seq"), i))
            return await pj.receive(timeout=60)

        assert await py.run(go) == (Atom("collected"), Atom("ok"))


async def test_erl_calls_python_gen_server(beam_dir: Path) -> None:
    async with setup(beam_dir, "gen_server") as (_, erl):
        # noproc for the unknown name arrives at once: the call had an infinite timeout.
        assert await erl.line("RESULT ") == "{1,6,noproc}"


async def test_erl_links_and_monitors_python_processes(beam_dir: Path) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, "links") as erl,
    ):
        assert await erl.line("RESULT ") == "{bye,killed,noproc,quiet,none}"


async def test_python_links_and_monitors_erl_processes_then_noconnection(beam_dir: Path) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, "idle") as erl,
    ):
        agent = ("agent", erl.name)

        async def victim(me: Pid) -> Pid:
            pj.send(agent, (me, Atom("spawn_victim")))
            msg = await pj.receive(timeout=20)
            assert msg[0] == Atom("victim")
            return msg[1]  # type: ignore[no-any-return]

        async def go() -> list[object]:
            me = pj.self()
            pj.process_flag("trap_exit", True)
            v1 = await victim(me)
            pj.link(v1)
            pj.send(v1, (Atom("exit"), Atom("bye")))
            out: list[object] = [await pj.receive(timeout=20) == (EXIT, v1, Atom("bye"))]
            v2 = await victim(me)
            ref2 = pj.monitor(v2)
            pj.exit(v2, Atom("kill"))
            out.append(await pj.receive(timeout=20) == (DOWN, ref2, Atom("process"), v2, Atom("killed")))
            ref_missing = pj.monitor(("nosuch", erl.name))
            down = await pj.receive(timeout=20)
            out.append(down[1] == ref_missing and down[4] == Atom("noproc"))
            # Now links and monitors that the death of the erl OS process must break.
            v3 = await victim(me)
            pj.link(v3)
            ref_agent = pj.monitor(agent)
            pj.node.monitor_node(erl.name)
            assert await pj.node.ping(erl.name)
            erl.kill()
            got = {await pj.receive(timeout=30) for _ in range(3)}
            out.append(
                got
                == {
                    (EXIT, v3, Atom("noconnection")),
                    (DOWN, ref_agent, Atom("process"), (Atom("agent"), Atom(erl.name)), Atom("noconnection")),
                    (Atom("nodedown"), Atom(erl.name)),
                }
            )
            return out

        assert await py.run(go) == [True, True, True, True]


async def test_disconnect_and_reconnect(beam_dir: Path) -> None:
    async with (
        private_epmd() as epmd,
        python_node(epmd) as py,
        erl_peer(beam_dir, epmd, py.name, "idle") as erl,
    ):

        async def go() -> list[object]:
            out: list[object] = [await pj.node.ping(erl.name)]
            pj.node.monitor_node(erl.name)
            out.append(pj.node.disconnect(erl.name))
            out.append(await pj.receive(timeout=20))
            out.append(pj.node.nodes())
            out.append(await pj.node.ping(erl.name))
            out.append(await pj.call(("pj_counter", erl.name), Atom("inc")))
            return out

        assert await py.run(go) == [True, True, (Atom("nodedown"), Atom(erl.name)), [], True, 1]


async def test_wrong_cookie_both_ways(beam_dir: Path) -> None:
    async with private_epmd() as epmd, python_node(epmd) as py:
        async with erl_peer(beam_dir, epmd, py.name, "ping", cookie="not-" + COOKIE) as bad:
            assert await bad.line("RESULT ") == "pang"

            async def ping_bad() -> bool:
                return await pj.node.ping(bad.name)

            assert not await py.run(ping_bad)
        async with erl_peer(beam_dir, epmd, py.name, "ping") as good:
            assert await good.line("RESULT ") == "pong"


@pytest.mark.parametrize(
    "junk",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200),  # a TLS hello
        b"\x00\x20N" + bytes(5),  # a truncated name message, then silence
        b"\xff\xff" + b"N" * 70_000,  # an oversized handshake message
        struct.pack(">H", 3) + b"sok",  # a status where a name belongs
    ],
    ids=["tls-hello", "truncated-name", "oversized", "status-instead-of-name"],
)
async def test_junk_connections_then_a_successful_ping(beam_dir: Path, junk: bytes) -> None:
    async with private_epmd() as epmd, python_node(epmd, handshake_timeout=2) as py:
        assert py.dist is not None
        streams = []
        for _ in range(3):
            stream = await trio.open_tcp_stream("127.0.0.1", py.dist.port)
            with contextlib.suppress(trio.BrokenResourceError):  # the node may close on the first bytes
                await stream.send_all(junk)
            streams.append(stream)
        async with erl_peer(beam_dir, epmd, py.name, "ping") as erl:
            assert await erl.line("RESULT ") == "pong"
        for stream in streams:
            with trio.fail_after(20), contextlib.suppress(trio.BrokenResourceError):
                while await stream.receive_some(4096):
                    pass  # the node closed it: EOF, or a reset since it did not read all we sent
            await stream.aclose()
