"""Real OTP nodes (`erl -sname`) using our EPMD server through ERL_EPMD_PORT, as they use OTP's."""

from __future__ import annotations

import pytest
import trio

from philipjose import epmd
from philipjose.epmd import EpmdServer
from philipjose.epmd.protocol import (
    NEED_DATA,
    Alive2Reply,
    Alive2Request,
    ServerConnection,
)
from tests.tools import require

from .conftest import WAIT_FOREVER, Children, free_port, start_erl, unique_name

pytestmark = pytest.mark.usefixtures("otp")  # each test on each Erlang/OTP installation

_LIMIT = 90  # generous bound for a few erl start-ups on a busy 2-core machine


async def _epmd_names_via_otp_binary(port: int) -> str:
    result = await trio.run_process(
        [require("epmd"), "-port", str(port), "-names"], capture_stdout=True, capture_stderr=True
    )
    return result.stdout.decode()


def _ping_code(target: str) -> str:
    return (
        '[_, H] = string:split(atom_to_list(node()), "@"), '
        f'R = net_adm:ping(list_to_atom("{target}@" ++ H)), '
        'io:format("ping ~w~n", [R]), halt().'
    )


async def test_erl_registers_and_is_listed_everywhere(our_epmd: EpmdServer, children: Children) -> None:
    a, b = unique_name("a"), unique_name("b")
    with trio.fail_after(_LIMIT):
        # erl as usual: it also launches `epmd -daemon`, which finds the port taken and exits
        node_a = await start_erl(children, a, our_epmd.port, WAIT_FOREVER, start_epmd=True)
        _, node, creation = (await node_a.output.expect("ready ")).split()
        assert node.startswith(f"{a}@")
        registrations = {e.info.name: e for e in our_epmd.registry.registrations()}
        entry = registrations[a]
        assert entry.creation == int(creation)
        assert entry.info.node_type == 77 and entry.info.highest_version == 6

        # the real epmd binary, as a client, reads our NAMES reply
        listing = await _epmd_names_via_otp_binary(our_epmd.port)
        assert f"epmd: up and running on port {our_epmd.port} with data:" in listing
        assert f"name {a} at port {entry.info.port}" in listing

        # net_adm:names() from another real node reads it too
        code = (
            "{ok, L} = net_adm:names(), "
            'io:format("names ~s~n", [lists:join(" ", [N ++ ":" ++ integer_to_list(P) || {N, P} <- L])]), '
            "halt()."
        )
        node_b = await start_erl(children, b, our_epmd.port, code)
        listed = (await node_b.output.expect("names ")).split()[1:]
        assert f"{a}:{entry.info.port}" in listed
        assert any(item.startswith(f"{b}:") for item in listed)  # b lists itself

        # and our client agrees
        info = await epmd.port_please(a, epmd_port=our_epmd.port)
        assert info is not None and info.port == entry.info.port


async def test_two_erl_nodes_ping_each_other_through_our_epmd(
    our_epmd: EpmdServer, children: Children
) -> None:
    a, b = unique_name("a"), unique_name("b")
    with trio.fail_after(_LIMIT):
        node_a = await start_erl(children, a, our_epmd.port, WAIT_FOREVER)
        await node_a.output.expect("ready ")
        node_b = await start_erl(children, b, our_epmd.port, _ping_code(a))
        assert "ping pong" in await node_b.output.expect("ping ")
        assert await node_b.process.wait() == 0


async def test_duplicate_erl_name_is_refused(our_epmd: EpmdServer, children: Children) -> None:
    a = unique_name("dup")
    with trio.fail_after(_LIMIT):
        first = await start_erl(children, a, our_epmd.port, WAIT_FOREVER)
        await first.output.expect("ready ")
        second = await start_erl(children, a, our_epmd.port, WAIT_FOREVER)
        status = await second.process.wait()
        assert status != 0
        assert "ready " not in second.output.text
        # the first keeps its registration
        assert [name for name, _ in our_epmd.registry.names()].count(a) == 1
        assert first.process.returncode is None


