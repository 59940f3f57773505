"""EPMD messages and sans-I/O connections: bytes in, events out, events in, bytes out. No I/O here.

The Erlang Port Mapper Daemon maps node names ("alive" names, the part before ``@``) to the TCP
ports their distribution listens on. Facts from the ERTS guide *Distribution Protocol* and OTP's
``epmd_srv.c``:

- Every request is a 2-byte big-endian length, then that many bytes; the first is the tag.
  Replies carry no length prefix: each side must know which request was asked.
- ``ALIVE2_REQ`` (120) registers a node: port(2) node_type(1) protocol(1) highest_version(2)
  lowest_version(2) name_len(2) name extra_len(2) extra. The reply is ``ALIVE2_X_RESP`` (118):
  result(1) creation(4) when the request's highest version is 6 or more, else ``ALIVE2_RESP`` (121):
  result(1) creation(2). Result 0 is success. The registration lives while that TCP connection stays
  open; the registering side must send nothing more.
- ``PORT_PLEASE2_REQ`` (122) name -> ``PORT2_RESP`` (119) result(1), and on success the same fields
  as ALIVE2_REQ (port, type, protocol, versions, name, extra).
- ``NAMES_REQ`` (110) -> the EPMD port as 4 bytes, then ``"name %s at port %d\\n"`` per node, until
  the server closes. ``DUMP_REQ`` (100) is the same with a more verbose text. ``KILL_REQ`` (107) ->
  ``"OK"`` or ``"NO"``. ``STOP_REQ`` (115) name -> ``"STOPPED"`` or ``"NOEXIST"``.

Limits (as in epmd): a name is at most 1020 bytes of UTF-8 (255 characters are enforced by the
server's registry), extra at most 1020 bytes, a request at most 3060 bytes; a NAMES/DUMP reply read
by :class:`ClientConnection` at most ``max_text_reply`` bytes (1 MiB by default).
"""

# Theory of operation
# -------------------
# One EPMD conversation is one TCP connection carrying one request and one reply. Both sides are
# state machines fed with ``receive_data(bytes)`` (``b""`` means the peer closed) and polled with
# ``next_event()``, which returns an event or ``NEED_DATA``. Outgoing messages go through
# ``send(message) -> bytes``, which also advances the state.
#
#   ClientConnection:  IDLE --send(request)--> AWAIT_REPLY --reply--> DONE
#                                                          \-Alive2Reply(result=0)--> REGISTERED
#   ServerConnection:  AWAIT_REQUEST --request--> SEND_REPLY --send(reply)--> DONE
#                                                             \-send(Alive2Reply ok)--> REGISTERED
#   either side:       ... --peer closes (b"")--> ConnectionClosed, CLOSED;   any error --> ERROR
#
# The client knows which reply to expect from the request it sent; a NAMES or DUMP reply ends only
# when the server closes, so it is produced after ``receive_data(b"")``. Once DONE or REGISTERED,
# any further byte from the server is a protocol error. On the server, bytes after a request are
# ignored (epmd closes one-shot connections after replying) except on a REGISTERED connection, where
# they are a protocol error: real epmd drops the registration when the node sends anything more.
# Lengths read off the wire are checked against the limits before waiting for or slicing the body.

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from philipjose.epmd.errors import EpmdProtocolError

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "AWAIT_REPLY",
    "AWAIT_REQUEST",
    "CLOSED",
    "DONE",
    "DUMP_REQ",
    "ERROR",
    "IDLE",
    "KILL_REQ",
    "MAX_EXTRA_BYTES",
    "MAX_NAME_BYTES",
    "MAX_REQUEST_BYTES",
    "NAMES_REQ",
    "NEED_DATA",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "REGISTERED",
    "SEND_REPLY",
    "STOP_REQ",
    "Alive2Reply",
    "Alive2Request",
    "ClientConnection",
    "ConnectionClosed",
    "DumpReply",
    "DumpRequest",
    "KillReply",
    "KillRequest",
    "NamesReply",
    "NamesRequest",
    "NodeInfo",
    "PortPleaseRequest",
    "PortReply",
    "Reply",
    "Request",
    "ServerConnection",
    "State",
    "StopReply",
    "StopRequest",
]

