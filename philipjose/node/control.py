"""Control messages of the distribution protocol <-> events, sans-I/O.

A distribution message is a control tuple whose first element is the operation (``DOP_*``, numbered
as in OTP's ``dist.h``), sometimes followed by a payload term (the message of a send, the reason of a
``PAYLOAD_*`` exit). Each event here stands for one operation and all its wire variants:

==================  ================================================================================
event               control messages (decoded; the first one listed is what philipjose sends)
==================  ================================================================================
``Link``            LINK ``{1, From, To}``
``Send``            SEND_SENDER ``{22, From, To}`` + Msg (when negotiated), SEND ``{2, '', To}`` + Msg,
                    SEND_TT ``{12, '', To, Token}``, SEND_SENDER_TT ``{23, From, To, Token}``
``RegSend``         REG_SEND ``{6, From, '', Name}`` + Msg, REG_SEND_TT ``{16, From, '', Name, Token}``
``Exit``            PAYLOAD_EXIT ``{24, From, To}`` + Reason (when negotiated), EXIT ``{3, From, To,
                    Reason}``, EXIT_TT ``{13, ...}``, PAYLOAD_EXIT_TT ``{25, ...}``
``Exit2``           PAYLOAD_EXIT2 ``{26, From, To}`` + Reason, EXIT2 ``{8, ...}``, EXIT2_TT ``{18, ...}``,
                    PAYLOAD_EXIT2_TT ``{27, ...}``
``Unlink``          UNLINK ``{4, From, To}`` (obsolete; decoded only)
``UnlinkId``        UNLINK_ID ``{35, Id, From, To}``
``UnlinkIdAck``     UNLINK_ID_ACK ``{36, Id, From, To}``
``MonitorP``        MONITOR_P ``{19, Watcher, PidOrName, Ref}``
``DemonitorP``      DEMONITOR_P ``{20, Watcher, PidOrName, Ref}``
``MonitorPExit``    PAYLOAD_MONITOR_P_EXIT ``{28, PidOrName, Watcher, Ref}`` + Reason (when negotiated),
                    MONITOR_P_EXIT ``{21, PidOrName, Watcher, Ref, Reason}``
``AliasSend``       ALIAS_SEND ``{33, From, Alias}`` + Msg, ALIAS_SEND_TT ``{34, From, Alias, Token}``
``SpawnRequest``    SPAWN_REQUEST ``{29, ReqId, From, GroupLeader, {M, F, Arity}, Opts}`` + Args,
                    SPAWN_REQUEST_TT ``{30, ..., Token}``
``SpawnReply``      SPAWN_REPLY ``{31, ReqId, To, Flags, Result}``, SPAWN_REPLY_TT ``{32, ..., Token}``
``GroupLeader``     GROUP_LEADER ``{7, From, To}``
``UnknownControl``  any other well-formed control tuple (the node logs it and goes on)
==================  ================================================================================

``token`` is the sequential-trace token of a ``*_TT`` variant, ``None`` when absent; philipjose
carries it but does not trace. A control message that is not a tuple starting with an integer, or a
known operation whose fields have the wrong types, raises :class:`ProtocolError` (OTP closes the
connection on such a message; so does the node layer).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from philipjose.node.errors import ProtocolError
from philipjose.node.flags import (
    DFLAG_DIST_HDR_ATOM_CACHE,
    DFLAG_EXIT_PAYLOAD,
    DFLAG_FRAGMENTS,
    DFLAG_SEND_SENDER,
)
from philipjose.node.framing import DistMessage, dist_header, pass_through
from philipjose.node.terms import decode_term, encode_parts, encode_term
from philipjose.term import Atom, Pid, Reference

__all__ = [
    "DOP_ALIAS_SEND",
    "DOP_ALIAS_SEND_TT",
    "DOP_DEMONITOR_P",
    "DOP_EXIT",
    "DOP_EXIT2",
    "DOP_EXIT2_TT",
    "DOP_EXIT_TT",
    "DOP_GROUP_LEADER",
    "DOP_LINK",
    "DOP_MONITOR_P",
    "DOP_MONITOR_P_EXIT",
    "DOP_NODE_LINK",
    "DOP_PAYLOAD_EXIT",
    "DOP_PAYLOAD_EXIT2",
    "DOP_PAYLOAD_EXIT2_TT",
    "DOP_PAYLOAD_EXIT_TT",
    "DOP_PAYLOAD_MONITOR_P_EXIT",
    "DOP_REG_SEND",
    "DOP_REG_SEND_TT",
    "DOP_SEND",
    "DOP_SEND_SENDER",
    "DOP_SEND_SENDER_TT",
    "DOP_SEND_TT",
    "DOP_SPAWN_REPLY",
    "DOP_SPAWN_REPLY_TT",
    "DOP_SPAWN_REQUEST",
    "DOP_SPAWN_REQUEST_TT",
    "DOP_UNLINK",
    "DOP_UNLINK_ID",
    "DOP_UNLINK_ID_ACK",
    "AliasSend",
    "ControlCodec",
    "ControlEvent",
    "DemonitorP",
    "Exit",
    "Exit2",
    "GroupLeader",
    "Link",
    "MonitorP",
    "MonitorPExit",
    "RegSend",
    "Send",
    "SpawnReply",
    "SpawnRequest",
    "UnknownControl",
    "Unlink",
    "UnlinkId",
    "UnlinkIdAck",
    "decode_message",
    "encode_event",
]

DOP_LINK: Final = 1
DOP_SEND: Final = 2
DOP_EXIT: Final = 3
DOP_UNLINK: Final = 4
DOP_NODE_LINK: Final = 5
DOP_REG_SEND: Final = 6
DOP_GROUP_LEADER: Final = 7
DOP_EXIT2: Final = 8
DOP_SEND_TT: Final = 12
DOP_EXIT_TT: Final = 13
DOP_REG_SEND_TT: Final = 16
DOP_EXIT2_TT: Final = 18
DOP_MONITOR_P: Final = 19
DOP_DEMONITOR_P: Final = 20
DOP_MONITOR_P_EXIT: Final = 21
DOP_SEND_SENDER: Final = 22
DOP_SEND_SENDER_TT: Final = 23
DOP_PAYLOAD_EXIT: Final = 24
DOP_PAYLOAD_EXIT_TT: Final = 25
DOP_PAYLOAD_EXIT2: Final = 26
DOP_PAYLOAD_EXIT2_TT: Final = 27
DOP_PAYLOAD_MONITOR_P_EXIT: Final = 28
DOP_SPAWN_REQUEST: Final = 29
DOP_SPAWN_REQUEST_TT: Final = 30
DOP_SPAWN_REPLY: Final = 31
DOP_SPAWN_REPLY_TT: Final = 32
DOP_ALIAS_SEND: Final = 33
DOP_ALIAS_SEND_TT: Final = 34
DOP_UNLINK_ID: Final = 35
DOP_UNLINK_ID_ACK: Final = 36

_EMPTY: Final = Atom("")


# ---------------------------------------------------------------------------------------------
# Events.


@dataclass(frozen=True, slots=True)
class Link:
    """``sender`` links to ``to``."""

    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True)
class Send:
    """A message to a pid; ``sender`` is ``None`` when the peer used the sender-less SEND."""

    to: Pid
    message: Any
    sender: Pid | None = None
    token: Any = None


@dataclass(frozen=True, slots=True)
class RegSend:
    """A message to the process registered as ``to`` on the receiving node."""

    sender: Pid
    to: Atom
    message: Any
    token: Any = None


@dataclass(frozen=True, slots=True)
class Exit:
    """``sender``, linked to ``to``, died with ``reason`` (a link exit signal)."""

    sender: Pid
    to: Pid
    reason: Any
    token: Any = None


@dataclass(frozen=True, slots=True)
class Exit2:
    """``sender`` called ``exit(to, reason)``."""

    sender: Pid
    to: Pid
    reason: Any
    token: Any = None


@dataclass(frozen=True, slots=True)
class Unlink:
    """The obsolete UNLINK (before the UNLINK_ID protocol)."""

    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True)
class UnlinkId:
    """``sender`` removes its link to ``to``; ``to``'s node answers with an :class:`UnlinkIdAck`."""

    id: int
    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True)
