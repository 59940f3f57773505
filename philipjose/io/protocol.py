"""The Erlang io protocol, sans I/O: what an io server answers to each request.

Theory of operation
-------------------
A process writes and reads through its group leader with ``{io_request, From, ReplyAs, Request}``
and waits for ``{io_reply, ReplyAs, Reply}`` (OTP's ``io_protocol``). :func:`parse_envelope` takes
the message apart; :func:`decide` turns one request and the server's :class:`Options` into a
:class:`Decision`: the reply, the text to output, the new options, and for a read the
:class:`Read` the server must carry out with its input (then :func:`read_reply` makes the reply
from what was read). Nothing here does I/O or touches Trio.

Requests answered (the forms OTP 25 and 27 send, and the old forms without an encoding):

- ``{put_chars, Enc, Chars}``, ``{put_chars, Enc, M, F, A}`` for the documented set of functions
  :data:`MFAS` (``io:format`` sends ``io_lib:format/2``, ``io:write`` ``io_lib:write/1``); any
  other function is ``{error, F}``, bad characters ``{error, put_chars}``;
- ``{get_line, Enc, Prompt}``, ``{get_chars, Enc, Prompt, N}``: ``eof`` without an input source,
  else the data (a list or, after ``setopts([binary])``, a binary in the request's encoding);
  ``{get_until, ...}`` (``io:read``, ``io:fread``) is ``eof`` without input and ``{error,
  enotsup}`` with it (Erlang's scanners are not run in Python);
- ``getopts`` (``[{binary, B}, {encoding, E}]``), ``{setopts, Opts}`` (``binary``, ``list``,
  ``{binary, B}``, ``{encoding, latin1 | unicode | utf8}``; anything else ``{error, enotsup}``);
- ``{get_geometry, _}``: ``{error, enotsup}`` (not a terminal), as ``erl -noshell`` answers;
- ``{requests, [R...]}``: in order, stopping at the first error; the reply of the last one;
- anything else: ``{error, request}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from philipjose.io._format import FormatError, chars_of, format, write
from philipjose.term import Atom, Pid

__all__ = [
    "MFAS",
    "Decision",
    "Options",
    "Read",
    "decide",
    "parse_envelope",
    "read_reply",
]

IO_REQUEST: Final = Atom("io_request")
IO_REPLY: Final = Atom("io_reply")
OK: Final = Atom("ok")
EOF: Final = Atom("eof")
ERROR: Final = Atom("error")
_PUT_CHARS: Final = Atom("put_chars")
_GET_LINE: Final = Atom("get_line")
_GET_CHARS: Final = Atom("get_chars")
_GET_UNTIL: Final = Atom("get_until")
_GETOPTS: Final = Atom("getopts")
_SETOPTS: Final = Atom("setopts")
_GET_GEOMETRY: Final = Atom("get_geometry")
_REQUESTS: Final = Atom("requests")
_REQUEST: Final = Atom("request")
_ENOTSUP: Final = Atom("enotsup")
_BINARY: Final = Atom("binary")
_LIST: Final = Atom("list")
_ENCODING: Final = Atom("encoding")
_LATIN1: Final = Atom("latin1")
_UNICODE: Final = Atom("unicode")
_UTF8: Final = Atom("utf8")
_IO_LIB: Final = Atom("io_lib")
_NO_TRANSLATION: Final = Atom("no_translation")

#: The ``{put_chars, Enc, M, F, A}`` functions this io server evaluates (module, function, arity).
MFAS: Final = frozenset(
    {
        ("io_lib", "format", 2),
        ("io_lib", "fwrite", 2),
        ("io_lib", "write", 1),
        ("io_lib", "write", 2),
        ("io_lib", "print", 1),
        ("io_lib", "nl", 0),
    }
)

NodeIndex = Callable[[Atom], int]


@dataclass(frozen=True, slots=True)
class Options:
    """An io server's options: ``binary`` (reads answer binaries, else lists), ``encoding``
    (``"unicode"`` or ``"latin1"``), and whether it has an input source."""

    binary: bool = False
    encoding: str = "unicode"
    has_input: bool = False


@dataclass(frozen=True, slots=True)
class Read:
    """Input to read: a line (``count`` None) or ``count`` characters; ``encoding`` of the reply."""

    prompt: str
    count: int | None
    encoding: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do for one request: output ``text``, then reply ``reply`` (or, when ``read`` is set,
    read and reply with :func:`read_reply`); ``options`` are the server's options from now on."""

    reply: Any
    text: str
    options: Options
    read: Read | None = None


def parse_envelope(msg: Any) -> tuple[Any, Any, Any] | None:
    """``(From, ReplyAs, Request)`` of an ``{io_request, From, ReplyAs, Request}``, else None."""
    if type(msg) is tuple and len(msg) == 4 and msg[0] == IO_REQUEST:
        return msg[1], msg[2], msg[3]
    return None


def _encoding(value: Any) -> str | None:
    if value in (_UNICODE, _UTF8):
        return "unicode"
    if value == _LATIN1:
        return "latin1"
    return None


def _text(data: Any, enc: str) -> str | None:
    try:
        return "".join(map(chr, chars_of(data, enc)))
    except (FormatError, ValueError, TypeError):
        return None


def _prompt(prompt: Any) -> str:
    if type(prompt) is Atom:
        return str(prompt)
    text = _text(prompt, "unicode")
    if text is not None:
        return text
    try:
        return write(prompt)
    except FormatError:
        return ""


