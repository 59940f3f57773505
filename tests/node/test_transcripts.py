"""Replay byte transcripts captured from a real OTP 25 ``erl`` (see ``capture_transcripts.py``).

The bytes erl sent are fed to fresh handshake and connection objects (as recorded, all at once, byte
by byte, and with trailing bytes); our side is regenerated from the recorded metadata and must match
what we sent byte for byte. Every frame erl sent that was not fragmented re-encodes to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from philipjose.node import control as c
from philipjose.node import handshake as hs
from philipjose.node.connection import Connection
from philipjose.node.errors import AuthenticationError
from philipjose.node.framing import Tick
from philipjose.node.sentinels import NEED_DATA
from philipjose.term import Atom, ImproperList, Pid, Reference

DATA = Path(__file__).parent / "data"


@dataclass
class Transcript:
    meta: dict[str, str]
    records: list[tuple[str, bytes]]

    @property
    def cookie(self) -> bytes:
        return self.meta["cookie"].encode()

    @property
    def received(self) -> list[bytes]:
        return [data for way, data in self.records if way == "<"]

    @property
    def sent(self) -> list[bytes]:
        return [data for way, data in self.records if way == ">"]


def load(name: str) -> Transcript:
    meta: dict[str, str] = {}
    records: list[tuple[str, bytes]] = []
    for line in (DATA / name).read_text().splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(" ")
            meta[key] = value
        elif line[:2] in ("< ", "> "):
            records.append((line[0], bytes.fromhex(line[2:])))
    return Transcript(meta, records)


def pieces(chunks: list[bytes], mode: str) -> list[bytes]:
    data = b"".join(chunks)
    if mode == "recorded":
        return chunks
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    raise AssertionError(mode)


def handshake_then_stream(t: Transcript, *, initiator: bool) -> tuple[hs.Handshake, bytes, bytes]:
    """Run our side of the recorded handshake; return the machine, our sent bytes, erl's leftover."""
    machine = hs.Handshake(initiator=initiator, cookie=t.cookie)
    ours = b""
    incoming = b"".join(t.received)
    name, flags, creation = t.meta["our_name"], int(t.meta["our_flags"]), int(t.meta["our_creation"])
    challenge = int(t.meta["challenge"])
    if initiator:
        ours += machine.send(hs.SendName(name, flags, creation))
    machine.receive_data(incoming)
    while machine.state is not hs.CONNECTED:
        state = machine.state
        if state is hs.SEND_STATUS:
            ours += machine.send(hs.Status("ok"))
        elif state is hs.SEND_CHALLENGE:
            ours += machine.send(hs.Challenge(name, flags, challenge, creation))
        elif state is hs.SEND_CHALLENGE_REPLY:
            ours += machine.send(machine.challenge_reply(challenge))
        elif state is hs.SEND_CHALLENGE_ACK:
            ours += machine.send(machine.challenge_ack())
        else:
            assert machine.next_event() is not NEED_DATA, f"transcript ends in {state}"
    return machine, ours, machine.trailing_data


def events_of(flags: int, chunks: list[bytes]) -> list[object]:
    conn = Connection(flags)
    events: list[object] = []
    for piece in chunks:
        conn.receive_data(piece)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
    return events


# ---------------------------------------------------------------------------------------------
# erl connects to us.


def test_accept_handshake_matches_what_we_sent() -> None:
    t = load("accept.hex")
    machine, ours, _ = handshake_then_stream(t, initiator=False)
    assert ours == b"".join(t.sent)
    assert machine.peer.name == t.meta["peer_name"]
    assert machine.peer.version == 6


@pytest.mark.parametrize("mode", ["recorded", "whole", "bytewise"])
def test_accept_handshake_fed_in_pieces(mode: str) -> None:
    t = load("accept.hex")
    machine = hs.Handshake(initiator=False, cookie=t.cookie)
    flags, creation = int(t.meta["our_flags"]), int(t.meta["our_creation"])
    handshake_bytes = t.received[:2]  # the name, then the challenge reply
    events = []
    for piece in pieces(handshake_bytes, mode):
        machine.receive_data(piece)
        while machine.state is not hs.SEND_CHALLENGE_ACK and (event := machine.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, hs.SendName):
                machine.send(hs.Status("ok"))
                machine.send(hs.Challenge(t.meta["our_name"], flags, int(t.meta["challenge"]), creation))
    assert [type(e) for e in events] == [hs.SendName, hs.ChallengeReply]
    assert machine.state is hs.SEND_CHALLENGE_ACK