class UnlinkIdAck:
    """Acknowledges :class:`UnlinkId` ``id``: ``sender`` is the unlinked process, ``to`` the unlinker."""

    id: int
    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True)
class MonitorP:
    """``watcher`` monitors ``target``: a pid or a registered name on the receiving node."""

    watcher: Pid
    target: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True)
class DemonitorP:
    """``watcher`` drops its monitor ``ref`` of ``target``."""

    watcher: Pid
    target: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True)
class MonitorPExit:
    """``target`` (a pid, or the name it was monitored by) died with ``reason``; ``watcher`` gets DOWN."""

    target: Pid | Atom
    watcher: Pid
    ref: Reference
    reason: Any


@dataclass(frozen=True, slots=True)
class AliasSend:
    """A message to the process alias ``alias`` (for example a ``gen_server:call`` reply)."""

    sender: Pid
    alias: Reference
    message: Any
    token: Any = None


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """``erlang:spawn_request``: spawn ``module:function(*args)`` on the receiving node."""

    req_id: Reference
    sender: Pid
    group_leader: Pid
    module: Atom
    function: Atom
    arity: int
    options: list[Any]
    args: list[Any]
    token: Any = None


@dataclass(frozen=True, slots=True)
class SpawnReply:
    """The answer to a :class:`SpawnRequest`: ``result`` is the new pid or an error atom.

    ``flags``: 1 = a link was set up, 2 = a monitor was set up.
    """

    req_id: Reference
    to: Pid
    flags: int
    result: Pid | Atom
    token: Any = None


