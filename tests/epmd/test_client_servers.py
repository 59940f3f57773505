"""Our client against OTP's real epmd binary and against our server: the same tests, both servers."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from functools import partial

import pytest
import trio

from philipjose import epmd
from philipjose.epmd import (
    EpmdError,
    EpmdProtocolError,
    EpmdRefusedError,
    EpmdServer,
    EpmdTimeoutError,
    EpmdUnreachableError,
    NodeInfo,
    serve,
)
from philipjose.epmd.protocol import NEED_DATA, Alive2Request, ClientConnection, ConnectionClosed

from .conftest import Children, OtpEpmd, free_port, start_otp_epmd, unique_name


@dataclass(eq=False)
class OurEpmd:
    server: EpmdServer

    @property
    def port(self) -> int:
        return self.server.port

    mark = 0

    async def wait_unregistered(self, name: str, *, start: int = 0) -> None:
        await self.server.wait_until(lambda registry: registry.lookup(name) is None)


Server = OurEpmd | OtpEpmd


async def _make_server(kind: str, children: Children, nursery: trio.Nursery, *, relaxed: bool) -> Server:
    if kind == "otp":
        return await start_otp_epmd(children, *(["-relaxed_command_check"] if relaxed else []))
    server: EpmdServer = await nursery.start(partial(serve, 0, "127.0.0.1", relaxed_command_check=relaxed))
    return OurEpmd(server)


@pytest.fixture(params=["philipjose", "otp"])
async def any_epmd(request: pytest.FixtureRequest, children: Children, nursery: trio.Nursery) -> Server:
    return await _make_server(request.param, children, nursery, relaxed=False)


@pytest.fixture(params=["philipjose", "otp"])
async def relaxed_epmd(request: pytest.FixtureRequest, children: Children, nursery: trio.Nursery) -> Server:
    return await _make_server(request.param, children, nursery, relaxed=True)


async def test_register_port_please_names_and_unregister(any_epmd: Server) -> None:
    port = any_epmd.port
    name = unique_name()
    with trio.fail_after(30):
        reg = await epmd.register(name, 40001, epmd_port=port)
        assert reg.creation != 0 and reg.extended
        info = await epmd.port_please(name, epmd_port=port)
        assert info == NodeInfo(name, 40001, 77, 0, 6, 5, b"")
        listed = await epmd.names(epmd_port=port)
        assert (name, 40001) in listed
        assert listed.epmd_port == port
        mark = any_epmd.mark
        await reg.aclose()
        await any_epmd.wait_unregistered(name, start=mark)
        assert await epmd.port_please(name, epmd_port=port) is None
        assert (name, 40001) not in await epmd.names(epmd_port=port)


async def test_duplicate_live_name_is_refused(any_epmd: Server) -> None:
    name = unique_name()
    with trio.fail_after(30):
        async with await epmd.register(name, 40002, epmd_port=any_epmd.port):
            with pytest.raises(EpmdRefusedError):
                await epmd.register(name, 40003, epmd_port=any_epmd.port)
            info = await epmd.port_please(name, epmd_port=any_epmd.port)
            assert info is not None and info.port == 40002


async def test_creation_changes_on_reregistration(any_epmd: Server) -> None:
    name = unique_name()
    creations = []
    with trio.fail_after(30):
        for _ in range(3):
            reg = await epmd.register(name, 40004, epmd_port=any_epmd.port)
            creations.append(reg.creation)
            mark = any_epmd.mark
            await reg.aclose()
            await any_epmd.wait_unregistered(name, start=mark)
    assert all(0 < c < 2**32 for c in creations)
    assert creations[0] != creations[1] != creations[2]


async def test_version5_registration_gets_16_bit_reply(any_epmd: Server) -> None:
    with trio.fail_after(30):
        async with await epmd.register(
            unique_name(), 40005, epmd_port=any_epmd.port, highest_version=5, lowest_version=5
        ) as reg:
            assert not reg.extended
            assert 1 <= reg.creation <= 3


async def test_hidden_node_type_and_extra_round_trip(any_epmd: Server) -> None:
    name = unique_name("hid")
    with trio.fail_after(30):
        async with await epmd.register(name, 40006, epmd_port=any_epmd.port, node_type=72, extra=b"\x01x"):
            info = await epmd.port_please(name, epmd_port=any_epmd.port)
    assert info == NodeInfo(name, 40006, 72, 0, 6, 5, b"\x01x")


async def test_dump_lists_live_names(any_epmd: Server) -> None:
    name = unique_name()
    with trio.fail_after(30):
        async with await epmd.register(name, 40007, epmd_port=any_epmd.port):
            reply = await epmd.dump(epmd_port=any_epmd.port)
    assert reply.epmd_port == any_epmd.port
    assert any(f"<{name}> at port 40007" in line for line in reply.lines)


async def test_kill_refused_while_registered_then_accepted(any_epmd: Server) -> None:
    with trio.fail_after(30):
        reg = await epmd.register(unique_name(), 40008, epmd_port=any_epmd.port)
        assert await epmd.kill(epmd_port=any_epmd.port) is False
        mark = any_epmd.mark
        await reg.aclose()
        await any_epmd.wait_unregistered(reg.name, start=mark)
        assert await epmd.kill(epmd_port=any_epmd.port) is True
        if isinstance(any_epmd, OtpEpmd):
            await any_epmd.child.process.wait()
        else:
            await any_epmd.server.wait_stopped()
        with pytest.raises(EpmdUnreachableError):
            await epmd.names(epmd_port=any_epmd.port)


async def test_stop_unregisters_with_relaxed_command_check(relaxed_epmd: Server) -> None:
    name = unique_name()
    with trio.fail_after(30):
        reg = await epmd.register(name, 40009, epmd_port=relaxed_epmd.port)
        assert await epmd.stop(name, epmd_port=relaxed_epmd.port) is True
        await reg.wait_closed()  # the server closed the registration connection
        assert await epmd.port_please(name, epmd_port=relaxed_epmd.port) is None
        await reg.aclose()
        # with relaxed checking KILL works even with nodes registered
        async with await epmd.register(unique_name(), 40010, epmd_port=relaxed_epmd.port):
            assert await epmd.kill(epmd_port=relaxed_epmd.port) is True


async def test_stop_refused_without_relaxed_command_check(any_epmd: Server) -> None:
    name = unique_name()
    with trio.fail_after(30):
        async with await epmd.register(name, 40011, epmd_port=any_epmd.port):
            with pytest.raises(EpmdRefusedError):
                await epmd.stop(name, epmd_port=any_epmd.port)
            assert await epmd.port_please(name, epmd_port=any_epmd.port) is not None


def _non_loopback_address() -> str | None:
    for target in ("192.0.2.1", "10.255.255.1", "198.51.100.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
            except OSError:
                continue
            address = str(probe.getsockname()[0])
            if not address.startswith("127."):
                return address
    return None


async def test_registration_from_non_local_address_is_refused(any_epmd: Server) -> None:
    """A peer whose address is neither loopback nor the server socket's own may not register."""
    source = _non_loopback_address()
    if source is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    name = unique_name("remote")
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream("127.0.0.1", any_epmd.port, local_address=source)
        async with stream:
            conn = ClientConnection()
            await stream.send_all(conn.send(Alive2Request(name, 40012)))
            event = conn.next_event()
            while event is NEED_DATA:
                conn.receive_data(await stream.receive_some(4096))
                event = conn.next_event()
        assert event == ConnectionClosed()  # closed without a reply, as epmd does
        assert await epmd.port_please(name, epmd_port=any_epmd.port) is None