@pytest.mark.parametrize("mode", ["recorded", "whole", "bytewise"])
def test_accept_stream_decodes_every_control_message(mode: str) -> None:
    t = load("accept.hex")
    machine, _, rest = handshake_then_stream(t, initiator=False)
    events = events_of(machine.flags, pieces([rest], "whole") if mode == "whole" else pieces([rest], mode))
    assert any(isinstance(e, Tick) for e in events)
    controls = [e for e in events if not isinstance(e, Tick)]
    kinds = [type(e).__name__ for e in controls]
    assert kinds == [
        "RegSend",
        "RegSend",
        "Send",
        "Link",
        "UnlinkId",
        "MonitorP",
        "DemonitorP",
        "MonitorP",
        "Exit2",
        "Link",
        "Exit",
        "AliasSend",
        "SpawnRequest",
        "RegSend",
        "MonitorP",
        "RegSend",
        "RegSend",
    ]
    me = t.meta["our_name"]
    erl = t.meta["peer_name"]
    hello, kinds_msg, via_pid, link, unlink, mon, demon, mon_name, exit2, link2, exit_, alias = controls[:12]
    spawn, big, mon_nk, gen_call, done = controls[12:]
    assert isinstance(hello, c.RegSend) and hello.to == Atom("sink") and hello.message == Atom("hello")
    assert hello.sender.node == Atom(erl)
    assert isinstance(kinds_msg, c.RegSend)
    terms, erl_pid, erl_ref = kinds_msg.message
    assert terms[:4] == [1, 2.5, -7, 1 << 70]
    assert terms[4] == b"bin" and terms[6] == list(b"str") and terms[7] == Atom("atöm")
    assert terms[8] == {Atom("k"): Atom("v")}
    assert isinstance(erl_pid, Pid) and isinstance(erl_ref, Reference)
    assert isinstance(via_pid, c.Send) and via_pid.to.node == Atom(me) and via_pid.sender == erl_pid
    assert via_pid.message == (erl_pid, Atom("via_pid"))
    assert isinstance(link, c.Link) and link.sender == erl_pid and link.to == via_pid.to
    assert isinstance(unlink, c.UnlinkId) and unlink.id > 0
    assert isinstance(mon, c.MonitorP) and isinstance(demon, c.DemonitorP) and mon.ref == demon.ref
    assert isinstance(mon_name, c.MonitorP) and mon_name.target == Atom("sink")
    assert isinstance(exit2, c.Exit2) and exit2.reason == Atom("kill")
    assert isinstance(link2, c.Link) and isinstance(exit_, c.Exit)
    assert exit_.sender == link2.sender and exit_.reason == Atom("boom")
    assert isinstance(alias, c.AliasSend) and alias.alias.ids == (1, 2, 3)
    assert alias.message == Atom("via_alias")
    assert isinstance(spawn, c.SpawnRequest)
    assert (spawn.module, spawn.function, spawn.arity, spawn.args) == (
        Atom("lists"),
        Atom("reverse"),
        1,
        [[1, 2]],
    )
    assert isinstance(big, c.RegSend) and big.message == bytes([7]) * 140000
    assert isinstance(mon_nk, c.MonitorP) and mon_nk.target == Atom("net_kernel")
    assert isinstance(gen_call, c.RegSend) and gen_call.to == Atom("net_kernel")
    tag, (caller, reply_tag), request = gen_call.message
    assert tag == Atom("$gen_call") and caller == gen_call.sender
    assert isinstance(reply_tag, ImproperList) and reply_tag.elements == (Atom("alias"),)
    assert reply_tag.tail == mon_nk.ref  # OTP 25 calls: the monitor reference is the alias
    assert request == (Atom("is_auth"), Atom(erl))
    assert isinstance(done, c.RegSend) and done.message == Atom("done")


def test_accept_stream_with_trailing_partial_frame() -> None:
    t = load("accept.hex")
    machine, _, rest = handshake_then_stream(t, initiator=False)
    conn = Connection(machine.flags)
    conn.receive_data(rest + rest[:9])  # the start of one more frame
    count = 0
    while conn.next_event() is not NEED_DATA:
        count += 1
    assert count > 17
    assert conn.next_event() is NEED_DATA