@dataclass(frozen=True, slots=True)
class GroupLeader:
    """``sender`` becomes the group leader of ``to`` (what ``group_leader(Sender, To)`` sends)."""

    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True)
class UnknownControl:
    """A control message philipjose does not know: the decoded tuple and the raw bytes after it."""

    control: tuple[Any, ...]
    rest: bytes


ControlEvent = (
    Link
    | Send
    | RegSend
    | Exit
    | Exit2
    | Unlink
    | UnlinkId
    | UnlinkIdAck
    | MonitorP
    | DemonitorP
    | MonitorPExit
    | AliasSend
    | SpawnRequest
    | SpawnReply
    | GroupLeader
    | UnknownControl
)


# ---------------------------------------------------------------------------------------------
# Decoding.


def _bad(op: int, control: tuple[Any, ...]) -> ProtocolError:
    return ProtocolError(f"malformed control message for operation {op}: {control!r:.200}")


def _pid(value: Any, op: int, control: tuple[Any, ...]) -> Pid:
    if type(value) is not Pid:
        raise _bad(op, control)
    return value


def _ref(value: Any, op: int, control: tuple[Any, ...]) -> Reference:
    if type(value) is not Reference:
        raise _bad(op, control)
    return value


def _proc(value: Any, op: int, control: tuple[Any, ...]) -> Pid | Atom:
    if type(value) is not Pid and type(value) is not Atom:
        raise _bad(op, control)
    return value


def _atom(value: Any, op: int, control: tuple[Any, ...]) -> Atom:
    if type(value) is not Atom:
        raise _bad(op, control)
    return value


def _int(value: Any, op: int, control: tuple[Any, ...]) -> int:
    if type(value) is not int:
        raise _bad(op, control)
    return value


# Arity of each known control tuple (including the op), and whether a payload term follows.
_SHAPES: Final[dict[int, tuple[int, bool]]] = {
    DOP_LINK: (3, False),
    DOP_SEND: (3, True),
    DOP_EXIT: (4, False),
    DOP_UNLINK: (3, False),
    DOP_REG_SEND: (4, True),
    DOP_GROUP_LEADER: (3, False),
    DOP_EXIT2: (4, False),
    DOP_SEND_TT: (4, True),
    DOP_EXIT_TT: (5, False),
    DOP_REG_SEND_TT: (5, True),
    DOP_EXIT2_TT: (5, False),
    DOP_MONITOR_P: (4, False),
    DOP_DEMONITOR_P: (4, False),
    DOP_MONITOR_P_EXIT: (5, False),
    DOP_SEND_SENDER: (3, True),
    DOP_SEND_SENDER_TT: (4, True),
    DOP_PAYLOAD_EXIT: (3, True),
    DOP_PAYLOAD_EXIT_TT: (4, True),
    DOP_PAYLOAD_EXIT2: (3, True),
    DOP_PAYLOAD_EXIT2_TT: (4, True),
    DOP_PAYLOAD_MONITOR_P_EXIT: (4, True),
    DOP_SPAWN_REQUEST: (6, True),
    DOP_SPAWN_REQUEST_TT: (7, True),
    DOP_SPAWN_REPLY: (5, False),
    DOP_SPAWN_REPLY_TT: (6, False),
    DOP_ALIAS_SEND: (3, True),
    DOP_ALIAS_SEND_TT: (4, True),
    DOP_UNLINK_ID: (4, False),
    DOP_UNLINK_ID_ACK: (4, False),
}


