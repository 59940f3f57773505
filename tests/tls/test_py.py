"""TLS between philipjose nodes: the 4-byte handshake framing (sans-I/O), the tls= option and
helpers, and real TLS connections on loopback: ping, messages, cookie still checked, plain TCP and
wrongly certified peers refused both ways, and the node serving on afterwards."""

from __future__ import annotations

import argparse
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import philipjose as pj
from philipjose import Atom
from philipjose.node import NodeConfigError
from philipjose.node.flags import ADVERTISED
from philipjose.node.handshake import CONNECTED, Challenge, Handshake, SendName, Status
from philipjose.node.sentinels import NEED_DATA
from philipjose.node.tls import (
    TLSConfig,
    TLSFiles,
    add_tls_arguments,
    as_tls_config,
    tls_config,
    tls_from_args,
)
from tests.node.support import LocalNode, local_nodes

from .certs import PKI, NodeFiles
from .support import node_tls

# -- the handshake inside TLS: 4-byte lengths ------------------------------------------------------


def _run_handshake(length_size: int, *, byte_by_byte: bool) -> tuple[Handshake, Handshake, list[bytes]]:
    a = Handshake(initiator=True, cookie=b"c", length_size=length_size)
    b = Handshake(initiator=False, cookie=b"c", length_size=length_size)
    wire: list[bytes] = []

    def deliver(to: Handshake, data: bytes) -> Any:
        wire.append(data)
        chunks = [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]
        for chunk in chunks:
            to.receive_data(chunk)
        event = to.next_event()
        assert event is not NEED_DATA
        return event

    deliver(b, a.send(SendName("a@h", ADVERTISED, 7)))
    deliver(a, b.send(Status("ok")))
    deliver(a, b.send(Challenge("b@h", ADVERTISED, 1234, 8)))
    deliver(b, a.send(a.challenge_reply(99)))
    deliver(a, b.send(b.challenge_ack()))
    return a, b, wire


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_handshake_with_4_byte_lengths(byte_by_byte: bool) -> None:
    a, b, wire = _run_handshake(4, byte_by_byte=byte_by_byte)
    assert a.state is CONNECTED and b.state is CONNECTED
    for message in wire:
        assert int.from_bytes(message[:4], "big") == len(message) - 4
    _, _, plain = _run_handshake(2, byte_by_byte=False)
    assert [m[4:] for m in wire] == [m[2:] for m in plain]  # same bodies, longer prefix


def test_handshake_4_byte_limits() -> None:
    b = Handshake(initiator=False, cookie=b"c", length_size=4)
    b.receive_data(b"\x00\x00\x00")
    assert b.next_event() is NEED_DATA
    b.receive_data(b"\x09")  # 9 bytes announced, none there yet
    assert b.next_event() is NEED_DATA
    huge = Handshake(initiator=False, cookie=b"c", length_size=4)
    huge.receive_data((1 << 31).to_bytes(4, "big"))
    with pytest.raises(pj.node.HandshakeError):
        huge.next_event()
    with pytest.raises(ValueError):
        Handshake(initiator=True, cookie=b"c", length_size=3)


# -- the option and the helpers --------------------------------------------------------------------


def test_tls_config_from_files(pki: PKI) -> None:
    config = node_tls(pki.good)
    assert config.server.verify_mode == ssl.CERT_REQUIRED
    assert config.client.verify_mode == ssl.CERT_REQUIRED and config.client.check_hostname
    assert config.files == TLSFiles(str(pki.good.certfile), str(pki.good.keyfile), str(pki.good.cafile))
    relaxed = node_tls(pki.good, verify="none")
    assert relaxed.server.verify_mode == ssl.CERT_NONE and relaxed.client.verify_mode == ssl.CERT_NONE
    assert not relaxed.client.check_hostname
    assert config.files.argv() == [
        "--tls-certfile", str(pki.good.certfile), "--tls-keyfile", str(pki.good.keyfile),
        "--tls-cafile", str(pki.good.cafile), "--tls-verify", "peer",
    ]  # fmt: skip


def test_tls_config_errors(pki: PKI) -> None:
    with pytest.raises(NodeConfigError, match="verify"):
        tls_config(pki.good.certfile, pki.good.keyfile, pki.good.cafile, verify="maybe")
    with pytest.raises(NodeConfigError, match="cannot load the certificate"):
        tls_config(pki.folder / "missing.pem", pki.good.keyfile, pki.good.cafile)
    with pytest.raises(NodeConfigError, match="cannot load the certificate"):
        tls_config(pki.good.certfile, pki.rogue.keyfile, pki.good.cafile)  # key of another cert
    with pytest.raises(NodeConfigError, match="CA certificates"):
        tls_config(pki.good.certfile, pki.good.keyfile, pki.folder / "missing-ca.pem")


def test_as_tls_config() -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert as_tls_config(None) is None
    assert as_tls_config((server, client)) == TLSConfig(server, client)
    config = TLSConfig(server, client)
    assert as_tls_config(config) is config
    with pytest.warns(DeprecationWarning):
        both = ssl.SSLContext(ssl.PROTOCOL_TLS)
    assert as_tls_config(both) == TLSConfig(both, both)
    with pytest.raises(NodeConfigError, match="both sides"):
        as_tls_config(server)
    with pytest.raises(NodeConfigError):
        as_tls_config((client, server))
    with pytest.raises(NodeConfigError):
        as_tls_config("cert.pem")  # type: ignore[arg-type]


