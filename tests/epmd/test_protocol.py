"""The sans-I/O EPMD codec: bytes fed whole, one byte at a time, and with trailing data."""

from __future__ import annotations

import struct
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from philipjose.epmd import EpmdProtocolError
from philipjose.epmd.protocol import (
    AWAIT_REPLY,
    AWAIT_REQUEST,
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    NEED_DATA,
    REGISTERED,
    SEND_REPLY,
    Alive2Reply,
    Alive2Request,
    ClientConnection,
    ConnectionClosed,
    DumpReply,
    DumpRequest,
    KillReply,
    KillRequest,
    NamesReply,
    NamesRequest,
    NodeInfo,
    PortPleaseRequest,
    PortReply,
    Reply,
    Request,
    ServerConnection,
    StopReply,
    StopRequest,
)

# ALIVE2_REQ for `erl -sname a` listening on port 40000, built by hand from the
# ERTS guide's layout: tag, port, 'M', protocol 0, versions 6 and 5, name, empty extra. Bytes
# captured from a real erl are replayed in test_erl_nodes.py.
ERL_ALIVE2 = bytes.fromhex("000e" + "78" + "9c40" + "4d" + "00" + "0006" + "0005" + "0001" + "61" + "0000")

REQUESTS: list[Request] = [
    Alive2Request("a", 40000),
    Alive2Request("node_é", 1, node_type=72, protocol=0, highest_version=5, lowest_version=5, extra=b"xy"),
    PortPleaseRequest("a"),
    NamesRequest(),
    DumpRequest(),
    KillRequest(),
    StopRequest("gone"),
]

REPLIES: list[tuple[Request, Reply]] = [
    (Alive2Request("a", 1), Alive2Reply(0, 0xDEADBEEF)),
    (Alive2Request("a", 1, highest_version=5), Alive2Reply(0, 3, extended=False)),
    (Alive2Request("a", 1), Alive2Reply(1, 99)),
    (PortPleaseRequest("a"), PortReply(0, NodeInfo("a", 40000, extra=b"\x00\x01"))),
    (PortPleaseRequest("a"), PortReply(1)),
    (NamesRequest(), NamesReply(4369, (("a", 40000), ("b_c", 1)))),
    (NamesRequest(), NamesReply(4369)),
    (DumpRequest(), DumpReply(4369, "active name     <a> at port 1, fd = 3\n\x00")),
    (KillRequest(), KillReply(True)),
    (KillRequest(), KillReply(False)),
    (StopRequest("a"), StopReply(True)),
    (StopRequest("a"), StopReply(False)),
]


def _chunks(data: bytes, mode: str) -> Iterable[bytes]:
    if mode == "whole":
        return [data]
    return [data[i : i + 1] for i in range(len(data))]


def _server_events(data: bytes, mode: str, *, eof: bool = False) -> list[object]:
    conn = ServerConnection()
    events: list[object] = []
    for chunk in [*_chunks(data, mode), *([b""] if eof else [])]:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, ConnectionClosed) or conn.state is SEND_REPLY:
                break
    return events


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_server_parses_each_request(request_: Request, mode: str) -> None:
    conn = ServerConnection()
    assert conn.state is AWAIT_REQUEST
    seen: list[object] = []
    for chunk in _chunks(request_.encode(), mode):
        assert conn.next_event() is NEED_DATA
        conn.receive_data(chunk)
    seen.append(conn.next_event())
    assert seen == [request_]
    assert conn.state is SEND_REPLY


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
@pytest.mark.parametrize(("request_", "reply"), REPLIES, ids=lambda r: type(r).__name__)
def test_client_parses_each_reply(request_: Request, reply: Reply, mode: str) -> None:
    conn = ClientConnection()
    assert conn.state is IDLE
    assert conn.send(request_) == request_.encode()
    assert conn.state is AWAIT_REPLY
    got: object = NEED_DATA
    for chunk in _chunks(reply.encode(), mode):
        conn.receive_data(chunk)
        got = conn.next_event()
    if isinstance(reply, NamesReply | DumpReply):
        assert got is NEED_DATA  # these end when the server closes
        conn.receive_data(b"")
        got = conn.next_event()
    assert got == reply
    expected_state = REGISTERED if isinstance(reply, Alive2Reply) and reply.ok else DONE
    if not isinstance(reply, NamesReply | DumpReply):
        assert conn.state is expected_state
        conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.state is CLOSED


def test_real_erl_alive2_bytes() -> None:
    [event] = _server_events(ERL_ALIVE2, "whole")
    assert event == Alive2Request("a", 40000, 77, 0, 6, 5, b"")
    assert Alive2Request("a", 40000).encode() == ERL_ALIVE2