def decode_message(message: DistMessage) -> ControlEvent:
    """Decode one distribution message into its event.

    Raises :class:`ProtocolError` when the terms do not decode, when the control message is not a
    tuple starting with an integer, or when a known operation is malformed. Bytes left after the
    payload raise too (OTP refuses them the same way).
    """
    return _decode_message(bytes(message.data), message.offset, message.versioned)


def _decode_message(data: bytes, offset: int, versioned: bool) -> ControlEvent:
    control, pos = decode_term(data, offset, versioned)
    if type(control) is not tuple or not control or type(control[0]) is not int:
        raise ProtocolError(f"control message is not a tuple starting with an operation: {control!r:.200}")
    op: int = control[0]
    shape = _SHAPES.get(op)
    if shape is None:
        return UnknownControl(control, data[pos:])
    arity, has_payload = shape
    if len(control) != arity:
        raise _bad(op, control)
    payload: Any = None
    if has_payload:
        if pos >= len(data):
            raise ProtocolError(f"control message {op} without its payload")
        payload, pos = decode_term(data, pos, versioned)
    if pos != len(data):
        raise ProtocolError(f"{len(data) - pos} stray bytes after control message {op}")
    return _build(op, control, payload)


def _build(op: int, c: tuple[Any, ...], payload: Any) -> ControlEvent:
    if op == DOP_SEND_SENDER:
        return Send(_pid(c[2], op, c), payload, _pid(c[1], op, c))
    if op == DOP_REG_SEND:
        return RegSend(_pid(c[1], op, c), _atom(c[3], op, c), payload)
    if op == DOP_SEND:
        return Send(_pid(c[2], op, c), payload)
    if op == DOP_ALIAS_SEND:
        return AliasSend(_pid(c[1], op, c), _ref(c[2], op, c), payload)
    if op == DOP_LINK:
        return Link(_pid(c[1], op, c), _pid(c[2], op, c))
    if op == DOP_PAYLOAD_EXIT:
        return Exit(_pid(c[1], op, c), _pid(c[2], op, c), payload)
    if op == DOP_PAYLOAD_EXIT2:
        return Exit2(_pid(c[1], op, c), _pid(c[2], op, c), payload)
    if op == DOP_EXIT:
        return Exit(_pid(c[1], op, c), _pid(c[2], op, c), c[3])
    if op == DOP_EXIT2:
        return Exit2(_pid(c[1], op, c), _pid(c[2], op, c), c[3])
    if op == DOP_MONITOR_P:
        return MonitorP(_pid(c[1], op, c), _proc(c[2], op, c), _ref(c[3], op, c))
    if op == DOP_DEMONITOR_P:
        return DemonitorP(_pid(c[1], op, c), _proc(c[2], op, c), _ref(c[3], op, c))
    if op == DOP_PAYLOAD_MONITOR_P_EXIT:
        return MonitorPExit(_proc(c[1], op, c), _pid(c[2], op, c), _ref(c[3], op, c), payload)
    if op == DOP_MONITOR_P_EXIT:
        return MonitorPExit(_proc(c[1], op, c), _pid(c[2], op, c), _ref(c[3], op, c), c[4])
    if op == DOP_UNLINK_ID:
        return UnlinkId(_int(c[1], op, c), _pid(c[2], op, c), _pid(c[3], op, c))
    if op == DOP_UNLINK_ID_ACK:
        return UnlinkIdAck(_int(c[1], op, c), _pid(c[2], op, c), _pid(c[3], op, c))
    if op == DOP_UNLINK:
        return Unlink(_pid(c[1], op, c), _pid(c[2], op, c))
    if op == DOP_GROUP_LEADER:
        return GroupLeader(_pid(c[1], op, c), _pid(c[2], op, c))
    if op == DOP_SEND_TT:
        return Send(_pid(c[2], op, c), payload, None, c[3])
    if op == DOP_SEND_SENDER_TT:
        return Send(_pid(c[2], op, c), payload, _pid(c[1], op, c), c[3])
    if op == DOP_REG_SEND_TT:
        return RegSend(_pid(c[1], op, c), _atom(c[3], op, c), payload, c[4])
    if op == DOP_ALIAS_SEND_TT:
        return AliasSend(_pid(c[1], op, c), _ref(c[2], op, c), payload, c[3])
    if op == DOP_EXIT_TT:
        return Exit(_pid(c[1], op, c), _pid(c[2], op, c), c[4], c[3])
    if op == DOP_EXIT2_TT:
        return Exit2(_pid(c[1], op, c), _pid(c[2], op, c), c[4], c[3])
    if op == DOP_PAYLOAD_EXIT_TT:
        return Exit(_pid(c[1], op, c), _pid(c[2], op, c), payload, c[3])
    if op == DOP_PAYLOAD_EXIT2_TT:
        return Exit2(_pid(c[1], op, c), _pid(c[2], op, c), payload, c[3])
    if op in (DOP_SPAWN_REQUEST, DOP_SPAWN_REQUEST_TT):
        mfa = c[4]
        if (
            type(mfa) is not tuple
            or len(mfa) != 3
            or type(mfa[0]) is not Atom
            or type(mfa[1]) is not Atom
            or type(mfa[2]) is not int
            or type(c[5]) is not list
            or type(payload) is not list
        ):
            raise _bad(op, c)
        token = c[6] if op == DOP_SPAWN_REQUEST_TT else None
        return SpawnRequest(
            _ref(c[1], op, c),
            _pid(c[2], op, c),
            _pid(c[3], op, c),
            mfa[0],
            mfa[1],
            mfa[2],
            c[5],
            payload,
            token,
        )
    if op in (DOP_SPAWN_REPLY, DOP_SPAWN_REPLY_TT):
        token = c[5] if op == DOP_SPAWN_REPLY_TT else None
        return SpawnReply(_ref(c[1], op, c), _pid(c[2], op, c), _int(c[3], op, c), _proc(c[4], op, c), token)
    raise AssertionError(f"operation {op} has a shape but no builder")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# Encoding.