def _apply(
    module: Any, function: Any, args: Any, local_node: Atom | None, node_index: NodeIndex
) -> str | None:
    if type(module) is not Atom or type(function) is not Atom or not isinstance(args, list):
        return None
    if (str(module), str(function), len(args)) not in MFAS:
        return None
    name = str(function)
    try:
        if name in ("format", "fwrite"):
            return format(args[0], args[1], local_node=local_node, node_index=node_index)
        if name == "write":
            depth = args[1] if len(args) == 2 else -1
            if type(depth) is not int:
                return None
            return write(args[0], depth=depth, local_node=local_node)
        if name == "print":
            return format("~p", [args[0]], local_node=local_node, node_index=node_index)
        return "\n"  # io_lib:nl()
    except FormatError:
        return None


def decide(
    request: Any,
    options: Options,
    *,
    local_node: Atom | None = None,
    node_index: NodeIndex | None = None,
) -> Decision:
    """Answer one io request (see the module docstring). Pure: never raises for any term."""
    index = node_index if node_index is not None else (lambda node: 0)
    if type(request) is tuple and request:
        op, n = request[0], len(request)
        if op == _PUT_CHARS:
            return _put_chars(request, options, local_node, index)
        if op == _GET_LINE and n in (2, 3):
            enc = _encoding(request[1]) if n == 3 else "latin1"
            if enc is not None:
                return _read(options, Read(_prompt(request[-1]), None, enc))
        if op == _GET_CHARS and n in (3, 4):
            enc = _encoding(request[1]) if n == 4 else "latin1"
            count = request[-1]
            if enc is not None and type(count) is int and count >= 0:
                return _read(options, Read(_prompt(request[-2]), count, enc))
        if op == _GET_UNTIL and n in (5, 6):
            if not options.has_input:
                return Decision(EOF, "", options)
            return Decision((ERROR, _ENOTSUP), "", options)
        if op == _SETOPTS and n == 2:
            return _setopts(request[1], options)
        if op == _GET_GEOMETRY and n == 2:
            return Decision((ERROR, _ENOTSUP), "", options)
        if op == _REQUESTS and n == 2 and isinstance(request[1], list):
            return _requests(request[1], options, local_node, index)
    elif request == _GETOPTS:
        enc = _UNICODE if options.encoding == "unicode" else _LATIN1
        return Decision([(_BINARY, options.binary), (_ENCODING, enc)], "", options)
    return Decision((ERROR, _REQUEST), "", options)


def _put_chars(
    request: tuple[Any, ...], options: Options, local_node: Atom | None, index: NodeIndex
) -> Decision:
    n = len(request)
    if n == 2:  # {put_chars, Chars}: latin1
        enc: str | None = "latin1"
        body: tuple[Any, ...] = request[1:]
    elif n == 4:  # {put_chars, M, F, A}: latin1
        enc, body = "latin1", request[1:]
    else:
        enc, body = _encoding(request[1]), request[2:]
    if enc is None or len(body) not in (1, 3):
        return Decision((ERROR, _REQUEST), "", options)
    if len(body) == 1:
        text = _text(body[0], enc)
        if text is None:
            return Decision((ERROR, _PUT_CHARS), "", options)
        return Decision(OK, text, options)
    module, function, args = body
    text = _apply(module, function, args, local_node, index)
    if text is None:
        return Decision((ERROR, function), "", options)
    if enc == "latin1" and any(ord(c) > 255 for c in text):
        return Decision((ERROR, (_NO_TRANSLATION, _UNICODE, _LATIN1)), "", options)
    return Decision(OK, text, options)


def _read(options: Options, read: Read) -> Decision:
    if not options.has_input:
        return Decision(EOF, "", options)
    return Decision(EOF, read.prompt, options, read)


def _setopts(opts: Any, options: Options) -> Decision:
    if not isinstance(opts, list):
        return Decision((ERROR, _ENOTSUP), "", options)
    new = options
    for opt in opts:
        if opt == _BINARY:
            new = replace(new, binary=True)
        elif opt == _LIST:
            new = replace(new, binary=False)
        elif type(opt) is tuple and len(opt) == 2 and opt[0] == _BINARY and type(opt[1]) is bool:
            new = replace(new, binary=opt[1])
        elif type(opt) is tuple and len(opt) == 2 and opt[0] == _ENCODING and _encoding(opt[1]):
            new = replace(new, encoding=_encoding(opt[1]) or "unicode")
        else:
            return Decision((ERROR, _ENOTSUP), "", options)
    return Decision(OK, "", new)


def _requests(reqs: list[Any], options: Options, local_node: Atom | None, index: NodeIndex) -> Decision:
    text: list[str] = []
    reply: Any = OK
    for req in reqs:
        d = decide(req, options, local_node=local_node, node_index=index)
        if d.read is not None:  # a read inside {requests, ...}: not supported with input
            return Decision((ERROR, _REQUEST), "".join(text), options)
        text.append(d.text)
        options = d.options
        reply = d.reply
        if type(reply) is tuple and len(reply) == 2 and reply[0] == ERROR:
            break
    return Decision(reply, "".join(text), options)


def read_reply(read: Read, data: str | None, options: Options) -> Any:
    """The reply to a read: ``eof`` when ``data`` is None or empty, else the data as a list of
    characters or (``binary`` option) a binary in the request's encoding."""
    if not data:
        return EOF
    if read.encoding == "latin1" and any(ord(c) > 255 for c in data):
        return (ERROR, (_NO_TRANSLATION, _UNICODE, _LATIN1))
    if options.binary:
        return data.encode("utf-8" if read.encoding == "unicode" else "latin-1")
    return [ord(c) for c in data]


def is_pid(value: Any) -> bool:
    """True for a :class:`Pid` (the only ``From`` an io server replies to)."""
    return type(value) is Pid