def test_version5_alive2_reply_understood() -> None:
    conn = ClientConnection()
    conn.send(Alive2Request("a", 1, highest_version=5))
    conn.receive_data(bytes([121, 0, 0, 2]))  # ALIVE2_RESP, result 0, 16-bit creation 2
    assert conn.next_event() == Alive2Reply(0, 2, extended=False)
    assert conn.state is REGISTERED


def test_server_answers_version_by_request() -> None:
    assert Alive2Reply(0, 7).encode() == bytes([118, 0, 0, 0, 0, 7])
    assert Alive2Reply(0, 2, extended=False).encode() == bytes([121, 0, 0, 2])


def test_names_reply_exact_epmd_text() -> None:
    data = NamesReply(4369, (("a", 40000), ("bb", 5))).encode()
    assert data == struct.pack(">I", 4369) + b"name a at port 40000\nname bb at port 5\n"


def test_port_please_tolerates_nul_terminated_name() -> None:
    [event] = _server_events(b"\x00\x03za\x00", "whole")
    assert event == PortPleaseRequest("a")


# --- trailing data ------------------------------------------------------------------------------


def test_server_ignores_bytes_after_one_shot_request() -> None:
    conn = ServerConnection()
    conn.receive_data(NamesRequest().encode() + b"junk after")
    assert conn.next_event() == NamesRequest()
    assert conn.next_event() is NEED_DATA  # ignored, like epmd
    conn.send(NamesReply(1))
    assert conn.state is DONE


def test_server_drops_registration_on_trailing_bytes() -> None:
    conn = ServerConnection()
    conn.receive_data(Alive2Request("a", 1).encode() + b"x")
    assert conn.next_event() == Alive2Request("a", 1)
    conn.send(Alive2Reply(0, 5))
    assert conn.state is REGISTERED
    with pytest.raises(EpmdProtocolError):
        conn.next_event()
    assert conn.state is ERROR
    with pytest.raises(EpmdProtocolError):
        conn.next_event()


def test_server_registration_ends_on_close() -> None:
    conn = ServerConnection()
    conn.receive_data(Alive2Request("a", 1).encode())
    conn.next_event()
    conn.send(Alive2Reply(0, 5))
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.state is CLOSED


def test_client_rejects_bytes_after_reply() -> None:
    conn = ClientConnection()
    conn.send(PortPleaseRequest("a"))
    conn.receive_data(PortReply(1).encode() + b"\x00")
    assert conn.next_event() == PortReply(1)
    with pytest.raises(EpmdProtocolError):
        conn.next_event()


def test_client_rejects_bytes_on_registration() -> None:
    conn = ClientConnection()
    conn.send(Alive2Request("a", 1))
    conn.receive_data(Alive2Reply(0, 9).encode() + b"?")
    assert conn.next_event() == Alive2Reply(0, 9)
    with pytest.raises(EpmdProtocolError):
        conn.next_event()


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # zero length
        b"\xff\xff",  # longer than any request
        b"\x00\x01\x01",  # unknown tag
        b"\x00\x05x\x00\x01\x4d\x00",  # ALIVE2 too short
        b"\x00\x0ex\x9c\x40\x4d\x00\x00\x06\x00\x05\x00\x09ab\x00\x00",  # name longer than the packet
        b"\x00\x0ex\x9c\x40\x4d\x00\x00\x06\x00\x05\x00\x01a\x00\x09",  # extra longer than the packet
        b"\x00\x0cx\x9c\x40\x4d\x00\x00\x06\x00\x05\x00\x00\x00\x00",  # empty name
        b"\x00\x03z\xff\xfe",  # name not UTF-8
        b"\x00\x04za\x00b",  # NUL inside the name
        b"\x00\x01z",  # empty name
    ],
)
def test_server_rejects_malformed_requests(data: bytes) -> None:
    conn = ServerConnection()
    conn.receive_data(data)
    with pytest.raises(EpmdProtocolError):
        while conn.next_event() is not NEED_DATA:
            pass
        conn.receive_data(b"")
        conn.next_event()
    assert conn.state is ERROR


def test_server_rejects_close_mid_request() -> None:
    conn = ServerConnection()
    conn.receive_data(b"\x00\x05x\x00")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(EpmdProtocolError):
        conn.next_event()


def test_server_close_before_request_is_normal() -> None:
    conn = ServerConnection()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