def encode_event(event: ControlEvent, flags: int) -> bytes:
    """The whole frame (length included) for ``event`` on a connection with ``flags``.

    The frame has a distribution header when ``DFLAG_FRAGMENTS`` (or the atom cache) was negotiated,
    as ERTS then requires one, and is a pass-through frame otherwise. SEND_SENDER is used when
    ``DFLAG_SEND_SENDER`` was negotiated and the sender is known, the PAYLOAD exits when
    ``DFLAG_EXIT_PAYLOAD`` was, and the ``*_TT`` variants when ``token`` is not ``None``. Raises
    ``EncodeError`` (a ``TypeError``) on terms with no external form.
    """
    control, payload = control_terms(event, flags)
    build = dist_header if flags & _HEADER_FLAGS else pass_through
    return build(encode_term(control), None if payload is _NO_PAYLOAD else encode_term(payload))


_HEADER_FLAGS: Final = DFLAG_FRAGMENTS | DFLAG_DIST_HDR_ATOM_CACHE
_HEADER: Final = b"\x83D\x00"  # a normal distribution header without atom-cache references
_U32: Final = struct.Struct(">I")


_NO_PAYLOAD: Final = object()


def control_terms(event: ControlEvent, flags: int) -> tuple[tuple[Any, ...], Any]:
    """The control tuple for ``event`` and its payload term (``_NO_PAYLOAD`` when there is none)."""
    payload_exits = bool(flags & DFLAG_EXIT_PAYLOAD)
    if isinstance(event, Send):
        if event.sender is not None and flags & DFLAG_SEND_SENDER:
            if event.token is None:
                return (DOP_SEND_SENDER, event.sender, event.to), event.message
            return (DOP_SEND_SENDER_TT, event.sender, event.to, event.token), event.message
        if event.token is None:
            return (DOP_SEND, _EMPTY, event.to), event.message
        return (DOP_SEND_TT, _EMPTY, event.to, event.token), event.message
    if isinstance(event, RegSend):
        if event.token is None:
            return (DOP_REG_SEND, event.sender, _EMPTY, event.to), event.message
        return (DOP_REG_SEND_TT, event.sender, _EMPTY, event.to, event.token), event.message
    if isinstance(event, AliasSend):
        if event.token is None:
            return (DOP_ALIAS_SEND, event.sender, event.alias), event.message
        return (DOP_ALIAS_SEND_TT, event.sender, event.alias, event.token), event.message
    if isinstance(event, Exit | Exit2):
        is_exit = isinstance(event, Exit)
        if payload_exits:
            if event.token is None:
                op = DOP_PAYLOAD_EXIT if is_exit else DOP_PAYLOAD_EXIT2
                return (op, event.sender, event.to), event.reason
            op = DOP_PAYLOAD_EXIT_TT if is_exit else DOP_PAYLOAD_EXIT2_TT
            return (op, event.sender, event.to, event.token), event.reason
        if event.token is None:
            return (DOP_EXIT if is_exit else DOP_EXIT2, event.sender, event.to, event.reason), _NO_PAYLOAD
        op = DOP_EXIT_TT if is_exit else DOP_EXIT2_TT
        return (op, event.sender, event.to, event.token, event.reason), _NO_PAYLOAD
    if isinstance(event, Link):
        return (DOP_LINK, event.sender, event.to), _NO_PAYLOAD
    if isinstance(event, UnlinkId):
        return (DOP_UNLINK_ID, event.id, event.sender, event.to), _NO_PAYLOAD
    if isinstance(event, UnlinkIdAck):
        return (DOP_UNLINK_ID_ACK, event.id, event.sender, event.to), _NO_PAYLOAD
    if isinstance(event, Unlink):
        return (DOP_UNLINK, event.sender, event.to), _NO_PAYLOAD
    if isinstance(event, MonitorP):
        return (DOP_MONITOR_P, event.watcher, event.target, event.ref), _NO_PAYLOAD
    if isinstance(event, DemonitorP):
        return (DOP_DEMONITOR_P, event.watcher, event.target, event.ref), _NO_PAYLOAD
    if isinstance(event, MonitorPExit):
        if payload_exits:
            return (DOP_PAYLOAD_MONITOR_P_EXIT, event.target, event.watcher, event.ref), event.reason
        return (DOP_MONITOR_P_EXIT, event.target, event.watcher, event.ref, event.reason), _NO_PAYLOAD
    if isinstance(event, SpawnRequest):
        mfa = (event.module, event.function, event.arity)
        if event.token is None:
            head = (DOP_SPAWN_REQUEST, event.req_id, event.sender, event.group_leader, mfa, event.options)
            return head, event.args
        head = (DOP_SPAWN_REQUEST_TT, event.req_id, event.sender, event.group_leader, mfa, event.options)
        return (*head, event.token), event.args
    if isinstance(event, SpawnReply):
        if event.token is None:
            return (DOP_SPAWN_REPLY, event.req_id, event.to, event.flags, event.result), _NO_PAYLOAD
        return (
            DOP_SPAWN_REPLY_TT,
            event.req_id,
            event.to,
            event.flags,
            event.result,
            event.token,
        ), _NO_PAYLOAD
    if isinstance(event, GroupLeader):
        return (DOP_GROUP_LEADER, event.sender, event.to), _NO_PAYLOAD
    raise TypeError(f"cannot send {type(event).__name__}")


