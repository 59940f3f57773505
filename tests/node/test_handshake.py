"""The handshake state machine: both roles against each other, fed whole, byte by byte and with
trailing data; refusals, wrong cookies and malformed input."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

import pytest

from philipjose.node import handshake as hs
from philipjose.node.errors import AuthenticationError, HandshakeError
from philipjose.node.flags import ADVERTISED, DFLAG_HANDSHAKE_23, DFLAG_NAME_ME, DFLAG_SPAWN, MANDATORY
from philipjose.node.sentinels import NEED_DATA

COOKIE = b"monster"
A = "alpha@host"
B = "beta@host"


def chunks(data: bytes, mode: str) -> Iterator[bytes]:
    if mode == "whole":
        yield data
    elif mode == "bytewise":
        for i in range(len(data)):
            yield data[i : i + 1]
    else:
        raise AssertionError(mode)


def deliver(machine: hs.Handshake, data: bytes, mode: str) -> hs.HandshakeEvent:
    """Feed ``data`` in the given way and return the one event it makes."""
    event: object = NEED_DATA
    for piece in chunks(data, mode):
        assert event is NEED_DATA
        machine.receive_data(piece)
        event = machine.next_event()
    assert event is not NEED_DATA
    assert isinstance(
        event, hs.SendName | hs.Status | hs.Challenge | hs.Complement | hs.ChallengeReply | hs.ChallengeAck
    )
    return event


def run_handshake(mode: str, *, version: int = 6, trailing: bytes = b"") -> tuple[hs.Handshake, hs.Handshake]:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    assert a.state is hs.SEND_NAME and b.state is hs.RECV_NAME

    name = deliver(b, a.send(hs.SendName(A, ADVERTISED, 7, version)), mode)
    assert isinstance(name, hs.SendName)
    assert name.name == A and name.version == version
    assert name.flags == (ADVERTISED if version == 6 else ADVERTISED & 0xFFFFFFFF)
    assert name.creation == (7 if version == 6 else 0)

    status = deliver(a, b.send(hs.Status("ok")), mode)
    assert status == hs.Status("ok") and a.state is hs.RECV_CHALLENGE

    challenge = deliver(a, b.send(hs.Challenge(B, ADVERTISED, 0xDEADBEEF, 9)), mode)
    assert challenge == hs.Challenge(B, ADVERTISED, 0xDEADBEEF, 9, 6)
    if version == 5:
        assert a.state is hs.SEND_COMPLEMENT
        complement = deliver(b, a.send(hs.Complement(ADVERTISED >> 32, 7)), mode)
        assert complement == hs.Complement(ADVERTISED >> 32, 7)
    reply = deliver(b, a.send(a.challenge_reply(12345)), mode)
    assert reply == hs.ChallengeReply(12345, hs.gen_digest(0xDEADBEEF, COOKIE))
    assert b.state is hs.SEND_CHALLENGE_ACK
    ack_bytes = b.send(b.challenge_ack())
    assert b.state is hs.CONNECTED
    ack = deliver(a, ack_bytes + trailing, mode) if mode == "whole" else deliver(a, ack_bytes, mode)
    assert ack == hs.ChallengeAck(hs.gen_digest(12345, COOKIE))
    assert a.state is hs.CONNECTED
    return a, b


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
@pytest.mark.parametrize("version", [6, 5])
def test_full_handshake(mode: str, version: int) -> None:
    a, b = run_handshake(mode, version=version)
    assert a.peer == hs.PeerInfo(B, ADVERTISED, 9, 6)
    assert b.peer == hs.PeerInfo(A, ADVERTISED, 7, version)
    assert a.flags == b.flags == ADVERTISED
    assert a.trailing_data == b"" and b.trailing_data == b""
    assert a.next_event() is NEED_DATA  # nothing more once connected


def test_trailing_data_is_kept() -> None:
    a, _ = run_handshake("whole", trailing=b"\x00\x00\x00\x00rest")
    assert a.trailing_data == b"\x00\x00\x00\x00rest"
    a.receive_data(b"more")
    assert a.trailing_data == b"\x00\x00\x00\x00restmore"


def test_trailing_data_after_each_message_waits_its_turn() -> None:
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    name = a.send(hs.SendName(A, ADVERTISED, 1))
    b.receive_data(name + b"\x00")  # one byte of a following message
    assert isinstance(b.next_event(), hs.SendName)
    assert b.trailing_data == b"\x00"


def test_negotiated_flags_are_the_intersection() -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    b.receive_data(a.send(hs.SendName(A, ADVERTISED, 1)))
    b.next_event()
    a.receive_data(b.send(hs.Status("ok")))
    a.next_event()
    a.receive_data(b.send(hs.Challenge(B, MANDATORY | DFLAG_SPAWN, 5, 2)))
    a.next_event()
    assert a.flags == MANDATORY | DFLAG_SPAWN
    assert b.flags == MANDATORY | DFLAG_SPAWN  # what b sent, and the initiator has all of it


def test_digest_matches_dist_util() -> None:
    # erlang:md5([atom_to_list(monster) | integer_to_list(3735928559)])
    assert hs.gen_digest(3735928559, b"monster") == hashlib.md5(b"monster3735928559").digest()


@pytest.mark.parametrize("status", ["nok", "not_allowed"])
def test_refusing_status_closes(status: str) -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    b.receive_data(a.send(hs.SendName(A, ADVERTISED, 1)))
    b.next_event()
    a.receive_data(b.send(hs.Status(status)))
    assert a.next_event() == hs.Status(status)
    assert a.state is hs.CLOSED and b.state is hs.CLOSED


@pytest.mark.parametrize("answer", ["true", "false"])
def test_alive_and_its_answer(answer: str) -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    b.receive_data(a.send(hs.SendName(A, ADVERTISED, 1)))
    b.next_event()
    a.receive_data(b.send(hs.Status("alive")))
    assert a.next_event() == hs.Status("alive")
    assert a.state is hs.SEND_ALIVE_REPLY and b.state is hs.RECV_ALIVE_REPLY
    b.receive_data(a.send(hs.Status(answer)))
    assert b.next_event() == hs.Status(answer)
    if answer == "true":
        assert a.state is hs.RECV_CHALLENGE and b.state is hs.SEND_CHALLENGE
    else:
        assert a.state is hs.CLOSED and b.state is hs.CLOSED


def _to_reply_state(cookie_a: bytes, cookie_b: bytes) -> tuple[hs.Handshake, hs.Handshake]:
    a = hs.Handshake(initiator=True, cookie=cookie_a)
    b = hs.Handshake(initiator=False, cookie=cookie_b)
    b.receive_data(a.send(hs.SendName(A, ADVERTISED, 1)))
    b.next_event()
    a.receive_data(b.send(hs.Status("ok")))
    a.next_event()
    a.receive_data(b.send(hs.Challenge(B, ADVERTISED, 99, 2)))
    a.next_event()
    return a, b


def test_wrong_cookie_is_refused_by_the_acceptor() -> None:
    a, b = _to_reply_state(b"wrong", COOKIE)
    b.receive_data(a.send(a.challenge_reply(1)))
    with pytest.raises(AuthenticationError):
        b.next_event()
    assert b.state is hs.CLOSED


def test_wrong_ack_is_refused_by_the_initiator() -> None:
    a, b = _to_reply_state(COOKIE, COOKIE)
    b.receive_data(a.send(a.challenge_reply(1)))
    b.next_event()
    a.receive_data(b.send(hs.ChallengeAck(bytes(16))))
    with pytest.raises(AuthenticationError):
        a.next_event()
    assert a.state is hs.CLOSED


def test_missing_mandatory_flags_in_the_challenge_abort() -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    b.receive_data(a.send(hs.SendName(A, ADVERTISED, 1)))
    b.next_event()
    a.receive_data(b.send(hs.Status("ok")))
    a.next_event()
    a.receive_data(b.send(hs.Challenge(B, MANDATORY & ~DFLAG_HANDSHAKE_23, 5, 2)))
    with pytest.raises(HandshakeError, match="HANDSHAKE_23"):
        a.next_event()


def frame(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # empty message
        b"\x10\x00" + bytes(4096),  # oversized
        frame(b"X" + bytes(20)),  # unknown tag
        frame(b"N" + bytes(5)),  # truncated 'N'
        frame(b"N" + struct.pack(">QIH", ADVERTISED, 1, 50) + b"short@host"),  # name shorter than Nlen
        frame(b"N" + struct.pack(">QIH", ADVERTISED, 1, 6) + b"noathost"),  # no '@'
        frame(b"N" + struct.pack(">QIH", ADVERTISED, 1, 4) + b"\xff\xfe@h"),  # not UTF-8
        frame(b"n" + struct.pack(">HI", 4, ADVERTISED & 0xFFFFFFFF) + b"a@h"),  # version 4
        frame(b"n\x00"),  # truncated 'n'
    ],
)
def test_bad_name_messages(data: bytes) -> None:
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    b.receive_data(data)
    with pytest.raises(HandshakeError):
        b.next_event()


@pytest.mark.parametrize(
    "data",
    [
        frame(b"sbogus"),
        frame(b"snamed:" + b"\x00\x03a@h" + bytes(4)),  # we never ask for a dynamic name
        frame(b"strue"),  # an answer to alive is not a status
        frame(b"a" + bytes(16)),  # out of order
    ],
)
def test_bad_status_messages(data: bytes) -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    a.send(hs.SendName(A, ADVERTISED, 1))
    a.receive_data(data)
    with pytest.raises(HandshakeError):
        a.next_event()


@pytest.mark.parametrize(
    "data",
    [
        frame(b"N" + bytes(10)),
        frame(b"N" + struct.pack(">QIIH", ADVERTISED, 1, 2, 40) + b"b@h"),
        frame(b"r" + bytes(20)),
        frame(b"n" + bytes(3)),
    ],
)
def test_bad_challenge_messages(data: bytes) -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    a.send(hs.SendName(A, ADVERTISED, 1))
    a.receive_data(frame(b"sok"))
    a.next_event()
    a.receive_data(data)
    with pytest.raises(HandshakeError):
        a.next_event()


def test_bad_reply_and_complement() -> None:
    _, b = _to_reply_state(COOKIE, COOKIE)
    b.receive_data(frame(b"r" + bytes(10)))
    with pytest.raises(HandshakeError):
        b.next_event()
    old = hs.Handshake(initiator=False, cookie=COOKIE)
    old.receive_data(frame(b"n" + struct.pack(">HI", 5, ADVERTISED & 0xFFFFFFFF) + A.encode()))
    old.next_event()
    old.send(hs.Status("ok"))
    old.send(hs.Challenge(B, ADVERTISED, 3, 1))
    assert old.state is hs.RECV_COMPLEMENT
    old.receive_data(frame(b"r" + bytes(20)))
    with pytest.raises(HandshakeError):
        old.next_event()


def test_extra_data_after_the_name_is_ignored() -> None:
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    name = A.encode()
    b.receive_data(frame(b"N" + struct.pack(">QIH", ADVERTISED, 4, len(name)) + name + b"future"))
    assert b.next_event() == hs.SendName(A, ADVERTISED, 4, 6)


def test_turns_are_enforced() -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    with pytest.raises(RuntimeError):
        a.next_event()
    with pytest.raises(RuntimeError):
        a.send(hs.Status("ok"))
    a.send(hs.SendName(A, ADVERTISED, 1))
    with pytest.raises(RuntimeError):
        a.send(hs.SendName(A, ADVERTISED, 1))
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    with pytest.raises(RuntimeError):
        b.send(hs.Status("ok"))


def test_caller_errors() -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    with pytest.raises(ValueError):
        a.send(hs.SendName("no-at-sign", ADVERTISED, 1))
    with pytest.raises(ValueError):
        a.send(hs.SendName(A, ADVERTISED, 1, version=4))
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    b.receive_data(hs.Handshake(initiator=True, cookie=COOKIE).send(hs.SendName(A, ADVERTISED, 1)))
    b.next_event()
    with pytest.raises(ValueError):
        b.send(hs.Status("maybe"))


@pytest.mark.parametrize("name", ["a@b", "x" * 100 + "@" + "h" * 100, "ünï@høst"])
def test_split_node_name_accepts(name: str) -> None:
    alive, host = hs.split_node_name(name)
    assert f"{alive}@{host}" == name


@pytest.mark.parametrize("name", ["", "@", "a@", "@b", "a@b@c", "a" * 300 + "@b", "ab"])
def test_split_node_name_rejects(name: str) -> None:
    with pytest.raises(ValueError):
        hs.split_node_name(name)


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_dynamic_name_is_assigned_by_the_acceptor(mode: str) -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    name = deliver(b, a.send(hs.SendName("host", ADVERTISED | DFLAG_NAME_ME, 0)), mode)
    assert name == hs.SendName("host", ADVERTISED | DFLAG_NAME_ME, 0, 6)
    with pytest.raises(ValueError):
        b.send(hs.Status("ok"))  # a dynamic name is answered 'named'
    with pytest.raises(ValueError):
        b.send(hs.Status("named", "X1@otherhost", 5))  # on the peer's own host only
    data = b.send(hs.Status("named", "X1@host", 5))
    assert data == frame(b"snamed:" + b"\x00\x07X1@host" + struct.pack(">I", 5))
    assert b.peer.name == "X1@host" and b.peer.creation == 5 and b.state is hs.SEND_CHALLENGE
    status = deliver(a, data, mode)
    assert status == hs.Status("named", "X1@host", 5)
    assert a.own_name == "X1@host" and a.own_creation == 5 and a.state is hs.RECV_CHALLENGE
    deliver(a, b.send(hs.Challenge(B, ADVERTISED | DFLAG_NAME_ME, 99, 9)), mode)
    deliver(b, a.send(a.challenge_reply(77)), mode)
    deliver(a, b.send(b.challenge_ack()), mode)
    assert a.state is hs.CONNECTED and b.state is hs.CONNECTED and b.peer.name == "X1@host"


@pytest.mark.parametrize(
    "data",
    [
        frame(b"N" + struct.pack(">QIH", ADVERTISED | DFLAG_NAME_ME, 0, 3) + b"a@h"),  # host only
        frame(b"N" + struct.pack(">QIH", ADVERTISED | DFLAG_NAME_ME, 0, 0)),  # empty host
    ],
)
def test_bad_dynamic_name_requests(data: bytes) -> None:
    b = hs.Handshake(initiator=False, cookie=COOKIE)
    b.receive_data(data)
    with pytest.raises(HandshakeError):
        b.next_event()


@pytest.mark.parametrize(
    "data",
    [
        frame(b"sok"),  # OTP's dynamic initiator refuses anything but named (or not_allowed)
        frame(b"snamed:" + b"\x00\x07X1@else" + bytes(4)),  # not our host
        frame(b"snamed:" + b"\x00\x09X1@host"),  # truncated
    ],
)
def test_bad_answers_to_a_dynamic_name_request(data: bytes) -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    a.send(hs.SendName("host", ADVERTISED | DFLAG_NAME_ME, 0))
    a.receive_data(data)
    with pytest.raises(HandshakeError):
        a.next_event()


def test_not_allowed_to_a_dynamic_name_request() -> None:
    a = hs.Handshake(initiator=True, cookie=COOKIE)
    a.send(hs.SendName("host", ADVERTISED | DFLAG_NAME_ME, 0))
    a.receive_data(frame(b"snot_allowed"))
    assert a.next_event() == hs.Status("not_allowed") and a.state is hs.CLOSED
    with pytest.raises(ValueError):
        hs.Handshake(initiator=True, cookie=COOKIE).send(hs.SendName("a@host", ADVERTISED | DFLAG_NAME_ME))