async def test_unreachable_epmd() -> None:
    with pytest.raises(EpmdUnreachableError) as info:
        await epmd.names(epmd_port=free_port())
    assert isinstance(info.value, ConnectionError | OSError)
    with pytest.raises(EpmdUnreachableError):
        await epmd.register("a", 1, epmd_port=free_port())


async def test_timeout_when_nothing_answers(nursery: trio.Nursery) -> None:
    held: list[trio.SocketStream] = []

    async def hold(stream: trio.SocketStream) -> None:
        held.append(stream)
        await trio.sleep_forever()

    listeners = await nursery.start(trio.serve_tcp, hold, 0)
    port = listeners[0].socket.getsockname()[1]
    with pytest.raises(EpmdTimeoutError) as info:
        await epmd.names(epmd_port=port, timeout=0.2)
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, EpmdUnreachableError)
    with pytest.raises(EpmdTimeoutError):
        await epmd.register("a", 1, epmd_port=port, timeout=0.2)


async def test_protocol_error_when_peer_is_not_epmd(nursery: trio.Nursery) -> None:
    async def junk(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some(65536)  # read the request (closing unread data would reset)
            await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    listeners = await nursery.start(trio.serve_tcp, junk, 0)
    port = listeners[0].socket.getsockname()[1]
    with pytest.raises(EpmdProtocolError) as info:
        await epmd.register("a", 1, epmd_port=port)
    assert isinstance(info.value, ValueError) and isinstance(info.value, EpmdError)
    with pytest.raises(EpmdProtocolError):
        await epmd.names(epmd_port=port)


async def test_default_port_comes_from_erl_epmd_port(
    any_epmd: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", str(any_epmd.port))
    assert epmd.default_epmd_port() == any_epmd.port
    assert (await epmd.names()).epmd_port == any_epmd.port
    monkeypatch.delenv("ERL_EPMD_PORT")
    assert epmd.default_epmd_port() == 4369


def test_callers_mistakes_are_value_errors() -> None:
    with pytest.raises(ValueError):
        trio.run(partial(epmd.port_please, "a@host"))
    with pytest.raises(ValueError):
        trio.run(partial(epmd.register, "a", 70000))


async def test_wait_closed_returns_when_our_server_stops(nursery: trio.Nursery) -> None:
    server: EpmdServer = await nursery.start(serve, 0, "127.0.0.1")
    reg = await epmd.register(unique_name(), 40013, epmd_port=server.port)
    server.stop()
    with trio.fail_after(30):
        await reg.wait_closed()
    await reg.aclose()
