"""The distribution handshake as a sans-I/O state machine, for both roles.

Theory of operation
-------------------
Two nodes set up a connection in the order of OTP's ``dist_util`` (OTP 23+ handshake, version 6).
Every handshake message travels with a 2-byte big-endian length prefix over plain TCP
(``inet_tcp_dist``: ``{packet, 2}``) and a 4-byte one inside TLS (OTP's ``inet_tls_dist`` sets
``{packet, 4}`` on the TLS socket from the start): ``length_size`` chooses. ``A`` is the initiator (it
connected), ``B`` the acceptor::

    A: SEND_NAME            --'N' flags creation name-->        B: RECV_NAME
    A: RECV_STATUS          <--'s' status--                     B: SEND_STATUS
       (status 'alive' only:)
    A: SEND_ALIVE_REPLY     --'s' true|false-->                 B: RECV_ALIVE_REPLY
    A: RECV_CHALLENGE       <--'N' flags challenge creation name-- B: SEND_CHALLENGE
       (only if A sent the old version-5 'n' name:)
    A: SEND_COMPLEMENT      --'c' flags_high creation-->        B: RECV_COMPLEMENT
    A: SEND_CHALLENGE_REPLY --'r' challenge digest-->           B: RECV_CHALLENGE_REPLY
    A: RECV_CHALLENGE_ACK   <--'a' digest--                     B: SEND_CHALLENGE_ACK
    both: CONNECTED (after that, 4-byte framing: see :mod:`philipjose.node.framing`)

A digest is ``MD5(cookie + decimal text of the challenge)``; each side checks the other's with
:func:`hmac.compare_digest`, and a mismatch raises :class:`AuthenticationError`.

A state named ``SEND_*`` waits for the caller to ``send()`` that event; a state named ``RECV_*`` waits for
the peer's message, which ``next_event()`` returns once ``receive_data()`` has supplied all its bytes.
The machine checks the order and the form of everything both ways, remembers the challenge it sent and
the peer's identity, and checks digests; the *decisions* are the caller's: which status to answer (it
knows the node's other connections), whether to continue after ``alive``, and the name it expected.
A status ``nok``/``not_allowed`` (or ``false`` after ``alive``) ends in ``CLOSED``.

Dynamic names (OTP 23+, ``erl -sname undefined``): an initiator that sets ``DFLAG_NAME_ME`` sends
only its host name in the version-6 ``'N'`` name; the acceptor picks a name and a creation for it
and answers the status ``named:`` followed by that name (2-byte length) and creation (4 bytes);
the handshake then goes on as after ``ok``, and ``peer`` names the assigned name (acceptor) or
``own_name``/``own_creation`` hold it (initiator). The name must be ``host`` (no ``@``) with the flag,
``alive@host`` without it; a ``named:`` status is refused unless we asked for a name.

Old peers: an OTP 23/24 node that did not ask EPMD sends the version-5 ``'n'`` name with 32-bit flags
(which must include ``DFLAG_HANDSHAKE_23``); the acceptor still answers with the ``'N'`` challenge and
then receives the ``'c'`` complement carrying the high flag bits and the creation.

Limits: a handshake message is at most ``max_message_size`` bytes (default 2048: a 255-character
UTF-8 node name is at most 1020 bytes); a node name must hold exactly one ``@``. Anything else raises
:class:`HandshakeError`. The caller bounds the handshake's duration.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Final

from philipjose.node.errors import AuthenticationError, HandshakeError
from philipjose.node.flags import DFLAG_NAME_ME, MANDATORY, flag_names, missing_mandatory
from philipjose.node.sentinels import NEED_DATA, Sentinel

__all__ = [
    "CLOSED",
    "CONNECTED",
    "RECV_ALIVE_REPLY",
    "RECV_CHALLENGE",
    "RECV_CHALLENGE_ACK",
    "RECV_CHALLENGE_REPLY",
    "RECV_COMPLEMENT",
    "RECV_NAME",
    "RECV_STATUS",
    "SEND_ALIVE_REPLY",
    "SEND_CHALLENGE",
    "SEND_CHALLENGE_ACK",
    "SEND_CHALLENGE_REPLY",
    "SEND_COMPLEMENT",
    "SEND_NAME",
    "SEND_STATUS",
    "Challenge",
    "ChallengeAck",
    "ChallengeReply",
    "Complement",
    "Handshake",
    "HandshakeEvent",
    "PeerInfo",
    "SendName",
    "Status",
    "gen_digest",
    "split_node_name",
    "waiting_for",
]

SEND_NAME: Final = Sentinel("SEND_NAME")
RECV_NAME: Final = Sentinel("RECV_NAME")
SEND_STATUS: Final = Sentinel("SEND_STATUS")
RECV_STATUS: Final = Sentinel("RECV_STATUS")
SEND_ALIVE_REPLY: Final = Sentinel("SEND_ALIVE_REPLY")
RECV_ALIVE_REPLY: Final = Sentinel("RECV_ALIVE_REPLY")
SEND_CHALLENGE: Final = Sentinel("SEND_CHALLENGE")
RECV_CHALLENGE: Final = Sentinel("RECV_CHALLENGE")
SEND_COMPLEMENT: Final = Sentinel("SEND_COMPLEMENT")
RECV_COMPLEMENT: Final = Sentinel("RECV_COMPLEMENT")
SEND_CHALLENGE_REPLY: Final = Sentinel("SEND_CHALLENGE_REPLY")
RECV_CHALLENGE_REPLY: Final = Sentinel("RECV_CHALLENGE_REPLY")
SEND_CHALLENGE_ACK: Final = Sentinel("SEND_CHALLENGE_ACK")
RECV_CHALLENGE_ACK: Final = Sentinel("RECV_CHALLENGE_ACK")
CONNECTED: Final = Sentinel("CONNECTED")
CLOSED: Final = Sentinel("CLOSED")

#: Statuses the acceptor may send first, and the initiator's answers to ``alive``.
_STATUSES: Final = frozenset({"ok", "ok_simultaneous", "nok", "not_allowed", "alive", "named"})
_NAMED: Final = b"named:"
_ALIVE_REPLIES: Final = frozenset({"true", "false"})

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_LENGTHS: Final = {2: _U16, 4: _U32}
_NAME_V6 = struct.Struct(">QIH")  # flags, creation, name length (after the 'N' tag)
_NAME_V5 = struct.Struct(">HI")  # version, flags (after the 'n' tag)
_CHALLENGE_V6 = struct.Struct(">QIIH")  # flags, challenge, creation, name length
_CHALLENGE_V5 = struct.Struct(">HII")  # version, flags, challenge
_COMPLEMENT = struct.Struct(">II")  # flags high, creation
_REPLY = struct.Struct(">I16s")  # challenge, digest

_DEFAULT_MAX_MESSAGE: Final = 2048


# ---------------------------------------------------------------------------------------------
# Events: one per handshake message.


@dataclass(frozen=True, slots=True)
class SendName:
    """The initiator's name message: ``'N'`` (``version=6``) or the old ``'n'`` (``version=5``).

    A version-5 name carries only the low 32 flag bits and no creation (``creation=0``). With
    ``DFLAG_NAME_ME`` in ``flags`` (a dynamic name, version 6 only) ``name`` is the host alone.
    """

    name: str
    flags: int
    creation: int = 0
    version: int = 6


@dataclass(frozen=True, slots=True)
class Status:
    """A status message: the acceptor's ``ok``, ``ok_simultaneous``, ``nok``, ``not_allowed``,
    ``alive`` or ``named`` (with the ``name`` and ``creation`` it assigns to an initiator that asked
    for a dynamic name), or the initiator's ``true``/``false`` answer to ``alive``."""

    status: str
    name: str = ""
    creation: int = 0


