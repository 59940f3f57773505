"""A test-only hostile distribution client: a raw TCP socket driven by the sans-I/O handshake.

It claims any node name and plays the initiator's side as far as it likes: ``spoof`` goes through a
whole handshake with a wrong cookie (answering ``true`` to ``alive``), ``HalfOpen`` sends a name and
then stalls. It works against philipjose and OTP nodes alike (plain TCP, 2-byte handshake lengths;
``spoof`` also inside TLS with a client context, 4-byte lengths as ``inet_tls_dist``).
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass, field

import trio

from philipjose.node.flags import ADVERTISED
from philipjose.node.handshake import Challenge, Handshake, SendName, Status
from philipjose.node.sentinels import NEED_DATA

WRONG_COOKIE = b"not-the-cookie"


@dataclass
class Outcome:
    """What the attacked node did: the status it answered, how far the handshake got, whether the
    node closed the connection at the end (as it must after a wrong digest) and whether it sent an
    ack (which it must never do without the cookie)."""

    status: str = ""
    challenged: bool = False
    acked: bool = False
    closed: bool = False
    events: list[str] = field(default_factory=list)


async def _next(stream: trio.abc.Stream, machine: Handshake) -> object:
    """The next handshake event, or None when the node closes the connection."""
    while True:
        event = machine.next_event()
        if event is not NEED_DATA:
            return event
        try:
            data = await stream.receive_some(4096)
        except trio.BrokenResourceError:  # a TLS peer that closed without close_notify
            return None
        if not data:
            return None
        machine.receive_data(data)


async def spoof(
    port: int,
    name: str,
    *,
    cookie: bytes = WRONG_COOKIE,
    timeout: float = 10.0,
    tls: ssl.SSLContext | None = None,
) -> Outcome:
    """Claim to be ``name`` with ``cookie`` (wrong by default); answer ``true`` to ``alive``.

    With ``tls`` (a client context), the handshake runs inside TLS (server name ``localhost``).
    """
    outcome = Outcome()
    with trio.fail_after(timeout):
        stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
        if tls is not None:
            stream = trio.SSLStream(stream, tls, server_hostname="localhost")
            await stream.do_handshake()
        async with stream:
            machine = Handshake(initiator=True, cookie=cookie, length_size=2 if tls is None else 4)
            await stream.send_all(machine.send(SendName(name, ADVERTISED, secrets.randbits(32) | 4)))
            status = await _next(stream, machine)
            if not isinstance(status, Status):
                outcome.closed = True
                return outcome
            outcome.status = status.status
            outcome.events.append(f"status {status.status}")
            if status.status == "alive":
                await stream.send_all(machine.send(Status("true")))
            elif status.status not in ("ok", "ok_simultaneous"):
                outcome.closed = await _next(stream, machine) is None
                return outcome
            challenge = await _next(stream, machine)
            if not isinstance(challenge, Challenge):
                outcome.closed = True
                return outcome
            outcome.challenged = True
            outcome.events.append("challenge")
            await stream.send_all(machine.send(machine.challenge_reply(secrets.randbits(32))))
            try:
                ack = await _next(stream, machine)
            except ValueError:  # an ack with a digest we cannot match (a right-cookie node, wrong us)
                outcome.acked = True
                return outcome
            outcome.acked = ack is not None
            outcome.closed = ack is None
    return outcome


class HalfOpen:
    """A connection that sends a name claiming ``name``, reads the status, and then stalls."""

    def __init__(self, stream: trio.SocketStream, status: str) -> None:
        self.stream = stream
        self.status = status

    @classmethod
    async def open(cls, port: int, name: str, *, timeout: float = 10.0) -> HalfOpen:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            machine = Handshake(initiator=True, cookie=WRONG_COOKIE)
            await stream.send_all(machine.send(SendName(name, ADVERTISED, secrets.randbits(32) | 4)))
            status = await _next(stream, machine)
        return cls(stream, status.status if isinstance(status, Status) else "")

    async def wait_closed(self, timeout: float) -> bool:
        """True if the node closes this connection within ``timeout`` seconds (its setup timer)."""
        with trio.move_on_after(timeout):
            while await self.stream.receive_some(4096):
                pass
            return True
        return False

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def authenticated(port: int, name: str, cookie: bytes, *, timeout: float = 10.0) -> trio.SocketStream:
    """A connection claiming ``name`` that completes the handshake with ``cookie`` (the right one):
    after it, the caller writes raw 4-byte-length frames."""
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        machine = Handshake(initiator=True, cookie=cookie)
        await stream.send_all(machine.send(SendName(name, ADVERTISED, secrets.randbits(32) | 4)))
        status = await _next(stream, machine)
        assert isinstance(status, Status) and status.status == "ok", status
        assert isinstance(await _next(stream, machine), Challenge)
        await stream.send_all(machine.send(machine.challenge_reply(secrets.randbits(32))))
        assert await _next(stream, machine) is not None  # the ack, its digest checked
    return stream