# Tags, named as in OTP's epmd.h.
ALIVE2_REQ = 120  # 'x'
ALIVE2_X_RESP = 118  # 'v'
ALIVE2_RESP = 121  # 'y'
PORT_PLEASE2_REQ = 122  # 'z'
PORT2_RESP = 119  # 'w'
NAMES_REQ = 110  # 'n'
DUMP_REQ = 100  # 'd'
KILL_REQ = 107  # 'k'
STOP_REQ = 115  # 's'

NODE_TYPE_NORMAL = 77  # 'M', a normal Erlang node
NODE_TYPE_HIDDEN = 72  # 'H', a hidden node (C node, ...)

MAX_NAME_BYTES = 255 * 4
MAX_EXTRA_BYTES = 255 * 4
MAX_REQUEST_BYTES = 3 * MAX_NAME_BYTES
MAX_TEXT_REPLY = 1 << 20

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_ALIVE2_HEAD = struct.Struct(">BHBBHHH")  # tag port type protocol high low name_len
_PORT2_HEAD = struct.Struct(">BBHBBHHH")  # tag result port type protocol high low name_len


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Literal[_NeedData.NEED_DATA] = _NeedData.NEED_DATA
"""Returned by ``next_event()`` when more bytes (or the peer's close) are needed."""


class State(enum.Enum):
    """States of :class:`ClientConnection` and :class:`ServerConnection`."""

    IDLE = "IDLE"
    AWAIT_REPLY = "AWAIT_REPLY"
    AWAIT_REQUEST = "AWAIT_REQUEST"
    SEND_REPLY = "SEND_REPLY"
    REGISTERED = "REGISTERED"
    DONE = "DONE"
    CLOSED = "CLOSED"
    ERROR = "ERROR"

    def __repr__(self) -> str:
        return self.value


IDLE = State.IDLE
AWAIT_REPLY = State.AWAIT_REPLY
AWAIT_REQUEST = State.AWAIT_REQUEST
SEND_REPLY = State.SEND_REPLY
REGISTERED = State.REGISTERED
DONE = State.DONE
CLOSED = State.CLOSED
ERROR = State.ERROR


# ---------------------------------------------------------------------------------------------------
# Validation helpers (the caller's fault -> ValueError; decoders check first and raise the peer's
# fault, EpmdProtocolError, before building anything).


