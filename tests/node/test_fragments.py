"""Outgoing fragments (sans-I/O): a message split and joined again by the frame decoder, the writer's
queue interleaving large messages with other traffic while keeping each sender's order, oversized
messages refused alone, and the ordering keys."""

from __future__ import annotations

import struct

import pytest

from philipjose.node import control as c
from philipjose.node.control import ControlCodec
from philipjose.node.flags import ADVERTISED
from philipjose.node.fragments import FRAGMENT_SIZE, Fragments, fragmentable
from philipjose.node.framing import (
    TICK_BYTES,
    DistMessage,
    FrameDecoder,
    OversizedMessage,
    Tick,
    dist_header,
    frame,
)
from philipjose.node.ordering import cheap_to_encode, control_sender, event_sender
from philipjose.node.outqueue import OutQueue
from philipjose.node.sentinels import NEED_DATA
from philipjose.node.terms import decode_term
from philipjose.term import Atom, ImproperList, Pid, Reference, term_to_binary

A = Pid("a@h", 1, 0, 1)
B = Pid("b@h", 2, 0, 1)
TO = Pid("peer@h", 3, 0, 1)


def message(sender: Pid, payload: object) -> bytes:
    return ControlCodec(ADVERTISED).encode(c.Send(TO, payload, sender))


def events(data: bytes, mode: str = "whole", **limits: int) -> list[object]:
    decoder = FrameDecoder(**limits)
    chunks = [data] if mode == "whole" else [data[i : i + 1000] for i in range(0, len(data), 1000)]
    out: list[object] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            if isinstance(event, DistMessage):
                event = ControlCodec(ADVERTISED).decode(event)
            out.append(event)
    return out


def test_a_small_message_is_not_fragmented() -> None:
    small = message(A, bytes(FRAGMENT_SIZE - 100))
    assert not fragmentable(small)
    queue = OutQueue(fragments=True)
    assert queue.push(small, A) == len(small)
    assert queue.take() == [small] and queue.queued == 0


@pytest.mark.parametrize("mode", ["whole", "chunked"])
def test_a_large_message_is_split_into_fragments_that_join_again(mode: str) -> None:
    payload = bytes(range(256)) * 1000  # 256,000 bytes: four fragments
    big = message(A, payload)
    fragments = Fragments(big, 7)  # any id but 0 (which crashes OTP 25)
    frames = [fragments.next_frame() for _ in range(fragments.count)]
    assert fragments.count == 4 and fragments.left == 0
    assert sum(map(len, frames)) == fragments.size
    # First: 131 69, sequence 7, fragment 4, no atom-cache references; then 131 70 counting down.
    assert frames[0][4:23] == b"\x83E" + struct.pack(">QQ", 7, 4) + b"\x00"
    assert [f[4:22] for f in frames[1:]] == [b"\x83F" + struct.pack(">QQ", 7, n) for n in (3, 2, 1)]
    assert max(len(f) - 4 for f in frames) <= FRAGMENT_SIZE + 19
    with pytest.raises(IndexError):
        fragments.next_frame()
    assert events(b"".join(frames), mode) == [c.Send(TO, payload, A)]


def test_fragments_of_one_sender_interleave_with_other_traffic_in_order() -> None:
    queue = OutQueue(fragments=True, batch_size=1)  # one fragment per batch: the finest interleaving
    big_a = message(A, b"a" * (3 * FRAGMENT_SIZE))
    big_b = message(B, b"b" * (2 * FRAGMENT_SIZE))
    queued = queue.push(big_a, A) + queue.push(big_b, B)
    first = queue.take()
    queued += queue.push(message(A, b"after a"), A)  # waits behind A's large message
    queued += queue.push(message(B, b"after b"), B)
    queued += queue.push(TICK_BYTES)  # no sender: goes at once
    queued += queue.push(message(TO, b"other"), TO)  # a third sender: not held behind A or B
    assert queue.queued == queued - sum(map(len, first))
    batches = [first]
    while queue.ready():
        batches.append(queue.take())
    assert queue.queued == 0 and not queue
    wire = b"".join(b"".join(batch) for batch in batches)
    got = events(wire)
    assert got.index(Tick()) < 4 and got.index(c.Send(TO, b"other", TO)) < 4  # within the next batch
    a_order = [e for e in got if isinstance(e, c.Send) and e.sender == A]
    b_order = [e for e in got if isinstance(e, c.Send) and e.sender == B]
    assert [e.message for e in a_order] == [b"a" * (3 * FRAGMENT_SIZE), b"after a"]
    assert [e.message for e in b_order] == [b"b" * (2 * FRAGMENT_SIZE), b"after b"]
    # The two large messages really interleaved: B's finished before A's.
    assert got.index(b_order[0]) < got.index(a_order[0])


def test_a_reserved_place_holds_back_its_sender_only() -> None:
    queue = OutQueue(fragments=True)
    place = queue.reserve(A)
    queue.push(message(A, b"second"), A)
    queue.push(message(B, b"other"), B)
    assert queue.ready()
    assert events(b"".join(queue.take())) == [c.Send(TO, b"other", B)]
    assert not queue.ready() and queue  # A's lane waits for its first message
    big = message(A, b"x" * (2 * FRAGMENT_SIZE))
    assert queue.fill(place, big) == Fragments(big, 0).size
    wire = b""
    while queue.ready():
        wire += b"".join(queue.take())
    assert events(wire) == [c.Send(TO, b"x" * (2 * FRAGMENT_SIZE), A), c.Send(TO, b"second", A)]
    assert queue.queued == 0 and not queue
    # A place filled with nothing (the message was refused) lets the lane go on.
    place = queue.reserve(A)
    queue.push(message(A, b"next"), A)
    queue.fill(place, None)
    assert events(b"".join(queue.take())) == [c.Send(TO, b"next", A)]