@pytest.mark.parametrize(
    ("request_", "data"),
    [
        (Alive2Request("a", 1), b"\x7a\x00\x00\x00"),  # wrong tag
        (PortPleaseRequest("a"), b"\x77\x00\x00\x01\x4d\x00\x00\x06\x00\x05\xff\xff"),  # name length
        (KillRequest(), b"MAYBE"),
        (StopRequest("a"), b"GARBAGE"),
        (NamesRequest(), b"\x00\x00\x11\x11name a at port x\n"),
        (NamesRequest(), b"\x00\x00\x11\x11name a at port 1"),  # no final newline
        (NamesRequest(), b"\x00\x00"),  # shorter than the port
    ],
)
def test_client_rejects_malformed_replies(request_: Request, data: bytes) -> None:
    conn = ClientConnection()
    conn.send(request_)
    conn.receive_data(data)
    conn.receive_data(b"")
    with pytest.raises(EpmdProtocolError):
        conn.next_event()


def test_client_reply_size_is_capped() -> None:
    conn = ClientConnection(max_text_reply=100)
    conn.send(NamesRequest())
    conn.receive_data(b"\x00\x00\x11\x11" + b"name a at port 1\n" * 10)
    with pytest.raises(EpmdProtocolError):
        conn.next_event()


def test_client_close_without_reply() -> None:
    conn = ClientConnection()
    conn.send(Alive2Request("a", 1))
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


def test_client_close_mid_reply_is_an_error() -> None:
    conn = ClientConnection()
    conn.send(Alive2Request("a", 1))
    conn.receive_data(b"\x76\x00")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(EpmdProtocolError):
        conn.next_event()


# --- the caller's mistakes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Alive2Request("", 1),
        lambda: Alive2Request("a\x00b", 1),
        lambda: Alive2Request("a", 70000),
        lambda: Alive2Request("a", 1, node_type=300),
        lambda: Alive2Request("a" * 1021, 1),
        lambda: Alive2Request("a", 1, extra=b"x" * 1021),
        lambda: Alive2Reply(0, 1 << 16, extended=False),
        lambda: PortReply(0),
        lambda: PortReply(1, NodeInfo("a", 1)),
    ],
)
def test_bad_values_are_value_errors(make: object) -> None:
    with pytest.raises(ValueError) as info:
        make()  # type: ignore[operator]
    assert not isinstance(info.value, EpmdProtocolError)


def test_wrong_state_and_wrong_reply_type() -> None:
    client = ClientConnection()
    with pytest.raises(RuntimeError):
        client.next_event()
    client.send(NamesRequest())
    with pytest.raises(RuntimeError):
        client.send(NamesRequest())
    server = ServerConnection()
    with pytest.raises(RuntimeError):
        server.send(KillReply(True))
    server.receive_data(KillRequest().encode())
    server.next_event()
    with pytest.raises(TypeError):
        server.send(StopReply(True))


# --- round trips over arbitrary values and splits ----------------------------------------------

_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n"),
    min_size=1,
    max_size=40,
).filter(lambda s: " at port " not in s)


@given(
    name=_names,
    port=st.integers(0, 65535),
    high=st.integers(0, 65535),
    extra=st.binary(max_size=64),
    cut=st.integers(0, 200),
)
def test_alive2_round_trip_at_any_split(name: str, port: int, high: int, extra: bytes, cut: int) -> None:
    request = Alive2Request(name, port, highest_version=high, extra=extra)
    data = request.encode()
    cut = min(cut, len(data))
    events = _server_events(data[:cut], "whole") + _server_events(data, "bytewise")
    assert events[-1] == request


@given(entries=st.lists(st.tuples(_names, st.integers(0, 65535)), max_size=10), cut=st.integers(0, 500))
def test_names_round_trip(entries: list[tuple[str, int]], cut: int) -> None:
    reply = NamesReply(4369, tuple(entries))
    data = reply.encode()
    conn = ClientConnection()
    conn.send(NamesRequest())
    for chunk in (data[:cut], data[cut:]):
        if chunk:
            conn.receive_data(chunk)
    conn.receive_data(b"")
    assert conn.next_event() == reply


@given(data=st.binary(max_size=64))
def test_server_never_crashes_on_junk(data: bytes) -> None:
    conn = ServerConnection()
    conn.receive_data(data)
    conn.receive_data(b"")
    try:
        while True:
            event = conn.next_event()
            if event is NEED_DATA or isinstance(event, ConnectionClosed) or conn.state is SEND_REPLY:
                break
    except EpmdProtocolError:
        assert conn.state is ERROR


def test_codec_modules_do_no_io() -> None:
    """protocol.py, registry.py and errors.py import neither trio nor socket."""
    import ast
    from pathlib import Path

    import philipjose.epmd as package

    root = Path(package.__file__).parent
    for module in ("protocol.py", "registry.py", "errors.py"):
        tree = ast.parse((root / module).read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not imported & {"trio", "socket", "asyncio", "select"}, module