async def test_sigkilled_erl_disappears_and_comes_back_with_new_creation(
    our_epmd: EpmdServer, children: Children
) -> None:
    a = unique_name("kill")
    with trio.fail_after(_LIMIT):
        node = await start_erl(children, a, our_epmd.port, WAIT_FOREVER)
        first_creation = int((await node.output.expect("ready ")).split()[2])
        assert a in await _epmd_names_via_otp_binary(our_epmd.port)
        node.process.kill()  # SIGKILL: the node cannot say goodbye; its socket just closes
        await node.process.wait()
        await our_epmd.wait_until(lambda registry: registry.lookup(a) is None)
        assert a not in await _epmd_names_via_otp_binary(our_epmd.port)
        assert a not in dict(await epmd.names(epmd_port=our_epmd.port))

        again = await start_erl(children, a, our_epmd.port, WAIT_FOREVER)
        second_creation = int((await again.output.expect("ready ")).split()[2])
        assert second_creation != first_creation


async def test_serving_through_junk_and_200_idle_connections(
    our_epmd: EpmdServer, children: Children
) -> None:
    port = our_epmd.port
    idle: list[trio.SocketStream] = []
    try:
        with trio.fail_after(_LIMIT):
            for _ in range(200):
                idle.append(await trio.open_tcp_stream("127.0.0.1", port))
            # half-open: a request's first bytes, then nothing
            for partial in (b"\x00", b"\x00\x0ex\x9c", b"\x00\x05n"):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.send_all(partial)
                idle.append(stream)
            # junk, closed right away or left open
            junk = [
                b"\xff\xff" + b"A" * 100,
                b"\x00\x00",
                b"\x00\x01\x01",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"\x00\x03z\xff\xfe",
                bytes(range(256)) * 4,
            ]
            for data in junk:
                async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                    await stream.send_all(data)
            # a registration followed by junk on the same connection: dropped, as by epmd
            name = unique_name("junky")
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            idle.append(stream)
            await stream.send_all(Alive2Request(name, 40100).encode())
            assert (await stream.receive_some(6))[:2] == b"\x76\x00"
            await stream.send_all(b"more")
            await our_epmd.wait_until(lambda registry: registry.lookup(name) is None)

            # still serving: a real node registers; the real epmd binary and our client list it
            a = unique_name("a")
            node = await start_erl(children, a, port, WAIT_FOREVER)
            await node.output.expect("ready ")
            assert our_epmd.connection_count >= 200  # the idle ones are still held open
            assert f"name {a} at port" in await _epmd_names_via_otp_binary(port)
            async with await epmd.register(unique_name("py"), 40101, epmd_port=port) as reg:
                assert (reg.name, 40101) in await epmd.names(epmd_port=port)
    finally:
        for stream in idle:
            await trio.aclose_forcefully(stream)


async def test_replay_erl_alive2_bytes_and_answer_it(nursery: trio.Nursery, children: Children) -> None:
    """Capture the ALIVE2_REQ a real erl sends, parse it byte by byte, answer with our bytes."""
    captured: list[bytes] = []
    answered = trio.Event()
    held: list[trio.SocketStream] = []

    async def fake_epmd(stream: trio.SocketStream) -> None:
        conn = ServerConnection()
        raw = b""
        while True:
            data = await stream.receive_some(4096)
            if not data:
                await stream.aclose()
                return
            raw += data
            if len(raw) >= 2 and len(raw) >= 2 + int.from_bytes(raw[:2], "big"):
                break
        if raw[2] != 120:  # not ALIVE2 (erl may ask NAMES too): answer with an empty list
            await stream.send_all(b"\x00\x00\x00\x00")
            await stream.aclose()
            return
        captured.append(raw)
        for i in range(len(raw)):
            assert conn.next_event() is NEED_DATA
            conn.receive_data(raw[i : i + 1])
        request = conn.next_event()
        assert isinstance(request, Alive2Request)
        await stream.send_all(conn.send(Alive2Reply(0, 0x1234ABCD)))
        held.append(stream)  # keep the registration connection open, as EPMD must
        answered.set()

    listeners = await nursery.start(trio.serve_tcp, fake_epmd, free_port())
    port = listeners[0].socket.getsockname()[1]
    a = unique_name("cap")
    with trio.fail_after(_LIMIT):
        node = await start_erl(children, a, port, WAIT_FOREVER)
        line = await node.output.expect("ready ")
        await answered.wait()
    assert int(line.split()[2]) == 0x1234ABCD  # erl took our 32-bit creation
    [raw] = captured
    request = ServerConnection()
    request.receive_data(raw)
    event = request.next_event()
    assert isinstance(event, Alive2Request)
    assert event.name == a and event.node_type == 77 and event.protocol == 0
    assert (event.highest_version, event.lowest_version) == (6, 5)
    assert 0 < event.port < 65536
    assert raw == event.encode()  # our encoder produces exactly erl's bytes
    for stream in held:
        await trio.aclose_forcefully(stream)