def test_erl_frames_reencode_byte_for_byte() -> None:
    for name in ("accept.hex", "connect.hex"):
        t = load(name)
        machine, _, rest = handshake_then_stream(t, initiator=name == "connect.hex")
        conn = Connection(machine.flags)
        pos = 0
        checked = 0
        while pos < len(rest):
            length = int.from_bytes(rest[pos : pos + 4], "big")
            frame = rest[pos : pos + 4 + length]
            pos += 4 + length
            conn.receive_data(frame)
            event = conn.next_event()
            if length and frame[5] == ord("D"):  # not a tick, not fragmented
                assert not isinstance(event, Tick)
                assert conn.send(event) == frame, event  # type: ignore[arg-type]
                checked += 1
        assert checked >= 8


def test_accept_wrong_cookie_is_refused() -> None:
    t = load("accept_wrong_cookie.hex")
    machine = hs.Handshake(initiator=False, cookie=t.cookie)
    machine.receive_data(b"".join(t.received))
    assert isinstance(machine.next_event(), hs.SendName)
    machine.send(hs.Status("ok"))
    flags, creation = int(t.meta["our_flags"]), int(t.meta["our_creation"])
    machine.send(hs.Challenge(t.meta["our_name"], flags, int(t.meta["challenge"]), creation))
    with pytest.raises(AuthenticationError):
        machine.next_event()


# ---------------------------------------------------------------------------------------------
# We connect to erl.


def test_connect_handshake_and_our_frames_match() -> None:
    t = load("connect.hex")
    machine, ours, rest = handshake_then_stream(t, initiator=True)
    sent = b"".join(t.sent)
    assert sent.startswith(ours)
    assert machine.peer.name.startswith("erlcap@")
    # Everything we sent after the handshake decodes, and re-encodes to the same bytes.
    ours_after = sent[len(ours) :]
    for event in events_of(machine.flags, [ours_after]):
        assert not isinstance(event, Tick)
    assert (
        b"".join(
            Connection(machine.flags).send(e)  # type: ignore[arg-type]
            for e in events_of(machine.flags, [ours_after])
        )
        == ours_after
    )
    assert rest  # erl's answers follow the ack


@pytest.mark.parametrize("mode", ["recorded", "whole", "bytewise"])
def test_connect_stream_decodes_erl_answers(mode: str) -> None:
    t = load("connect.hex")
    machine, _, _ = handshake_then_stream(t, initiator=True)
    # Rebuild erl's post-handshake chunks as recorded (the ack may share a chunk with nothing else).
    recorded = t.received
    total = b"".join(recorded)
    rest = machine.trailing_data
    post = [total[len(total) - len(rest) :]]
    if mode == "recorded":
        post = []
        consumed = len(total) - len(rest)
        seen = 0
        for chunk in recorded:
            if seen + len(chunk) > consumed:
                post.append(chunk[max(0, consumed - seen) :])
            seen += len(chunk)
    events = [e for e in events_of(machine.flags, pieces(post, mode)) if not isinstance(e, Tick)]
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "Send",
        "MonitorPExit",
        "Send",
        "Exit",
        "MonitorPExit",
        "Send",
        "UnlinkIdAck",
        "SpawnReply",
    ]
    echo, noproc, _, exit_, down, _, ack, spawned = events
    assert isinstance(echo, c.Send) and echo.message == (Atom("echo"), [1, b"two", 3.0])
    assert isinstance(noproc, c.MonitorPExit) and noproc.target == Atom("no_such_name")
    assert noproc.reason == Atom("noproc")
    assert isinstance(exit_, c.Exit) and exit_.reason == Atom("bye")
    assert isinstance(down, c.MonitorPExit) and down.reason == Atom("bye") and down.target == exit_.sender
    assert isinstance(ack, c.UnlinkIdAck) and ack.id == 7
    assert isinstance(spawned, c.SpawnReply) and isinstance(spawned.result, Pid)


def test_connect_wrong_cookie_gets_no_ack() -> None:
    t = load("connect_wrong_cookie.hex")
    machine = hs.Handshake(initiator=True, cookie=t.cookie)
    machine.send(hs.SendName(t.meta["our_name"], int(t.meta["our_flags"]), int(t.meta["our_creation"])))
    machine.receive_data(b"".join(t.received))
    assert machine.next_event() == hs.Status("ok")
    assert isinstance(machine.next_event(), hs.Challenge)
    machine.send(machine.challenge_reply(int(t.meta["challenge"])))
    assert machine.next_event() is NEED_DATA  # erl closed the connection instead of acking
    assert machine.state is hs.RECV_CHALLENGE_ACK
