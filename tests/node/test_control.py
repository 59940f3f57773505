"""Control messages: every event round-trips through the wire forms each flag set selects; malformed
control messages raise ProtocolError; unknown ones become UnknownControl."""

from __future__ import annotations

import pytest

from philipjose.node import control as c
from philipjose.node.connection import Connection
from philipjose.node.errors import ProtocolError
from philipjose.node.flags import (
    ADVERTISED,
    DFLAG_EXIT_PAYLOAD,
    DFLAG_FRAGMENTS,
    DFLAG_SEND_SENDER,
    MANDATORY,
)
from philipjose.node.framing import DistMessage, Tick, dist_header, pass_through
from philipjose.node.sentinels import NEED_DATA
from philipjose.term import Atom, Pid, Reference, term_to_binary

A = Pid("a@h", 1, 2, 3)
B = Pid("b@h", 4, 5, 6)
REF = Reference("b@h", 6, (1, 2, 3))
TOKEN = (Atom("trace"), 1, 2)

EVENTS: list[c.ControlEvent] = [
    c.Link(A, B),
    c.Send(B, {b"k": [1, 2.5]}, A),
    c.Send(B, Atom("no_sender")),
    c.Send(B, 1, A, TOKEN),
    c.Send(B, 2, None, TOKEN),
    c.RegSend(A, Atom("sink"), (Atom("row"), 1, b"x" * 32)),
    c.RegSend(A, Atom("sink"), 3, TOKEN),
    c.Exit(A, B, Atom("boom")),
    c.Exit(A, B, Atom("boom"), TOKEN),
    c.Exit2(A, B, Atom("kill")),
    c.Exit2(A, B, Atom("kill"), TOKEN),
    c.Unlink(A, B),
    c.UnlinkId(7, A, B),
    c.UnlinkIdAck(7, B, A),
    c.MonitorP(A, B, REF),
    c.MonitorP(A, Atom("name"), REF),
    c.DemonitorP(A, Atom("name"), REF),
    c.MonitorPExit(B, A, REF, Atom("normal")),
    c.MonitorPExit(Atom("name"), A, REF, Atom("noproc")),
    c.AliasSend(A, REF, Atom("reply")),
    c.AliasSend(A, REF, Atom("reply"), TOKEN),
    c.SpawnRequest(REF, A, A, Atom("m"), Atom("f"), 2, [Atom("link")], [1, 2]),
    c.SpawnRequest(REF, A, A, Atom("m"), Atom("f"), 0, [], [], TOKEN),
    c.SpawnReply(REF, A, 1, B),
    c.SpawnReply(REF, A, 0, Atom("badarg"), TOKEN),
    c.GroupLeader(A, B),
]

FLAG_SETS = {
    "otp25": ADVERTISED,
    "minimal": MANDATORY,  # pass-through frames, old EXIT forms, plain SEND
    "no-fragments": ADVERTISED & ~DFLAG_FRAGMENTS,
    "no-payload-exit": ADVERTISED & ~DFLAG_EXIT_PAYLOAD,
    "no-send-sender": ADVERTISED & ~DFLAG_SEND_SENDER,
}


def decode_all(conn: Connection, data: bytes, mode: str) -> list[object]:
    events: list[object] = []
    chunks = [data] if mode == "whole" else [data[i : i + 1] for i in range(len(data))]
    for chunk in chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
    return events


def expected(event: c.ControlEvent, flags: int) -> c.ControlEvent:
    if isinstance(event, c.Send) and not flags & DFLAG_SEND_SENDER and event.sender is not None:
        return c.Send(event.to, event.message, None, event.token)  # SEND carries no sender
    return event


@pytest.mark.parametrize("flags_name", list(FLAG_SETS))
@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_every_event_round_trips(flags_name: str, mode: str) -> None:
    flags = FLAG_SETS[flags_name]
    sender = Connection(flags)
    data = b"".join(sender.send(e) for e in EVENTS) + sender.tick()
    events = decode_all(Connection(flags), data + data[:6], mode)
    assert events == [expected(e, flags) for e in EVENTS] + [Tick()]


