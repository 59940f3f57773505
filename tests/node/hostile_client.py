"""A test-only raw distribution client for attacking a node with hand-made frames.

``await RawPeer.connect(port, cookie, flags=...)`` does a real handshake as the initiator (with the
cookie: these attacks come from an authenticated peer), then ``send_frame(body)`` writes any frame
body it is given, and ``await closed(timeout)`` tells whether the other side closed the connection
(the bytes it sends meanwhile, ticks and all, are read and dropped). The frame builders below make
the attacks of ``test_hostile_input.py``. Kept apart from the handshake tests' own clients.
"""

from __future__ import annotations

import itertools
import os
import secrets
import struct
import zlib

import trio

from philipjose import Atom, Pid
from philipjose.node.flags import ADVERTISED
from philipjose.node.framing import dist_header, pass_through
from philipjose.node.handshake import Challenge, Handshake, SendName, Status
from philipjose.node.sentinels import NEED_DATA
from philipjose.term import term_to_binary

_U32 = struct.Struct(">I")
_counter = itertools.count()
DOP_REG_SEND = 6


class RawPeer:
    """One authenticated connection whose frames the test writes by hand."""

    def __init__(self, stream: trio.SocketStream, name: str, flags: int, creation: int) -> None:
        self.stream = stream
        self.name = name
        self.flags = flags
        self.pid = Pid(name, 1, 0, creation)

    @classmethod
    async def connect(
        cls, port: int, cookie: str, *, flags: int = ADVERTISED, timeout: float = 10
    ) -> RawPeer:
        name = f"attacker{os.getpid()}x{next(_counter)}@localhost"
        creation = secrets.randbits(32) or 1
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        machine = Handshake(initiator=True, cookie=cookie.encode())
        with trio.fail_after(timeout):
            await stream.send_all(machine.send(SendName(name, flags, creation)))
            status = await _event(stream, machine)
            assert isinstance(status, Status) and status.status == "ok", status
            challenge = await _event(stream, machine)
            assert isinstance(challenge, Challenge)
            await stream.send_all(machine.send(machine.challenge_reply(secrets.randbits(32))))
            await _event(stream, machine)  # the ack
        assert not machine.trailing_data
        return cls(stream, name, machine.flags, creation)

    async def send_frame(self, body: bytes) -> None:
        await self.stream.send_all(_U32.pack(len(body)) + body)

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def next_message(self, timeout: float) -> bytes:
        """The body of the next frame that is not a tick (raises ``ConnectionError`` if closed)."""
        buffer = b""
        with trio.fail_after(timeout):
            while True:
                while len(buffer) >= 4:
                    (length,) = _U32.unpack_from(buffer)
                    if len(buffer) < 4 + length:
                        break
                    body, buffer = buffer[4 : 4 + length], buffer[4 + length :]
                    if body:
                        return body
                data = await self.stream.receive_some(65536)
                if not data:
                    raise ConnectionError("the node closed the connection")
                buffer += data

    async def closed(self, timeout: float) -> bool:
        """True once the other side closes (or resets) the connection within ``timeout`` seconds."""
        with trio.move_on_after(timeout):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return True
                if not data:
                    return True
        return False

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def _event(stream: trio.SocketStream, machine: Handshake) -> object:
    while True:
        event = machine.next_event()
        if event is not NEED_DATA:
            return event
        data = await stream.receive_some(4096)
        if not data:
            raise ConnectionError(f"closed during the handshake ({machine.state})")
        machine.receive_data(data)


def frame_bytes(body: bytes) -> bytes:
    """``body`` with its 4-byte length."""
    return _U32.pack(len(body)) + body


def reg_send_control(sender: Pid, name: str) -> bytes:
    """REG_SEND ``{6, From, '', Name}`` with its version byte."""
    return term_to_binary((DOP_REG_SEND, sender, Atom(""), Atom(name)))


def header_frame(sender: Pid, name: str, payload: bytes) -> bytes:
    """A frame body (no length) with a normal distribution header: REG_SEND of ``payload`` (a
    versioned term) to ``name``."""
    return dist_header(reg_send_control(sender, name), payload)[4:]


def pass_through_frame(sender: Pid, name: str, payload: bytes) -> bytes:
    """A pass-through frame body (``p``): REG_SEND of ``payload`` (a versioned term) to ``name``."""
    return pass_through(reg_send_control(sender, name), payload)[4:]


def empty_lists(count: int) -> bytes:
    """A versioned list of ``count`` empty lists: ``count + 7`` bytes."""
    return b"\x83l" + _U32.pack(count) + b"j" * count + b"j"


def nested_lists(depth: int) -> bytes:
    """A versioned list nested ``depth`` deep: ``[[[...[]...]]]``, 6 bytes per level."""
    return b"\x83" + b"l\x00\x00\x00\x01" * depth + b"j" + b"j" * depth


def compressed_bomb(inflated: int) -> bytes:
    """A compressed term (``131 80``) declaring ``inflated`` bytes: a list of empty lists."""
    body = empty_lists(inflated - 6)[1:]
    return b"\x83P" + _U32.pack(len(body)) + zlib.compress(body, 9)


def first_fragment(seq: int, frag: int, data: bytes) -> bytes:
    """A first-fragment frame body (``131 69``)."""
    return b"\x83E" + struct.pack(">QQ", seq, frag) + b"\x00" + data


def unknown_control(sender: Pid) -> bytes:
    """A header frame body carrying the control tuple ``{99, From}`` (no such operation)."""
    return dist_header(term_to_binary((99, sender)))[4:]
