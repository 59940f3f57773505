"""Talking to an io server from Python: ``pj.io.format``, ``put_chars``, ``get_line``, ...

Each function sends one io request, as Erlang's ``io`` module does, to ``device`` (default: the
calling process's group leader) and waits for the reply under a monitor. The group leader may be
this node's io server, or an Erlang node's (for a function called by ``erpc:call`` from Erlang it
is the caller's), so the output appears where an Erlang programmer expects it. Call them from a
process. Requests travel in OTP's own shapes: ``format`` sends ``{put_chars, unicode, io_lib,
format, [Fmt, Args]}`` with ``Fmt`` as a character list, ``put_chars`` sends ``{put_chars,
unicode, Chars}``; a Python ``str`` argument arrives in Erlang as a UTF-8 binary, so print it with
``~ts`` (``~s`` shows its bytes as latin1 characters, as in Erlang).

Errors: an ``{error, Reason}`` reply raises :class:`IoError` (``reason`` holds it); a device that
is not alive raises ``IoError`` with ``terminated``, like Erlang's ``{error, terminated}``.
"""

from __future__ import annotations

from typing import Any, Final

from philipjose.actors import current_runtime, demonitor, group_leader, monitor, receive, send
from philipjose.actors import self as self_pid
from philipjose.io.protocol import EOF, ERROR, IO_REPLY, IO_REQUEST
from philipjose.term import Atom

__all__ = [
    "IoError",
    "format",
    "fwrite",
    "get_chars",
    "get_line",
    "getopts",
    "nl",
    "put_chars",
    "request",
    "setopts",
    "write",
]

_DOWN: Final = Atom("DOWN")
_PUT_CHARS: Final = Atom("put_chars")
_UNICODE: Final = Atom("unicode")
_IO_LIB: Final = Atom("io_lib")
_FORMAT: Final = Atom("format")
_WRITE: Final = Atom("write")
_GET_LINE: Final = Atom("get_line")
_GET_CHARS: Final = Atom("get_chars")
_GETOPTS: Final = Atom("getopts")
_SETOPTS: Final = Atom("setopts")
_STANDARD_IO: Final = Atom("standard_io")
_STANDARD_ERROR: Final = Atom("standard_error")
_USER: Final = Atom("user")
_TERMINATED: Final = Atom("terminated")
_OK: Final = Atom("ok")


class IoError(OSError):
    """An io request failed: ``reason`` is the Erlang reason (``terminated``, ``put_chars``,
    ``format``, ``enotsup``, ``request``, ...)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"io request failed: {reason!r}")
        self.reason = reason


def _device(device: Any) -> Any:
    if device is None or device == _STANDARD_IO:
        return group_leader()
    if device in (_USER, _STANDARD_ERROR):  # this node's own io server
        return current_runtime().group_leader_of(None)
    return device


async def request(req: Any, *, device: Any = None, timeout: float | None = None) -> Any:
    """Send the io request ``req`` (an Erlang term) to ``device`` and return the reply as it is.

    ``device``: None or ``standard_io`` (the group leader), ``user``/``standard_error`` (this
    node's default io server), a pid, a registered name or ``(name, node)``. Raises
    :class:`IoError` (``terminated``) when the device is not alive, ``TimeoutError`` after
    ``timeout`` seconds.
    """
    dest = _device(device)
    ref = monitor(dest)
    send(dest, (IO_REQUEST, self_pid(), ref, req))

    def answer(m: Any) -> bool:
        return type(m) is tuple and (
            (len(m) == 3 and m[1] == ref and m[0] == IO_REPLY)
            or (len(m) == 5 and m[1] == ref and m[0] == _DOWN)
        )

    try:
        msg = await receive(match=answer, timeout=timeout)
    finally:
        demonitor(ref, flush=True)
    if msg[0] == _DOWN:
        raise IoError(_TERMINATED)
    return msg[2]


def _check(reply: Any) -> Any:
    if type(reply) is tuple and len(reply) == 2 and reply[0] == ERROR:
        raise IoError(reply[1])
    return reply


def _charlist(text: str) -> list[int]:
    return [ord(c) for c in text]


async def put_chars(chars: Any, *, device: Any = None) -> None:
    """``io:put_chars(Device, Chars)``: ``chars`` is a ``str`` or Erlang chardata."""
    _check(await request((_PUT_CHARS, _UNICODE, chars), device=device))


async def format(fmt: Any, args: Any = (), *, device: Any = None) -> None:
    """``io:format(Device, Fmt, Args)``: the device formats with ``io_lib:format/2`` (this node's
    io server with :func:`philipjose.io.format_string`'s implementation, an Erlang one with
    OTP's). ``fmt`` is a ``str`` (sent as a character list) or Erlang format; ``args`` a list."""
    f = _charlist(fmt) if isinstance(fmt, str) and type(fmt) is not Atom else fmt
    _check(await request((_PUT_CHARS, _UNICODE, _IO_LIB, _FORMAT, [f, list(args)]), device=device))


fwrite = format


async def nl(*, device: Any = None) -> None:
    """``io:nl(Device)``."""
    _check(await request((_PUT_CHARS, _UNICODE, "\n"), device=device))


async def write(term: Any, *, device: Any = None) -> None:
    """``io:write(Device, Term)`` (sends ``io_lib:write/1``, as OTP does)."""
    _check(await request((_PUT_CHARS, _UNICODE, _IO_LIB, _WRITE, [term]), device=device))


def _text(data: Any) -> str | None:
    if data == EOF:
        return None
    _check(data)
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", errors="replace")
    if isinstance(data, list) and all(type(c) is int for c in data):
        return "".join(map(chr, data))
    raise IoError(data)


async def get_line(prompt: str = "", *, device: Any = None) -> str | None:
    """``io:get_line(Device, Prompt)``: the line with its newline, or None at end of input."""
    return _text(await request((_GET_LINE, _UNICODE, _charlist(prompt)), device=device))


async def get_chars(prompt: str, count: int, *, device: Any = None) -> str | None:
    """``io:get_chars(Device, Prompt, Count)``: up to ``count`` characters, or None at end of input."""
    return _text(await request((_GET_CHARS, _UNICODE, _charlist(prompt), count), device=device))


async def getopts(*, device: Any = None) -> list[Any]:
    """``io:getopts(Device)``: the device's options, e.g. ``[(binary, False), (encoding, unicode)]``."""
    reply = _check(await request(_GETOPTS, device=device))
    if not isinstance(reply, list):
        raise IoError(reply)
    return reply


async def setopts(opts: list[Any], *, device: Any = None) -> None:
    """``io:setopts(Device, Opts)``, e.g. ``[Atom('binary')]`` or ``[(Atom('encoding'), Atom('latin1'))]``."""
    reply = _check(await request((_SETOPTS, list(opts)), device=device))
    if reply != _OK:
        raise IoError(reply)
