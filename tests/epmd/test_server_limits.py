"""Our server's limits: request timeouts, the connection cap, the local-peer rule, logging."""

from __future__ import annotations

import logging
from functools import partial

import pytest
import trio

from philipjose import epmd
from philipjose.epmd import EpmdError, EpmdServer, serve
from philipjose.epmd.server import is_local_peer, is_loopback, open_listeners, parse_addresses

from .conftest import free_port, unique_name


async def _wait_closed_by_server(stream: trio.SocketStream) -> bytes:
    received = b""
    while data := await stream.receive_some(4096):
        received += data
    return received


async def test_idle_and_half_open_connections_time_out(nursery: trio.Nursery) -> None:
    server: EpmdServer = await nursery.start(partial(serve, 0, "127.0.0.1", packet_timeout=0.2))
    with trio.fail_after(30):
        idle = await trio.open_tcp_stream("127.0.0.1", server.port)
        half = await trio.open_tcp_stream("127.0.0.1", server.port)
        await half.send_all(b"\x00\x05n")
        assert await _wait_closed_by_server(idle) == b""
        assert await _wait_closed_by_server(half) == b""
        await idle.aclose()
        await half.aclose()
        assert (await epmd.names(epmd_port=server.port)).epmd_port == server.port


async def test_registrations_do_not_time_out(nursery: trio.Nursery) -> None:
    server: EpmdServer = await nursery.start(partial(serve, 0, "127.0.0.1", packet_timeout=0.05))
    name = unique_name()
    async with await epmd.register(name, 40200, epmd_port=server.port):
        # an idle connection times out meanwhile; the registration stays
        with trio.fail_after(30):
            idle = await trio.open_tcp_stream("127.0.0.1", server.port)
            assert await _wait_closed_by_server(idle) == b""
            await idle.aclose()
        assert await epmd.port_please(name, epmd_port=server.port) is not None


async def test_connection_cap_evicts_oldest_idle_connection(nursery: trio.Nursery) -> None:
    server: EpmdServer = await nursery.start(partial(serve, 0, "127.0.0.1", max_connections=10))
    streams = []
    with trio.fail_after(30):
        name = unique_name()
        reg = await epmd.register(name, 40201, epmd_port=server.port)
        for _ in range(30):
            streams.append(await trio.open_tcp_stream("127.0.0.1", server.port))
        # still serving, and the registration survived the flood
        assert (name, 40201) in await epmd.names(epmd_port=server.port)
        assert server.connection_count <= 10
        # the oldest idle connections were closed to make room
        assert await _wait_closed_by_server(streams[0]) == b""
        await reg.aclose()
    for stream in streams:
        await trio.aclose_forcefully(stream)


async def test_connection_cap_full_of_registrations_refuses_new_connections(
    nursery: trio.Nursery,
) -> None:
    server: EpmdServer = await nursery.start(partial(serve, 0, "127.0.0.1", max_connections=2))
    with trio.fail_after(30):
        async with (
            await epmd.register(unique_name(), 40202, epmd_port=server.port),
            await epmd.register(unique_name(), 40203, epmd_port=server.port),
        ):
            with pytest.raises(EpmdError):
                await epmd.names(epmd_port=server.port)
            assert len(server.registry) == 2
        await server.wait_until(lambda registry: len(registry) == 0)
        assert await epmd.names(epmd_port=server.port) == []


def test_local_peer_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.5.6.7") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.7") and not is_loopback("not an address")
    assert is_local_peer("192.0.2.7", "192.0.2.7")  # the host's own address, as epmd allows
    assert not is_local_peer("192.0.2.8", "192.0.2.7")
    assert not is_local_peer("::ffff:192.0.2.8", "127.0.0.1")


def test_parse_addresses() -> None:
    assert parse_addresses(None) is None
    assert parse_addresses("") is None
    assert parse_addresses("10.0.0.1, 127.0.0.1 ::1") == ["10.0.0.1", "127.0.0.1", "::1"]
    assert parse_addresses(["a", "b"]) == ["a", "b"]


async def test_listeners_add_loopback_and_share_one_port() -> None:
    for given, expected in [(["::"], ["127.0.0.1", "::"]), (["0.0.0.0"], ["0.0.0.0"])]:
        listeners = await open_listeners(0, given)
        try:
            addresses = sorted(listener.socket.getsockname()[0] for listener in listeners)
            ports = {listener.socket.getsockname()[1] for listener in listeners}
            assert addresses == expected
            assert len(ports) == 1
        finally:
            for listener in listeners:
                await listener.aclose()


async def test_port_in_use_is_an_os_error(nursery: trio.Nursery) -> None:
    server: EpmdServer = await nursery.start(serve, 0, "127.0.0.1")
    with pytest.raises(OSError):
        await serve(server.port, "127.0.0.1")
    assert free_port() != server.port


async def test_registrations_and_junk_are_logged(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="philipjose.epmd")
    server: EpmdServer = await nursery.start(serve, 0, "127.0.0.1")
    name = unique_name()
    with trio.fail_after(30):
        async with await epmd.register(name, 40204, epmd_port=server.port):
            pass
        await server.wait_until(lambda registry: registry.lookup(name) is None)
        async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
            await stream.send_all(b"\x00\x01\x01")
            assert await _wait_closed_by_server(stream) == b""
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"registered {name!r}" in m for m in messages)
    assert any(f"unregistered {name!r}" in m for m in messages)
    assert any("unknown request tag 1" in m for m in messages)
