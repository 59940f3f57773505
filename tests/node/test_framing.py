"""Frame decoding: ticks, pass-through and header frames, fragments, limits; fed whole, byte by byte
and with trailing data."""

from __future__ import annotations

import struct

import pytest

from philipjose.node.errors import FrameTooLarge, ProtocolError
from philipjose.node.framing import (
    SEQUENCE_OVERHEAD,
    TICK_BYTES,
    DistMessage,
    FrameDecoder,
    OversizedMessage,
    Tick,
    frame,
    pass_through,
)
from philipjose.node.sentinels import NEED_DATA

CONTROL = b"\x83h\x01a\x02"  # {2}
PAYLOAD = b"\x83a\x07"  # 7


def drain(decoder: FrameDecoder) -> list[object]:
    events: list[object] = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def feed(data: bytes, mode: str, **limits: int | bool) -> list[object]:
    decoder = FrameDecoder(**limits)  # type: ignore[arg-type]
    events: list[object] = []
    if mode == "whole":
        decoder.receive_data(data)
        events += drain(decoder)
    else:
        for i in range(len(data)):
            decoder.receive_data(data[i : i + 1])
            events += drain(decoder)
    return events


def first_fragment(seq: int, frag: int, data: bytes) -> bytes:
    return frame(b"\x83E" + struct.pack(">QQ", seq, frag) + b"\x00" + data)


def next_fragment(seq: int, frag: int, data: bytes) -> bytes:
    return frame(b"\x83F" + struct.pack(">QQ", seq, frag) + data)


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_ticks_and_pass_through(mode: str) -> None:
    data = TICK_BYTES + pass_through(CONTROL, PAYLOAD) + TICK_BYTES + pass_through(CONTROL)
    events = feed(data, mode)
    assert events == [
        Tick(),
        DistMessage(b"p" + CONTROL + PAYLOAD, 1, True),
        Tick(),
        DistMessage(b"p" + CONTROL, 1, True),
    ]


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_trailing_partial_frame_waits(mode: str) -> None:
    whole = pass_through(CONTROL, PAYLOAD)
    data = TICK_BYTES + whole + whole[:7]
    decoder = FrameDecoder()
    if mode == "whole":
        decoder.receive_data(data)
    else:
        for b in data:
            decoder.receive_data(bytes([b]))
    assert drain(decoder) == [Tick(), DistMessage(b"p" + CONTROL + PAYLOAD, 1, True)]
    assert decoder.buffered == 7
    decoder.receive_data(whole[7:])
    assert drain(decoder) == [DistMessage(b"p" + CONTROL + PAYLOAD, 1, True)]
    assert decoder.buffered == 0


def test_normal_header_without_atom_cache() -> None:
    body = b"\x83D\x00" + CONTROL[1:] + PAYLOAD[1:]
    assert feed(frame(body), "whole") == [DistMessage(body, 3, False)]


def test_normal_header_with_atom_cache_is_refused() -> None:
    with pytest.raises(ProtocolError):
        feed(frame(b"\x83D\x01\x08\x00\x01a"), "whole")


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_fragments_are_reassembled(mode: str) -> None:
    data = (
        first_fragment(9, 3, b"AAA")
        + TICK_BYTES
        + first_fragment(10, 2, b"xx")
        + next_fragment(9, 2, b"BBB")
        + next_fragment(10, 1, b"yy")
        + next_fragment(9, 1, b"CC")
    )
    events = feed(data, mode)
    assert events == [Tick(), DistMessage(b"xxyy", 0, False), DistMessage(b"AAABBBCC", 0, False)]


def test_single_fragment_message() -> None:
    events = feed(first_fragment(1, 1, b"whole"), "whole")
    assert events == [DistMessage(b"\x83E" + struct.pack(">QQ", 1, 1) + b"\x00whole", 19, False)]