@dataclass(frozen=True, slots=True)
class Challenge:
    """The acceptor's challenge (always the version-6 ``'N'`` form when sent by philipjose)."""

    name: str
    flags: int
    challenge: int
    creation: int = 0
    version: int = 6


@dataclass(frozen=True, slots=True)
class Complement:
    """The complement an initiator sends after an old ``'n'`` name: high flag bits and creation."""

    flags_high: int
    creation: int


@dataclass(frozen=True, slots=True)
class ChallengeReply:
    """The initiator's own challenge and its digest of the acceptor's challenge."""

    challenge: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class ChallengeAck:
    """The acceptor's digest of the initiator's challenge."""

    digest: bytes


HandshakeEvent = SendName | Status | Challenge | Complement | ChallengeReply | ChallengeAck


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What the handshake learnt about the peer: full node name, flags, creation, handshake version."""

    name: str
    flags: int
    creation: int
    version: int


# ---------------------------------------------------------------------------------------------
# Pure helpers.


def gen_digest(challenge: int, cookie: bytes) -> bytes:
    """``MD5(cookie + str(challenge))``, the 16-byte digest both sides compute (``dist_util``)."""
    return hashlib.md5(cookie + str(challenge).encode("ascii")).digest()


def split_node_name(name: str) -> tuple[str, str]:
    """Split ``"alive@host"`` into ``("alive", "host")``; raises ``ValueError`` unless well formed."""
    alive, sep, host = name.partition("@")
    if not sep or not alive or not host or "@" in host or len(name) > 255:
        raise ValueError(f"not a node name (want alive@host, at most 255 characters): {name!r}")
    return alive, host


_WAITING_FOR: Final = {
    RECV_NAME: "its name",
    RECV_STATUS: "its status",
    RECV_ALIVE_REPLY: "its answer to 'alive'",
    RECV_CHALLENGE: "its challenge",
    RECV_COMPLEMENT: "its complement",
    RECV_CHALLENGE_REPLY: "its challenge reply",
    RECV_CHALLENGE_ACK: "its challenge ack",
}


def waiting_for(state: Sentinel) -> str:
    """What a handshake in ``state`` waits for, in words (for log lines: "timed out waiting for ...")."""
    if state in _WAITING_FOR:
        return _WAITING_FOR[state]
    if state is CONNECTED or state is CLOSED:
        return "nothing (the handshake is over)"
    return "our own message to be sent"


def _decode_name(raw: bytes, *, dynamic: bool = False) -> str:
    try:
        name = raw.decode("utf-8")
        if dynamic:
            if not name or "@" in name:
                raise ValueError("a dynamic name request carries a host name alone")
        else:
            split_node_name(name)
    except ValueError as exc:
        raise HandshakeError(f"bad node name in handshake: {raw[:80]!r}") from exc
    return name


# ---------------------------------------------------------------------------------------------
# The machine.

_INITIATOR_SENDS: dict[Sentinel, type] = {
    SEND_NAME: SendName,
    SEND_ALIVE_REPLY: Status,
    SEND_COMPLEMENT: Complement,
    SEND_CHALLENGE_REPLY: ChallengeReply,
}
_ACCEPTOR_SENDS: dict[Sentinel, type] = {
    SEND_STATUS: Status,
    SEND_CHALLENGE: Challenge,
    SEND_CHALLENGE_ACK: ChallengeAck,
}


class Handshake:
    """One side of one handshake.

    ``Handshake(initiator=True, cookie=b"secret")`` starts in ``SEND_NAME``; with ``initiator=False``
    it starts in ``RECV_NAME``. ``cookie`` is the shared secret (bytes, as Erlang hashes the cookie's
    Latin-1 characters). ``mandatory`` is the set of flags a peer must have (checked here when the
    initiator receives the challenge; the acceptor's caller checks ``SendName.flags`` and answers
    ``not_allowed``, as OTP does).

    ``length_size`` is the size of each message's length prefix: 2 (plain TCP, the default) or 4 (the
    handshake inside TLS, as OTP's ``inet_tls_dist``).

    After ``CONNECTED``: ``peer`` describes the peer, ``flags`` holds the negotiated flags (the bits both
    sides set) and ``trailing_data`` the bytes received after the last handshake message (the first
    frames of the connection).
    """

    def __init__(
        self,
        *,
        initiator: bool,
        cookie: bytes,
        mandatory: int | None = None,
        max_message_size: int = _DEFAULT_MAX_MESSAGE,
        length_size: int = 2,
    ) -> None:
        if length_size not in _LENGTHS:
            raise ValueError(f"length_size must be 2 or 4, not {length_size!r}")
        self.initiator = initiator
        self._length = _LENGTHS[length_size]
        self._cookie = bytes(cookie)
        self._mandatory = mandatory
        self._max_message = max_message_size
        self._buffer = bytearray()
        self.state: Sentinel = SEND_NAME if initiator else RECV_NAME
        self._our_flags = 0
        self._our_challenge: int | None = None
        self._peer_name = ""
        self._peer_flags = 0
        self._peer_creation = 0
        self._peer_version = 0
        self._peer_challenge = 0
        self._sent_old_name = False
        self.own_name = ""  # the name we sent (the acceptor's assigned name after ``named``)
        self.own_creation = 0

    # -- results ---------------------------------------------------------------------------------

    @property
    def peer(self) -> PeerInfo:
        """The peer's identity, as far as the handshake has learnt it."""
        return PeerInfo(self._peer_name, self._peer_flags, self._peer_creation, self._peer_version)

    @property
    def flags(self) -> int:
        """The negotiated flags: those both sides advertised."""
        return self._our_flags & self._peer_flags

    @property
    def trailing_data(self) -> bytes:
        """Bytes received beyond the handshake messages consumed so far."""
        return bytes(self._buffer)

    def challenge_reply(self, challenge: int) -> ChallengeReply:
        """The initiator's reply: our new ``challenge`` and the digest of the peer's challenge."""
        return ChallengeReply(challenge & 0xFFFFFFFF, gen_digest(self._peer_challenge, self._cookie))

    def challenge_ack(self) -> ChallengeAck:
        """The acceptor's ack: the digest of the challenge the initiator sent in its reply."""
        return ChallengeAck(gen_digest(self._peer_challenge, self._cookie))

    # -- input -----------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray) -> None:
        """Append bytes received from the peer."""
        self._buffer += data

    def next_event(self) -> HandshakeEvent | Sentinel:
        """The peer's next handshake message as an event, or ``NEED_DATA``.

        Raises :class:`HandshakeError` on a malformed or unexpected message and
        :class:`AuthenticationError` on a wrong digest.
        """
        state = self.state
        if state in (CONNECTED, CLOSED):
            return NEED_DATA
        if state in _INITIATOR_SENDS or state in _ACCEPTOR_SENDS:
            raise RuntimeError(f"next_event() in state {state}: it is our turn to send")
        body = self._take_message()
        if body is None:
            return NEED_DATA
        event = self._parse(state, body)
        self._after_receive(event)
        return event

    def _take_message(self) -> bytes | None:
        buffer = self._buffer
        size = self._length.size
        if len(buffer) < size:
            return None
        (length,) = self._length.unpack_from(buffer)
        if length == 0:
            raise HandshakeError("empty handshake message")
        if length > self._max_message:
            raise HandshakeError(f"handshake message of {length} bytes (limit {self._max_message})")
        if len(buffer) < size + length:
            return None
        body = bytes(buffer[size : size + length])
        del buffer[: size + length]
        return body

    def _parse(self, state: Sentinel, body: bytes) -> HandshakeEvent:
        tag = body[0]
        try:
            if state is RECV_NAME:
                return self._parse_name(tag, body)
            if state is RECV_STATUS or state is RECV_ALIVE_REPLY:
                return self._parse_status(tag, body)
            if state is RECV_CHALLENGE:
                return self._parse_challenge(tag, body)
            if state is RECV_COMPLEMENT:
                if tag != ord("c") or len(body) < 1 + _COMPLEMENT.size:
                    raise HandshakeError(f"expected the complement 'c', got {body[:16]!r}")
                return Complement(*_COMPLEMENT.unpack_from(body, 1))
            if state is RECV_CHALLENGE_REPLY:
                if tag != ord("r") or len(body) != 1 + _REPLY.size:
                    raise HandshakeError(f"expected the challenge reply 'r', got {body[:16]!r}")
                challenge, digest = _REPLY.unpack_from(body, 1)
                return ChallengeReply(challenge, digest)
            if state is RECV_CHALLENGE_ACK:
                if tag != ord("a") or len(body) != 17:
                    raise HandshakeError(f"expected the challenge ack 'a', got {body[:16]!r}")
                return ChallengeAck(body[1:])
        except struct.error as exc:  # pragma: no cover - lengths are checked before unpacking
            raise HandshakeError(f"truncated handshake message: {body[:16]!r}") from exc
        raise AssertionError(f"unhandled state {state}")  # pragma: no cover

    def _parse_name(self, tag: int, body: bytes) -> SendName:
        if tag == ord("N"):
            if len(body) < 1 + _NAME_V6.size:
                raise HandshakeError("truncated 'N' name message")
            flags, creation, nlen = _NAME_V6.unpack_from(body, 1)
            end = 1 + _NAME_V6.size + nlen
            if len(body) < end:
                raise HandshakeError("truncated node name in 'N' name message")
            dynamic = bool(flags & DFLAG_NAME_ME)
            return SendName(_decode_name(body[1 + _NAME_V6.size : end], dynamic=dynamic), flags, creation, 6)
        if tag == ord("n"):
            if len(body) < 1 + _NAME_V5.size + 1:
                raise HandshakeError("truncated 'n' name message")
            version, flags = _NAME_V5.unpack_from(body, 1)
            if version != 5:
                raise HandshakeError(f"'n' name message with version {version} (want 5)")
            return SendName(_decode_name(body[1 + _NAME_V5.size :]), flags, 0, 5)
        raise HandshakeError(f"expected a name message 'N' or 'n', got {body[:16]!r}")

    def _parse_status(self, tag: int, body: bytes) -> Status:
        if tag != ord("s"):
            raise HandshakeError(f"expected a status 's', got {body[:16]!r}")
        if self.state is RECV_STATUS and body.startswith(b"s" + _NAMED):
            if not self._our_flags & DFLAG_NAME_ME:
                raise HandshakeError("status 'named:' but we did not ask for a dynamic name")
            rest = body[1 + len(_NAMED) :]
            if len(rest) < 2 or len(rest) < 2 + _U16.unpack_from(rest)[0] + 4:
                raise HandshakeError(f"truncated 'named:' status: {body[:40]!r}")
            (nlen,) = _U16.unpack_from(rest)
            name = _decode_name(rest[2 : 2 + nlen])
            if split_node_name(name)[1] != self.own_name:
                raise HandshakeError(f"assigned name {name!r} is not on our host {self.own_name!r}")
            (creation,) = _U32.unpack_from(rest, 2 + nlen)
            return Status("named", name, creation)
        text = body[1:].decode("latin-1")
        allowed = _STATUSES if self.state is RECV_STATUS else _ALIVE_REPLIES
        if text not in allowed or text == "named":
            raise HandshakeError(f"unexpected status {text[:40]!r} in state {self.state}")
        if self._our_flags & DFLAG_NAME_ME and text != "not_allowed":
            raise HandshakeError(f"status {text!r} to our request for a dynamic name (want 'named:')")
        return Status(text)

    def _parse_challenge(self, tag: int, body: bytes) -> Challenge:
        if tag == ord("N"):
            if len(body) < 1 + _CHALLENGE_V6.size:
                raise HandshakeError("truncated 'N' challenge message")
            flags, challenge, creation, nlen = _CHALLENGE_V6.unpack_from(body, 1)
            end = 1 + _CHALLENGE_V6.size + nlen
            if len(body) < end:
                raise HandshakeError("truncated node name in 'N' challenge message")
            name = _decode_name(body[1 + _CHALLENGE_V6.size : end])
            return Challenge(name, flags, challenge, creation, 6)
        if tag == ord("n"):
            if len(body) < 1 + _CHALLENGE_V5.size + 1:
                raise HandshakeError("truncated 'n' challenge message")
            version, flags, challenge = _CHALLENGE_V5.unpack_from(body, 1)
            name = _decode_name(body[1 + _CHALLENGE_V5.size :])
            return Challenge(name, flags, challenge, 0, version)
        raise HandshakeError(f"expected a challenge 'N', got {body[:16]!r}")

    def _after_receive(self, event: HandshakeEvent) -> None:
        state = self.state
        if state is RECV_NAME:
            assert isinstance(event, SendName)
            self._peer_name = event.name
            self._peer_flags = event.flags
            self._peer_creation = event.creation
            self._peer_version = event.version
            self.state = SEND_STATUS
        elif state is RECV_STATUS:
            assert isinstance(event, Status)
            if event.status == "named":
                self.own_name = event.name
                self.own_creation = event.creation
                self.state = RECV_CHALLENGE
            elif event.status in ("ok", "ok_simultaneous"):
                self.state = RECV_CHALLENGE
            elif event.status == "alive":
                self.state = SEND_ALIVE_REPLY
            else:
                self.state = CLOSED
        elif state is RECV_ALIVE_REPLY:
            assert isinstance(event, Status)
            self.state = SEND_CHALLENGE if event.status == "true" else CLOSED
        elif state is RECV_CHALLENGE:
            assert isinstance(event, Challenge)
            mandatory = MANDATORY if self._mandatory is None else self._mandatory
            missing = missing_mandatory(event.flags, mandatory)
            if missing:
                raise HandshakeError(
                    f"peer {event.name} lacks mandatory distribution flags {flag_names(missing)}"
                )
            self._peer_name = event.name
            self._peer_flags = event.flags
            self._peer_creation = event.creation
            self._peer_version = event.version
            self._peer_challenge = event.challenge
            self.state = SEND_COMPLEMENT if self._sent_old_name else SEND_CHALLENGE_REPLY
        elif state is RECV_COMPLEMENT:
            assert isinstance(event, Complement)
            self._peer_flags = (self._peer_flags & 0xFFFFFFFF) | (event.flags_high << 32)
            self._peer_creation = event.creation
            self.state = RECV_CHALLENGE_REPLY
        elif state is RECV_CHALLENGE_REPLY:
            assert isinstance(event, ChallengeReply)
            assert self._our_challenge is not None
            if not hmac.compare_digest(event.digest, gen_digest(self._our_challenge, self._cookie)):
                self.state = CLOSED
                raise AuthenticationError(f"wrong digest from {self._peer_name}: the cookies differ")
            self._peer_challenge = event.challenge
            self.state = SEND_CHALLENGE_ACK
        elif state is RECV_CHALLENGE_ACK:
            assert isinstance(event, ChallengeAck)
            assert self._our_challenge is not None
            if not hmac.compare_digest(event.digest, gen_digest(self._our_challenge, self._cookie)):
                self.state = CLOSED
                raise AuthenticationError(f"wrong digest from {self._peer_name}: the cookies differ")
            self.state = CONNECTED

    # -- output ----------------------------------------------------------------------------------

    def send(self, event: HandshakeEvent) -> bytes:
        """The bytes (with their 2- or 4-byte length, see ``length_size``) for our next handshake message.

        Raises ``RuntimeError`` if it is not our turn or the event is not the one this state expects,
        and ``ValueError`` on a bad field (the caller's faults).
        """
        state = self.state
        expected = (_INITIATOR_SENDS if self.initiator else _ACCEPTOR_SENDS).get(state)
        if expected is None or not isinstance(event, expected):
            raise RuntimeError(f"cannot send {type(event).__name__} in state {state}")
        body = self._encode(event)
        if len(body) > 0xFFFF:  # pragma: no cover - names are limited to 255 characters
            raise ValueError("handshake message too long")
        return self._length.pack(len(body)) + body

    def _encode(self, event: HandshakeEvent) -> bytes:
        state = self.state
        if isinstance(event, SendName):
            dynamic = bool(event.flags & DFLAG_NAME_ME)
            if dynamic and event.version != 6:
                raise ValueError("a dynamic name needs the version-6 'N' name message")
            name = _encode_name(event.name, dynamic=dynamic)
            self._our_flags = event.flags
            self.own_name = event.name
            self.own_creation = event.creation
            if event.version == 6:
                body = b"N" + _NAME_V6.pack(event.flags, event.creation, len(name)) + name
            elif event.version == 5:
                self._sent_old_name = True
                body = b"n" + _NAME_V5.pack(5, event.flags & 0xFFFFFFFF) + name
            else:
                raise ValueError(f"handshake version {event.version} (want 5 or 6)")
            self.state = RECV_STATUS
            return body
        if isinstance(event, Status):
            if state is SEND_STATUS:
                if event.status not in _STATUSES:
                    raise ValueError(f"bad status {event.status!r}")
                dynamic = bool(self._peer_flags & DFLAG_NAME_ME)
                if (event.status == "named") is not dynamic and event.status != "not_allowed":
                    raise ValueError(
                        "a peer that asks for a dynamic name is answered 'named' (or 'not_allowed'), "
                        "and only such a peer"
                    )
                if event.status == "named":
                    name = _encode_name(event.name)
                    if split_node_name(event.name)[1] != self._peer_name:
                        raise ValueError(f"assigned name {event.name!r} is not on the peer's host")
                    self._peer_name = event.name
                    self._peer_creation = event.creation
                    self.state = SEND_CHALLENGE
                    return b"s" + _NAMED + _U16.pack(len(name)) + name + _U32.pack(event.creation)
                if event.status in ("ok", "ok_simultaneous"):
                    self.state = SEND_CHALLENGE
                elif event.status == "alive":
                    self.state = RECV_ALIVE_REPLY
                else:
                    self.state = CLOSED
            else:
                if event.status not in _ALIVE_REPLIES:
                    raise ValueError(f"bad answer to alive {event.status!r} (want 'true' or 'false')")
                self.state = RECV_CHALLENGE if event.status == "true" else CLOSED
            return b"s" + event.status.encode("ascii")
        if isinstance(event, Challenge):
            if event.version != 6:
                raise ValueError("philipjose only sends the version-6 'N' challenge")
            name = _encode_name(event.name)
            self._our_flags = event.flags
            self._our_challenge = event.challenge & 0xFFFFFFFF
            body = b"N" + _CHALLENGE_V6.pack(event.flags, self._our_challenge, event.creation, len(name))
            self.state = RECV_COMPLEMENT if self._peer_version == 5 else RECV_CHALLENGE_REPLY
            return body + name
        if isinstance(event, Complement):
            self.state = SEND_CHALLENGE_REPLY
            return b"c" + _COMPLEMENT.pack(event.flags_high & 0xFFFFFFFF, event.creation)
        if isinstance(event, ChallengeReply):
            if len(event.digest) != 16:
                raise ValueError("a digest is 16 bytes")
            self._our_challenge = event.challenge & 0xFFFFFFFF
            self.state = RECV_CHALLENGE_ACK
            return b"r" + _REPLY.pack(self._our_challenge, event.digest)
        if isinstance(event, ChallengeAck):
            if len(event.digest) != 16:
                raise ValueError("a digest is 16 bytes")
            self.state = CONNECTED
            return b"a" + event.digest
        raise AssertionError(f"unhandled event {event!r}")  # pragma: no cover


def _encode_name(name: str, *, dynamic: bool = False) -> bytes:
    if dynamic:
        if not name or "@" in name:
            raise ValueError(f"a dynamic name request carries a host name alone, not {name!r}")
    else:
        split_node_name(name)
    return name.encode("utf-8")