def test_without_fragments_large_frames_go_whole_and_in_order() -> None:
    queue = OutQueue(fragments=False)
    big = message(A, bytes(3 * FRAGMENT_SIZE))
    queue.push(big, A)
    queue.push(TICK_BYTES)
    assert queue.take() == [big, TICK_BYTES]


def test_a_whole_frame_over_the_size_limit_is_skipped_unread() -> None:
    payload = bytes(5000)
    big = message(A, payload)
    for mode in ("whole", "chunked"):
        got = events(big + message(B, b"next") + TICK_BYTES, mode, max_message_size=1000)
        assert len(got) == 3 and got[1:] == [c.Send(TO, b"next", B), Tick()]
        refused = got[0]
        assert isinstance(refused, OversizedMessage)
        assert refused.size == len(big) - 7 and refused.limit == 1000
        control, _ = decode_term(refused.head, 0, False)
        assert control_sender(control) == A


def test_a_skipped_frame_is_not_buffered() -> None:
    decoder = FrameDecoder(max_message_size=1000)
    decoder.receive_data(frame(b"\x83D\x00" + bytes(100)))
    decoder.receive_data(struct.pack(">I", 10_000_000) + b"\x83D\x00" + bytes(1000))
    assert isinstance(decoder.next_event(), DistMessage)
    assert isinstance(decoder.next_event(), OversizedMessage)
    for _ in range(100):
        decoder.receive_data(bytes(65536))
        assert decoder.buffered == 0
    decoder.receive_data(bytes(10_000_000 - 1003 - 100 * 65536) + dist_header(term_to_binary((2,))))
    assert decoder.next_event() == DistMessage(b"\x83D\x00h\x01a\x02", 3, False)


def test_fragments_over_the_limit_refused_while_others_pass() -> None:
    big = Fragments(message(A, bytes(4 * FRAGMENT_SIZE)), 1)
    small = Fragments(message(B, bytes(2 * FRAGMENT_SIZE)), 2)
    wire = b""
    while big.left or small.left:
        if big.left:
            wire += big.next_frame()
        if small.left:
            wire += small.next_frame()
    got = events(wire, "chunked", max_message_size=3 * FRAGMENT_SIZE)
    assert len(got) == 2
    assert got[0] == c.Send(TO, bytes(2 * FRAGMENT_SIZE), B)
    assert isinstance(got[1], OversizedMessage) and got[1].size > 3 * FRAGMENT_SIZE


def test_cheap_to_encode_looks_at_a_bounded_number_of_elements() -> None:
    assert cheap_to_encode(b"x" * 10_000_000) and cheap_to_encode("text") and cheap_to_encode(5)
    assert cheap_to_encode((Atom("ok"), [1, 2, {3: (4, 5)}]))
    assert not cheap_to_encode(list(range(3000)))
    assert cheap_to_encode(list(range(3000)), budget=3000)
    assert not cheap_to_encode({i: i for i in range(2000)})
    nested: object = []
    for _ in range(5000):
        nested = [nested]
    assert not cheap_to_encode(nested)
    assert not cheap_to_encode(ImproperList(tuple(range(3000)), 1))
    assert not cheap_to_encode((1, [(i, Atom("a"), b"bin") for i in range(10**6)]))


def test_the_ordering_key_is_the_same_from_the_event_and_from_the_control_tuple() -> None:
    ref = Reference("a@h", 1, (1, 2, 3))
    cases = [
        c.Send(TO, b"m", A),
        c.RegSend(A, Atom("name"), b"m"),
        c.AliasSend(A, ref, b"m"),
        c.Link(A, TO),
        c.Exit(A, TO, Atom("normal")),
        c.Exit2(A, TO, Atom("kill")),
        c.UnlinkId(5, A, TO),
        c.UnlinkIdAck(5, A, TO),
        c.MonitorP(A, TO, ref),
        c.DemonitorP(A, Atom("name"), ref),
        c.MonitorPExit(A, TO, ref, Atom("normal")),
        c.SpawnRequest(ref, A, A, Atom("m"), Atom("f"), 0, [], []),
        c.SpawnReply(ref, TO, 0, A),
    ]
    codec = ControlCodec(ADVERTISED)
    for event in cases:
        data = codec.encode(event)
        control, _ = decode_term(data, 7, False)
        assert control_sender(control) == event_sender(event), event
    assert event_sender(c.Send(TO, b"m")) is None and control_sender((2, Atom(""), TO)) is None
    assert control_sender("junk") is None and control_sender(()) is None


def test_a_large_message_encoded_for_a_thread_gets_the_connection_style() -> None:
    from philipjose.node.connection import Connection
    from philipjose.term.styles import TermStyle

    conn = Connection(ADVERTISED, style=TermStyle(none="nil"))
    event = c.Send(TO, [None] * 5000, A)
    assert conn.encode_large(event) == conn.send(event)
    assert events(conn.encode_large(event)) == [c.Send(TO, [Atom("nil")] * 5000, A)]