@pytest.mark.parametrize(
    "data",
    [
        next_fragment(5, 1, b"x"),  # unknown sequence
        first_fragment(5, 3, b"x") + next_fragment(5, 1, b"x"),  # skipped fragment 2
        first_fragment(5, 3, b"x") + first_fragment(5, 2, b"x"),  # started twice
        first_fragment(5, 0, b"x"),  # fragment id 0
        frame(b"\x83E" + struct.pack(">QQ", 1, 2) + b"\x02"),  # atom cache refs
        frame(b"\x83E\x00"),  # truncated
        frame(b"\x83F\x00"),  # truncated
        frame(b"\x83Z\x00"),  # unknown header
        frame(b"\x83"),  # truncated header
        frame(b"\x83D"),  # truncated normal header
        frame(b"q123"),  # unknown first byte
    ],
)
def test_bad_frames(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        feed(data, "whole")


def test_frame_size_limit() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.receive_data(struct.pack(">I", 101))  # refused from the length alone
    with pytest.raises(FrameTooLarge):
        decoder.next_event()
    assert feed(frame(b"p" + bytes(99)), "whole", max_frame_size=100)


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_a_fragmented_message_over_the_size_limit_is_refused_alone(mode: str) -> None:
    # Refused once it passes the limit (its bytes freed, its last fragment skipped); the next
    # message comes through.
    data = (
        first_fragment(1, 3, b"c" + bytes(59))
        + next_fragment(1, 2, bytes(60))
        + next_fragment(1, 1, bytes(60))
        + pass_through(CONTROL, PAYLOAD)
    )
    assert feed(data, mode, max_message_size=100) == [
        OversizedMessage(120, 100, b"c" + bytes(59)),  # the head: the bytes it held
        DistMessage(b"p" + CONTROL + PAYLOAD, 1, True),
    ]


def test_open_sequences_are_limited_by_their_bytes_not_their_count() -> None:
    # 300 small open sequences fit a budget of 100 KiB (there is no count limit) ...
    many = b"".join(first_fragment(seq, 2, b"x" * 10) for seq in range(300))
    decoder = FrameDecoder(max_buffered=100 * 1024)
    decoder.receive_data(many)
    assert drain(decoder) == []
    assert decoder.buffered == 300 * (10 + SEQUENCE_OVERHEAD)
    # ... and finishing them gives the budget back.
    decoder.receive_data(b"".join(next_fragment(seq, 1, b"y") for seq in range(300)))
    assert drain(decoder) == [DistMessage(b"x" * 10 + b"y", 0, False)] * 300
    assert decoder.buffered == 0
    # Bytes over the budget are refused, however they are spread over sequences.
    with pytest.raises(FrameTooLarge, match="input budget"):
        feed(b"".join(first_fragment(seq, 2, bytes(1000)) for seq in range(10)), "whole", max_buffered=5000)


def test_the_oldest_sequence_may_grow_to_the_message_limit_outside_the_budget() -> None:
    # One 51,000-byte message gets through a 10,000-byte budget; a second sequence cannot hold as much.
    decoder = FrameDecoder(max_frame_size=10_000, max_message_size=60_000, max_buffered=10_000)
    decoder.receive_data(first_fragment(1, 26, bytes(1000)) + first_fragment(2, 6, bytes(1000)))
    for frag in range(25, 1, -1):
        decoder.receive_data(next_fragment(1, frag, bytes(2000)))
    assert drain(decoder) == []
    decoder.receive_data(next_fragment(1, 1, bytes(2000)))
    assert drain(decoder) == [DistMessage(bytes(51000), 0, False)]
    # Sequence 2 is now the oldest: it may grow, and the others are charged again.
    decoder.receive_data(next_fragment(2, 5, bytes(9000)))
    assert drain(decoder) == []
    with pytest.raises(FrameTooLarge, match="input budget"):
        decoder.receive_data(first_fragment(3, 2, bytes(6000)) + first_fragment(4, 2, bytes(6000)))
        drain(decoder)


def test_a_frame_that_would_overflow_the_budget_is_refused_from_its_length() -> None:
    decoder = FrameDecoder(max_frame_size=10_000, max_buffered=10_000)
    decoder.receive_data(first_fragment(1, 2, bytes(100)))  # the oldest: not counted
    decoder.receive_data(first_fragment(2, 2, bytes(6000)))
    assert drain(decoder) == []
    decoder.receive_data(struct.pack(">I", 5000))  # 6,000 + 512 charged: 5,000 more do not fit
    with pytest.raises(FrameTooLarge, match="input budget"):
        decoder.next_event()


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_pass_through_is_refused_when_not_allowed(mode: str) -> None:
    with pytest.raises(ProtocolError, match="pass-through"):
        feed(pass_through(CONTROL, PAYLOAD), mode, pass_through=False)
    header = frame(b"\x83D\x00" + CONTROL[1:])
    assert feed(header, mode, pass_through=False) == [DistMessage(b"\x83D\x00" + CONTROL[1:], 3, False)]


def test_a_big_frame_gathered_over_several_reads_is_handed_on_without_a_copy() -> None:
    body = b"\x83D\x00" + bytes(2 << 20)
    data = frame(body) + TICK_BYTES
    decoder = FrameDecoder()
    for start in range(0, len(data), 65536):
        decoder.receive_data(data[start : start + 65536])
    (message, tick) = drain(decoder)
    assert tick == Tick()
    assert isinstance(message, DistMessage) and type(message.data) is bytearray
    assert message.data == body and message.offset == 3


def test_buffer_compaction_keeps_the_stream_intact() -> None:
    decoder = FrameDecoder()
    one = pass_through(CONTROL, b"\x83m" + struct.pack(">I", 1000) + bytes(1000))
    count = 0
    for _ in range(300):  # more than the compaction threshold in total
        decoder.receive_data(one[:500])
        count += len(drain(decoder))
        decoder.receive_data(one[500:])
        count += len(drain(decoder))
    assert count == 300 and decoder.buffered == 0