# ---------------------------------------------------------------------------------------------
# A per-connection codec with caches for the hot path.

_DECODE_CACHE_SIZE: Final = 16
_ENCODE_CACHE_SIZE: Final = 4096

_Maker = Callable[[Any], ControlEvent]


def _maker(op: int, control: tuple[Any, ...]) -> _Maker | None:
    """For a send-type control tuple without a trace token: a function payload -> event (the tuple's
    fields checked once, here), or None for any other operation."""
    if op == DOP_SEND_SENDER:
        to, sender = _pid(control[2], op, control), _pid(control[1], op, control)
        return lambda payload: Send(to, payload, sender)
    if op == DOP_REG_SEND:
        return partial(RegSend, _pid(control[1], op, control), _atom(control[3], op, control))
    if op == DOP_SEND:
        return partial(Send, _pid(control[2], op, control))
    if op == DOP_ALIAS_SEND:
        return partial(AliasSend, _pid(control[1], op, control), _ref(control[2], op, control))
    return None


class ControlCodec:
    """:func:`decode_message` and :func:`encode_event` for one connection, with caches.

    Most traffic repeats the same control message (the same sender sending to the same pid or
    name), so the codec remembers the bytes of the last 16 distinct send-type control messages it
    decoded, each with a ready-made event constructor: a message that starts with one of them is
    built from its payload alone (the control term is neither decoded nor checked again). (A term's
    encoding is self-delimiting, so if the frame starts with those bytes the control term is exactly
    that one.) Likewise it remembers, for up to 4096 recent (kind, sender, destination) triples of
    sends without a trace token, the bytes that start their frame (header and control term), so
    sending encodes only the payload, straight into the frame.
    """

    __slots__ = ("_decoded", "_encoded", "_next_slot", "_with_header", "flags")

    def __init__(self, flags: int) -> None:
        self.flags = flags
        self._decoded: list[tuple[bytes, bool, _Maker]] = []
        self._next_slot = 0
        self._encoded: dict[tuple[Any, ...], bytes] = {}
        self._with_header = bool(flags & _HEADER_FLAGS)

    def decode(self, message: DistMessage) -> ControlEvent:
        """Like :func:`decode_message`."""
        return self.decode_frame(bytes(message.data), message.offset, message.versioned)

    def decode_frame(self, data: bytes, offset: int, versioned: bool) -> ControlEvent:
        """:meth:`decode` of a :class:`DistMessage` given by its fields."""
        decoded = self._decoded
        for i, (raw, was_versioned, make) in enumerate(decoded):
            if was_versioned is versioned and data.startswith(raw, offset):
                if i:  # the busiest senders first: a stream of sends costs one comparison each
                    decoded[i - 1], decoded[i] = decoded[i], decoded[i - 1]
                pos = offset + len(raw)
                if pos >= len(data):
                    raise ProtocolError("send-type control message without its payload")
                payload, end = decode_term(data, pos, versioned)
                if end != len(data):
                    raise ProtocolError(f"{len(data) - end} stray bytes after a send-type control message")
                return make(payload)
        event = _decode_message(data, offset, versioned)
        kind = type(event)
        if (kind is Send or kind is RegSend or kind is AliasSend) and event.token is None:  # type: ignore[union-attr]
            control, pos = decode_term(data, offset, versioned)
            maker = _maker(control[0], control)
            if maker is not None:
                entry = (data[offset:pos], versioned, maker)
                if len(self._decoded) < _DECODE_CACHE_SIZE:
                    self._decoded.append(entry)
                else:
                    self._decoded[self._next_slot] = entry
                    self._next_slot = (self._next_slot + 1) % _DECODE_CACHE_SIZE
        return event

    def encode(self, event: ControlEvent) -> bytes:
        """Like :func:`encode_event`."""
        kind = type(event)
        key: tuple[Any, ...]
        if kind is Send or kind is RegSend:
            if event.token is not None:  # type: ignore[union-attr]
                return encode_event(event, self.flags)
            key = (kind, event.sender, event.to)  # type: ignore[union-attr]
        elif kind is AliasSend:
            if event.token is not None:  # type: ignore[union-attr]
                return encode_event(event, self.flags)
            key = (AliasSend, event.sender, event.alias)  # type: ignore[union-attr]
        else:
            return encode_event(event, self.flags)
        head = self._encoded.get(key)
        if head is None:
            if len(self._encoded) >= _ENCODE_CACHE_SIZE:
                self._encoded.clear()
            control = encode_term(control_terms(event, self.flags)[0])
            # After a distribution header the terms have no version byte; in a pass-through frame
            # each has its own.
            head = _HEADER + control[1:] if self._with_header else b"p" + control + b"\x83"
            self._encoded[key] = head
        parts = [b"", head]
        encode_parts(event.message, parts)  # type: ignore[union-attr]
        parts[0] = _U32.pack(sum(map(len, parts)))
        return b"".join(parts)