def test_command_line_options(pki: PKI) -> None:
    parser = argparse.ArgumentParser()
    add_tls_arguments(parser)
    assert tls_from_args(parser.parse_args([])) is None
    args = parser.parse_args(
        ["--tls-certfile", str(pki.good.certfile), "--tls-keyfile", str(pki.good.keyfile),
         "--tls-cafile", str(pki.good.cafile), "--tls-verify", "none"]
    )  # fmt: skip
    config = tls_from_args(args)
    assert config is not None and config.files is not None and config.files.verify == "none"
    with pytest.raises(NodeConfigError, match="need --tls-certfile"):
        tls_from_args(parser.parse_args(["--tls-cafile", str(pki.good.cafile)]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--tls-verify", "sometimes"])


# -- real connections ------------------------------------------------------------------------------


@asynccontextmanager
async def node(tls: TLSConfig | None, **options: Any) -> AsyncIterator[LocalNode]:
    """One more node (no EPMD) on loopback."""
    async with local_nodes(1, tls=tls, **options) as (n,):
        yield n


def _know(*nodes: LocalNode) -> None:
    """Tell every node the others' ports."""
    ports = {n.name: n.dist.port for n in nodes if n.dist is not None}
    for n in nodes:
        assert n.dist is not None
        n.dist.peer_ports.update(ports)


async def _ping(src: LocalNode, dst: LocalNode) -> bool:
    async def go() -> bool:
        return await pj.node.ping(dst.name, timeout=10)

    result: bool = await src.run(go)
    return result


async def _echo_round_trip(src: LocalNode, dst: LocalNode) -> object:
    async def echo() -> None:
        sender, msg = await pj.receive()
        pj.send(sender, (Atom("echoed"), msg))

    async def start_echo() -> None:
        pj.register("echo", pj.spawn(echo))

    await dst.run(start_echo)

    async def go() -> object:
        pj.send(("echo", dst.name), (pj.self(), b"z" * 1_000_000))
        return await pj.receive(timeout=20)

    return await src.run(go)


async def test_two_tls_nodes_ping_and_exchange_messages(pki: PKI) -> None:
    async with local_nodes(2, tls=node_tls(pki.good)) as (a, b):
        assert await _ping(a, b)
        assert await _echo_round_trip(b, a) == (Atom("echoed"), b"z" * 1_000_000)
        assert a.dist is not None and a.dist.tls is not None
        assert [str(n) for n in a.dist.nodes()] == [b.name]


async def test_cookie_still_checked_inside_tls(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    async with node(node_tls(pki.good)) as a, node(node_tls(pki.good), cookie="other") as b:
        _know(a, b)
        with caplog.at_level(logging.WARNING, "philipjose.node"):
            assert not await _ping(b, a)
        assert "wrong cookie" in caplog.text


async def test_plain_and_tls_nodes_refuse_each_other(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    async with node(node_tls(pki.good)) as secure, node(None) as plain, node(node_tls(pki.good)) as friend:
        _know(secure, plain, friend)
        with caplog.at_level(logging.INFO, "philipjose.node"):
            assert not await _ping(plain, secure)
            assert "TLS handshake failed" in caplog.text  # logged by the TLS node
            caplog.clear()
            assert not await _ping(secure, plain)
            assert "this node does not use TLS" in caplog.text  # logged by the plain node
            assert "TLS handshake with" in caplog.text  # and by the TLS node that tried
        assert await _ping(friend, secure)  # both still serve
        assert await _ping(secure, friend)
        assert await _echo_round_trip(friend, secure) == (Atom("echoed"), b"z" * 1_000_000)


async def test_certificate_from_another_ca_is_refused(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    # The rogue node trusts our CA, so the refusals below are made by the nodes with good certificates.
    rogue = NodeFiles(pki.rogue.certfile, pki.rogue.keyfile, pki.good.cafile)
    async with (
        node(node_tls(pki.good)) as good,
        node(node_tls(rogue)) as bad,
        node(node_tls(pki.good)) as friend,
    ):
        _know(good, bad, friend)
        with caplog.at_level(logging.WARNING, "philipjose.node"):
            assert not await _ping(bad, good)  # the good node refuses the client certificate
            assert "refused a connection from 127.0.0.1" in caplog.text
            caplog.clear()
            assert not await _ping(good, bad)  # the good node refuses the server certificate
            assert "certificate verify failed" in caplog.text
        assert await _ping(friend, good)
        assert [str(n) for n in good.dist.nodes()] == [friend.name]  # type: ignore[union-attr]


async def test_verify_none_encrypts_without_checking(pki: PKI) -> None:
    async with (
        node(node_tls(pki.good, verify="none")) as a,
        node(node_tls(pki.rogue, verify="none")) as b,
    ):
        _know(a, b)
        assert await _ping(a, b)
        assert await _ping(b, a)


async def test_handshake_timeout_covers_the_tls_handshake(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    async with node(node_tls(pki.good), handshake_timeout=0.5) as a, node(node_tls(pki.good)) as friend:
        assert a.dist is not None
        with caplog.at_level(logging.WARNING, "philipjose.node"):
            silent = await trio.open_tcp_stream("127.0.0.1", a.dist.port)  # connects, says nothing
            async with silent:
                with trio.fail_after(10):
                    assert await silent.receive_some(10) == b""  # closed by the node
        assert "TLS handshake failed: timed out after 0.5 s" in caplog.text
        _know(a, friend)
        assert await _ping(friend, a)


def test_node_exports() -> None:
    assert pj.node.TLSConfig is TLSConfig and pj.node.tls_config is tls_config