def test_wire_variants_follow_the_flags() -> None:
    exit_ = c.Exit(A, B, Atom("r"))
    assert c.control_terms(exit_, ADVERTISED)[0][0] == c.DOP_PAYLOAD_EXIT
    assert c.control_terms(exit_, MANDATORY)[0][0] == c.DOP_EXIT
    assert c.control_terms(c.Send(B, 1, A), ADVERTISED)[0][0] == c.DOP_SEND_SENDER
    assert c.control_terms(c.Send(B, 1, A), MANDATORY)[0][0] == c.DOP_SEND
    assert Connection(ADVERTISED).send(c.Link(A, B))[4:7] == b"\x83D\x00"  # ERTS wants a header
    assert Connection(MANDATORY).send(c.Link(A, B))[4:5] == b"p"


def message(control: object, payload: object = None, *, extra: bytes = b"") -> DistMessage:
    frame = pass_through(term_to_binary(control), None if payload is None else term_to_binary(payload))
    return DistMessage(frame[4:] + extra, 1, True)


@pytest.mark.parametrize(
    "bad",
    [
        message(Atom("not_a_tuple")),
        message(()),
        message((Atom("one"), A)),
        message((c.DOP_LINK, A)),  # wrong arity
        message((c.DOP_LINK, A, Atom("x"))),  # not a pid
        message((c.DOP_SEND_SENDER, A, B)),  # payload missing
        message((c.DOP_REG_SEND, A, Atom(""), "name"), 1),  # name not an atom
        message((c.DOP_MONITOR_P, A, 1, REF)),
        message((c.DOP_MONITOR_P, A, B, 1)),
        message((c.DOP_UNLINK_ID, Atom("x"), A, B)),
        message((c.DOP_SPAWN_REQUEST, REF, A, A, (Atom("m"), Atom("f")), []), []),
        message((c.DOP_SPAWN_REQUEST, REF, A, A, (Atom("m"), Atom("f"), 0), []), Atom("args")),
        message((c.DOP_LINK, A, B), extra=b"\x83a\x01"),  # stray bytes
        DistMessage(b"p\x83h", 1, True),  # truncated term
        DistMessage(b"p\x00", 1, True),  # no version byte
    ],
)
def test_malformed_control_messages(bad: DistMessage) -> None:
    with pytest.raises(ProtocolError):
        c.decode_message(bad)


def test_unknown_control_is_an_event() -> None:
    event = c.decode_message(message((99, A, Atom("future")), extra=b""))
    assert event == c.UnknownControl((99, A, Atom("future")), b"")
    frame = dist_header(term_to_binary((5,)), None)
    assert c.decode_message(DistMessage(frame[4:], 3, False)) == c.UnknownControl((5,), b"")


def test_unknown_control_cannot_be_sent() -> None:
    with pytest.raises(TypeError):
        Connection(ADVERTISED).send(c.UnknownControl((99,), b""))


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
def test_the_send_cache_with_more_senders_than_slots(flags: int) -> None:
    """Sends from 40 senders (the decode cache keeps 16, busiest first), interleaved and repeated:
    every frame decodes to its own event, as the uncached decoder decodes it."""
    sender_side, receiver = Connection(flags), Connection(flags)
    events: list[c.ControlEvent] = []
    for round_ in range(3):
        for i in range(40):
            who = Pid("a@h", i, 0, 3)
            events.append(c.RegSend(who, Atom(f"name{i % 7}"), (round_, i)))
            events.append(c.Send(B, [round_, i], who))
            if i % 5 == 0:  # a busy sender: its entry moves to the front
                events.extend(c.RegSend(A, Atom("sink"), k) for k in range(3))
    for event in events:
        frame = sender_side.send(event)
        uncached = Connection(flags)  # a fresh connection: nothing cached yet
        uncached.receive_data(frame)
        expected = uncached.next_event()
        assert type(expected) is type(event) and expected.message == event.message  # type: ignore[union-attr]
        receiver.receive_data(frame)
        assert receiver.next_event() == expected
    assert receiver.next_event() is NEED_DATA