def _check_uint(what: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError(f"{what} must be an integer in 0..{(1 << bits) - 1}, not {value!r}")


def _check_name(name: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"node name must be str, not {type(name).__name__}")
    raw = name.encode("utf-8")
    if not raw or "\x00" in name or len(raw) > MAX_NAME_BYTES:
        raise ValueError(f"node name must be 1..{MAX_NAME_BYTES} bytes of UTF-8 without NUL: {name!r}")
    return raw


def _check_extra(extra: bytes) -> None:
    if not isinstance(extra, bytes) or len(extra) > MAX_EXTRA_BYTES:
        raise ValueError(f"extra must be bytes of at most {MAX_EXTRA_BYTES} bytes")


def _decode_name(raw: bytes) -> str:
    if not raw or b"\x00" in raw:
        raise EpmdProtocolError("empty node name or node name containing NUL")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EpmdProtocolError(f"node name is not valid UTF-8: {raw!r}") from exc


def _frame(body: bytes) -> bytes:
    return _U16.pack(len(body)) + body


# ---------------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What EPMD knows about a registered node (``PORT2_RESP``'s fields).

    ``name`` is the alive name (before ``@``); ``port`` its distribution port; ``node_type`` 77 for a
    normal node, 72 for a hidden one; ``protocol`` 0 for TCP/IPv4; versions are distribution protocol
    versions (OTP 23+ is 6, older 5); ``extra`` is opaque.
    """

    name: str
    port: int
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 5
    extra: bytes = b""

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_uint("port", self.port, 16)
        _check_uint("node_type", self.node_type, 8)
        _check_uint("protocol", self.protocol, 8)
        _check_uint("highest_version", self.highest_version, 16)
        _check_uint("lowest_version", self.lowest_version, 16)
        _check_extra(self.extra)

    def _fields(self) -> bytes:
        name = self.name.encode("utf-8")
        return (
            struct.pack(
                ">HBBHHH",
                self.port,
                self.node_type,
                self.protocol,
                self.highest_version,
                self.lowest_version,
                len(name),
            )
            + name
            + _U16.pack(len(self.extra))
            + self.extra
        )


@dataclass(frozen=True, slots=True)
class Alive2Request:
    """``ALIVE2_REQ``: register ``name`` at distribution ``port`` (see :class:`NodeInfo`)."""

    name: str
    port: int
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 5
    extra: bytes = b""

    def __post_init__(self) -> None:
        self.info  # noqa: B018 -- validates every field

    @property
    def info(self) -> NodeInfo:
        """The registration as a :class:`NodeInfo` (what PORT_PLEASE2 will answer)."""
        return NodeInfo(
            self.name,
            self.port,
            self.node_type,
            self.protocol,
            self.highest_version,
            self.lowest_version,
            self.extra,
        )

    def encode(self) -> bytes:
        """The request as sent on the wire, length prefix included."""
        return _frame(bytes([ALIVE2_REQ]) + self.info._fields())


@dataclass(frozen=True, slots=True)
class Alive2Reply:
    """``ALIVE2_X_RESP`` (``extended=True``, 32-bit creation) or ``ALIVE2_RESP`` (16-bit creation).

    ``result`` 0 means registered; anything else is a refusal (epmd uses 1, creation 99).
    """

    result: int
    creation: int
    extended: bool = True

    def __post_init__(self) -> None:
        _check_uint("result", self.result, 8)
        _check_uint("creation", self.creation, 32 if self.extended else 16)

    @property
    def ok(self) -> bool:
        return self.result == 0

    def encode(self) -> bytes:
        if self.extended:
            return struct.pack(">BBI", ALIVE2_X_RESP, self.result, self.creation)
        return struct.pack(">BBH", ALIVE2_RESP, self.result, self.creation)


@dataclass(frozen=True, slots=True)
class PortPleaseRequest:
    """``PORT_PLEASE2_REQ``: where does node ``name`` listen?"""

    name: str

    def __post_init__(self) -> None:
        _check_name(self.name)

    def encode(self) -> bytes:
        return _frame(bytes([PORT_PLEASE2_REQ]) + self.name.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class PortReply:
    """``PORT2_RESP``: ``result`` 0 with ``node`` set, or a non-zero result and ``node=None``."""

    result: int
    node: NodeInfo | None = None

    def __post_init__(self) -> None:
        _check_uint("result", self.result, 8)
        if (self.result == 0) != (self.node is not None):
            raise ValueError("a PortReply has a node exactly when its result is 0")

    def encode(self) -> bytes:
        head = bytes([PORT2_RESP, self.result])
        return head if self.node is None else head + self.node._fields()


@dataclass(frozen=True, slots=True)
class NamesRequest:
    """``NAMES_REQ``: list the registered names."""

    def encode(self) -> bytes:
        return _frame(bytes([NAMES_REQ]))


@dataclass(frozen=True, slots=True)
class NamesReply:
    """The answer to ``NAMES_REQ``: the EPMD's port and ``(name, port)`` of each registered node.

    On the wire: the port as 4 bytes, then ``"name %s at port %d\\n"`` per node (the format
    ``net_adm:names/0`` and ``epmd -names`` parse).
    """

    epmd_port: int
    names: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        _check_uint("epmd_port", self.epmd_port, 32)

    def encode(self) -> bytes:
        text = "".join(f"name {name} at port {port}\n" for name, port in self.names)
        return _U32.pack(self.epmd_port) + text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class DumpRequest:
    """``DUMP_REQ``: a diagnostic listing (epmd answers it to local peers only)."""

    def encode(self) -> bytes:
        return _frame(bytes([DUMP_REQ]))


@dataclass(frozen=True, slots=True)
class DumpReply:
    """The answer to ``DUMP_REQ``: the EPMD's port and free-form text (NUL-separated entries)."""

    epmd_port: int
    text: str = ""

    def __post_init__(self) -> None:
        _check_uint("epmd_port", self.epmd_port, 32)

    @property
    def lines(self) -> list[str]:
        """The text's non-empty lines, NULs removed."""
        return [line for line in self.text.replace("\x00", "").splitlines() if line.strip()]

    def encode(self) -> bytes:
        return _U32.pack(self.epmd_port) + self.text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class KillRequest:
    """``KILL_REQ``: ask EPMD to exit (refused while nodes are registered, unless relaxed)."""

    def encode(self) -> bytes:
        return _frame(bytes([KILL_REQ]))


@dataclass(frozen=True, slots=True)
class KillReply:
    """``"OK"`` (EPMD exits) or ``"NO"``."""

    ok: bool

    def encode(self) -> bytes:
        return b"OK" if self.ok else b"NO"


@dataclass(frozen=True, slots=True)
class StopRequest:
    """``STOP_REQ``: forcibly unregister ``name`` (only with ``relaxed_command_check``)."""

    name: str

    def __post_init__(self) -> None:
        _check_name(self.name)

    def encode(self) -> bytes:
        return _frame(bytes([STOP_REQ]) + self.name.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class StopReply:
    """``"STOPPED"`` or ``"NOEXIST"``."""

    stopped: bool

    def encode(self) -> bytes:
        return b"STOPPED" if self.stopped else b"NOEXIST"


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection (``receive_data(b"")``) at a point where that is normal."""


Request: TypeAlias = (
    Alive2Request | PortPleaseRequest | NamesRequest | DumpRequest | KillRequest | StopRequest
)
Reply: TypeAlias = Alive2Reply | PortReply | NamesReply | DumpReply | KillReply | StopReply

_REPLY_FOR: dict[type[Request], type[Reply]] = {
    Alive2Request: Alive2Reply,
    PortPleaseRequest: PortReply,
    NamesRequest: NamesReply,
    DumpRequest: DumpReply,
    KillRequest: KillReply,
    StopRequest: StopReply,
}


# ---------------------------------------------------------------------------------------------------
# Request decoding (server side): body = the bytes after the length prefix, tag first.


def _decode_alive2(body: bytes) -> Alive2Request:
    if len(body) < _ALIVE2_HEAD.size + 2 + 1:
        raise EpmdProtocolError(f"ALIVE2_REQ too short ({len(body)} bytes)")
    _, port, node_type, protocol, high, low, name_len = _ALIVE2_HEAD.unpack_from(body)
    name_end = _ALIVE2_HEAD.size + name_len
    if name_len == 0 or name_len > MAX_NAME_BYTES or name_end + 2 > len(body):
        raise EpmdProtocolError(f"bad node name length {name_len} in ALIVE2_REQ")
    (extra_len,) = _U16.unpack_from(body, name_end)
    if extra_len > MAX_EXTRA_BYTES or name_end + 2 + extra_len > len(body):
        raise EpmdProtocolError(f"bad extra length {extra_len} in ALIVE2_REQ")
    name = _decode_name(body[_ALIVE2_HEAD.size : name_end])
    extra = body[name_end + 2 : name_end + 2 + extra_len]
    return Alive2Request(name, port, node_type, protocol, high, low, extra)


def _decode_name_request(body: bytes, what: str) -> str:
    raw = body[1:]
    if raw.endswith(b"\x00"):  # old clients NUL-terminate the name
        raw = raw[:-1]
    if len(raw) > MAX_NAME_BYTES:
        raise EpmdProtocolError(f"node name too long in {what}")
    return _decode_name(raw)


def _decode_port_please(body: bytes) -> PortPleaseRequest:
    return PortPleaseRequest(_decode_name_request(body, "PORT_PLEASE2_REQ"))


def _decode_stop(body: bytes) -> StopRequest:
    return StopRequest(_decode_name_request(body, "STOP_REQ"))


_REQUEST_DECODERS: dict[int, Callable[[bytes], Request]] = {
    ALIVE2_REQ: _decode_alive2,
    PORT_PLEASE2_REQ: _decode_port_please,
    NAMES_REQ: lambda body: NamesRequest(),
    DUMP_REQ: lambda body: DumpRequest(),
    KILL_REQ: lambda body: KillRequest(),
    STOP_REQ: _decode_stop,
}


# ---------------------------------------------------------------------------------------------------
# Reply parsing (client side). Each parser looks at the buffer and returns (reply, bytes used), or
# None when it needs more; ``eof`` tells it the server has closed.


def _parse_alive2_reply(buf: bytearray, eof: bool) -> tuple[Reply, int] | None:
    if not buf:
        return None
    if buf[0] == ALIVE2_X_RESP:
        if len(buf) < 6:
            return None
        _, result, creation = struct.unpack_from(">BBI", buf)
        return Alive2Reply(result, creation, extended=True), 6
    if buf[0] == ALIVE2_RESP:
        if len(buf) < 4:
            return None
        _, result, creation = struct.unpack_from(">BBH", buf)
        return Alive2Reply(result, creation, extended=False), 4
    raise EpmdProtocolError(f"expected ALIVE2_X_RESP or ALIVE2_RESP, got tag {buf[0]}")


def _parse_port_reply(buf: bytearray, eof: bool) -> tuple[Reply, int] | None:
    if not buf:
        return None
    if buf[0] != PORT2_RESP:
        raise EpmdProtocolError(f"expected PORT2_RESP, got tag {buf[0]}")
    if len(buf) < 2:
        return None
    if buf[1] != 0:
        return PortReply(buf[1]), 2
    if len(buf) < _PORT2_HEAD.size:
        return None
    _, _, port, node_type, protocol, high, low, name_len = _PORT2_HEAD.unpack_from(buf)
    if name_len == 0 or name_len > MAX_NAME_BYTES:
        raise EpmdProtocolError(f"bad node name length {name_len} in PORT2_RESP")
    name_end = _PORT2_HEAD.size + name_len
    if len(buf) < name_end + 2:
        return None
    (extra_len,) = _U16.unpack_from(buf, name_end)
    if extra_len > MAX_EXTRA_BYTES:
        raise EpmdProtocolError(f"bad extra length {extra_len} in PORT2_RESP")
    end = name_end + 2 + extra_len
    if len(buf) < end:
        return None
    name = _decode_name(bytes(buf[_PORT2_HEAD.size : name_end]))
    info = NodeInfo(name, port, node_type, protocol, high, low, bytes(buf[name_end + 2 : end]))
    return PortReply(0, info), end


def _text_after_port(buf: bytearray, what: str) -> tuple[int, str]:
    if len(buf) < 4:
        raise EpmdProtocolError(f"{what} reply shorter than its 4-byte port")
    (port,) = _U32.unpack_from(buf)
    try:
        return port, bytes(buf[4:]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EpmdProtocolError(f"{what} reply is not valid UTF-8") from exc


def _parse_names_line(line: str) -> tuple[str, int]:
    head, sep, port = line.rpartition(" at port ")
    if not sep or not head.startswith("name ") or not port.isdigit() or len(port) > 5:
        raise EpmdProtocolError(f"malformed NAMES line: {line!r}")
    name = head[len("name ") :]
    if not name or int(port) > 0xFFFF:
        raise EpmdProtocolError(f"malformed NAMES line: {line!r}")
    return name, int(port)


def _parse_names_reply(buf: bytearray, eof: bool) -> tuple[Reply, int] | None:
    if not eof:
        return None
    port, text = _text_after_port(buf, "NAMES")
    if text and not text.endswith("\n"):
        raise EpmdProtocolError("NAMES reply does not end with a newline")
    names = tuple(_parse_names_line(line) for line in text.split("\n")[:-1])
    return NamesReply(port, names), len(buf)


def _parse_dump_reply(buf: bytearray, eof: bool) -> tuple[Reply, int] | None:
    if not eof:
        return None
    port, text = _text_after_port(buf, "DUMP")
    return DumpReply(port, text), len(buf)


def _parse_fixed(
    size: int, table: dict[bytes, Reply]
) -> Callable[[bytearray, bool], tuple[Reply, int] | None]:
    def parse(buf: bytearray, eof: bool) -> tuple[Reply, int] | None:
        if len(buf) < size:
            return None
        reply = table.get(bytes(buf[:size]))
        if reply is None:
            raise EpmdProtocolError(f"unexpected reply {bytes(buf[:size])!r}")
        return reply, size

    return parse


_REPLY_PARSERS: dict[type[Request], Callable[[bytearray, bool], tuple[Reply, int] | None]] = {
    Alive2Request: _parse_alive2_reply,
    PortPleaseRequest: _parse_port_reply,
    NamesRequest: _parse_names_reply,
    DumpRequest: _parse_dump_reply,
    KillRequest: _parse_fixed(2, {b"OK": KillReply(True), b"NO": KillReply(False)}),
    StopRequest: _parse_fixed(7, {b"STOPPED": StopReply(True), b"NOEXIST": StopReply(False)}),
}


# ---------------------------------------------------------------------------------------------------
# Connections


class _Connection:
    __slots__ = ("_buf", "_eof", "_error", "state")

    def __init__(self, state: State) -> None:
        self.state = state
        self._buf = bytearray()
        self._eof = False
        self._error: EpmdProtocolError | None = None

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side."""
        if self._eof:
            if data:
                raise RuntimeError("receive_data() after the end of the stream")
            return
        if data:
            self._buf += data
        else:
            self._eof = True

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not consumed by any event."""
        return bytes(self._buf)

    def _fail(self, exc: EpmdProtocolError) -> EpmdProtocolError:
        self.state = ERROR
        self._error = exc
        return exc

    def _after_reply(self) -> ConnectionClosed | Literal[_NeedData.NEED_DATA]:
        """DONE / REGISTERED on the client: only the server's close may follow."""
        if self._buf:
            raise self._fail(EpmdProtocolError(f"unexpected bytes after the reply: {bytes(self._buf)!r}"))
        if self._eof:
            self.state = CLOSED
            return ConnectionClosed()
        return NEED_DATA


class ClientConnection(_Connection):
    """The client's side of one EPMD conversation: ``send(request)``, then feed the reply's bytes.

    ``next_event()`` returns the reply (an ``Alive2Reply``, ``PortReply``, ...), then
    ``ConnectionClosed`` when the server closes, or ``NEED_DATA``. If the server closes before
    sending any reply (as epmd does for requests it refuses silently) the event is
    ``ConnectionClosed`` straight away. Raises :class:`EpmdProtocolError` on malformed replies.
    """

    __slots__ = ("_max_text", "request")

    def __init__(self, *, max_text_reply: int = MAX_TEXT_REPLY) -> None:
        super().__init__(IDLE)
        self.request: Request | None = None
        self._max_text = max_text_reply

    def send(self, request: Request) -> bytes:
        """Return the bytes of ``request``; valid once, in state IDLE."""
        if self.state is not IDLE:
            raise RuntimeError(f"send() in state {self.state!r}; a connection carries one request")
        if type(request) not in _REPLY_PARSERS:
            raise TypeError(f"not an EPMD request: {request!r}")
        data = request.encode()
        self.request = request
        self.state = AWAIT_REPLY
        return data

    def next_event(
        self,
    ) -> Reply | ConnectionClosed | Literal[_NeedData.NEED_DATA]:
        if self._error is not None:
            raise self._error
        if self.state is AWAIT_REPLY:
            return self._reply()
        if self.state in (DONE, REGISTERED):
            return self._after_reply()
        if self.state is CLOSED:
            return ConnectionClosed()
        raise RuntimeError(f"next_event() in state {self.state!r}")

    def _reply(self) -> Reply | ConnectionClosed | Literal[_NeedData.NEED_DATA]:
        assert self.request is not None
        if len(self._buf) > self._max_text:
            raise self._fail(EpmdProtocolError(f"reply longer than {self._max_text} bytes"))
        try:
            parsed = _REPLY_PARSERS[type(self.request)](self._buf, self._eof)
        except EpmdProtocolError as exc:
            raise self._fail(exc) from None
        if parsed is None:
            if not self._eof:
                return NEED_DATA
            if self._buf:
                raise self._fail(EpmdProtocolError(f"connection closed mid-reply: {bytes(self._buf)!r}"))
            self.state = CLOSED
            return ConnectionClosed()
        reply, used = parsed
        del self._buf[:used]
        registered = isinstance(reply, Alive2Reply) and reply.ok
        self.state = REGISTERED if registered else DONE
        return reply


class ServerConnection(_Connection):
    """The server's side of one EPMD conversation: feed bytes, get the request, ``send(reply)``.

    ``next_event()`` returns one request event, or ``ConnectionClosed`` if the client closes before
    sending one (or, on a REGISTERED connection, when the node goes away). Raises
    :class:`EpmdProtocolError` on malformed requests, and on any byte received on a REGISTERED
    connection (the registration must then be dropped).
    """

    __slots__ = ("request",)

    def __init__(self) -> None:
        super().__init__(AWAIT_REQUEST)
        self.request: Request | None = None

    def next_event(self) -> Request | ConnectionClosed | Literal[_NeedData.NEED_DATA]:
        if self._error is not None:
            raise self._error
        if self.state is AWAIT_REQUEST:
            return self._request()
        if self.state is REGISTERED:
            if self._buf:
                raise self._fail(
                    EpmdProtocolError(f"data on a registration connection: {bytes(self._buf[:64])!r}")
                )
            return self._closed_or_need_data()
        if self.state in (SEND_REPLY, DONE):
            self._buf.clear()  # epmd ignores what follows a one-shot request
            return self._closed_or_need_data()
        if self.state is CLOSED:
            return ConnectionClosed()
        raise RuntimeError(f"next_event() in state {self.state!r}")

    def _closed_or_need_data(self) -> ConnectionClosed | Literal[_NeedData.NEED_DATA]:
        if self._eof:
            if self.state is not SEND_REPLY:
                self.state = CLOSED
            return ConnectionClosed()
        return NEED_DATA

    def _request(self) -> Request | ConnectionClosed | Literal[_NeedData.NEED_DATA]:
        buf = self._buf
        if len(buf) >= 2:
            (length,) = _U16.unpack_from(buf)
            if length == 0 or length > MAX_REQUEST_BYTES:
                raise self._fail(EpmdProtocolError(f"bad request length {length}"))
            if len(buf) >= 2 + length:
                body = bytes(buf[2 : 2 + length])
                del buf[: 2 + length]
                decoder = _REQUEST_DECODERS.get(body[0])
                if decoder is None:
                    raise self._fail(EpmdProtocolError(f"unknown request tag {body[0]}"))
                try:
                    request = decoder(body)
                except EpmdProtocolError as exc:
                    raise self._fail(exc) from None
                self.request = request
                self.state = SEND_REPLY
                return request
        if not self._eof:
            return NEED_DATA
        if buf:
            raise self._fail(EpmdProtocolError(f"connection closed mid-request: {bytes(buf[:64])!r}"))
        self.state = CLOSED
        return ConnectionClosed()

    def send(self, reply: Reply) -> bytes:
        """Return the bytes of ``reply`` to the request just received (state SEND_REPLY)."""
        if self.state is not SEND_REPLY or self.request is None:
            raise RuntimeError(f"send() in state {self.state!r}")
        expected = _REPLY_FOR[type(self.request)]
        if not isinstance(reply, expected):
            raise TypeError(f"{type(self.request).__name__} is answered by {expected.__name__}")
        data = reply.encode()
        self.state = REGISTERED if isinstance(reply, Alive2Reply) and reply.ok else DONE
        return data
