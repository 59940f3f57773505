"""The io server process: a group leader that answers OTP's io protocol on a Python node.

Theory of operation
-------------------
:func:`io_server` is a process body: it takes each ``{io_request, From, ReplyAs, Request}`` from
its mailbox, lets :func:`philipjose.io.protocol.decide` answer it, writes the text to its output,
reads from its input when the request is a read, and replies ``{io_reply, ReplyAs, Reply}`` to
``From``. Requests are served one at a time in arrival order, as OTP's io servers serve them, so
the output of one process keeps its order. Other messages are dropped.

Output (``output=``): None writes to ``sys.stdout`` as it is at the time of the write (so
redirections and test captures see it), a text stream is written and flushed, a
``logging.Logger`` gets each complete line at INFO (a partial line waits for its newline), and any
other callable is called with the text. Input (``input=``): None answers every read with ``eof``;
a ``str`` is the whole input; a text stream is read in a worker thread (``readline`` /
``read(n)``), so a slow terminal or pipe never stalls the event loop. A prompt is written to the
output only when there is an input.

Every runtime has a default io server, started on first use (``pj.group_leader()``, a spawn on
another node, ``pj.io.*``), configured by the ``io_output`` and ``io_input`` options of ``pj.run``
and ``pj.node.start``.
"""

from __future__ import annotations

import io as _stdio
import logging
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, Final, TextIO

import trio

from philipjose.actors import Runtime, current_runtime, receive, send, set_default_group_leader_starter
from philipjose.io.protocol import IO_REPLY, Options, Read, decide, parse_envelope, read_reply
from philipjose.term import Atom, Pid

__all__ = ["Input", "Output", "check_options", "io_server", "start_server"]

log: Final = logging.getLogger("philipjose.io")

Output = TextIO | logging.Logger | Callable[[str], Any] | None
Input = TextIO | str | None

_ERROR: Final = Atom("error")


class _Sink:
    """Where an io server's text goes (see the module docstring)."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.partial = ""

    def write(self, text: str) -> None:
        out = self.output
        if out is None:
            stream = sys.stdout
            if stream is not None:
                stream.write(text)
                stream.flush()
        elif isinstance(out, logging.Logger):
            lines = (self.partial + text).split("\n")
            self.partial = lines.pop()
            for line in lines:
                out.info("%s", line)
        elif hasattr(out, "write"):
            out.write(text)
            flush = getattr(out, "flush", None)
            if flush is not None:
                flush()
        else:
            out(text)


class _Source:
    def __init__(self, source: Input) -> None:
        self.stream: TextIO | None = _stdio.StringIO(source) if isinstance(source, str) else source

    async def read(self, read: Read) -> str:
        stream = self.stream
        assert stream is not None
        if isinstance(stream, _stdio.StringIO):
            return stream.readline() if read.count is None else stream.read(read.count)
        if read.count is None:
            return await trio.to_thread.run_sync(stream.readline, abandon_on_cancel=True)
        return await trio.to_thread.run_sync(stream.read, read.count, abandon_on_cancel=True)


def check_options(output: Any, input: Any) -> None:
    """Raise ``TypeError`` for an ``io_output``/``io_input`` that is not one of the documented kinds."""
    if not (
        output is None or isinstance(output, logging.Logger) or hasattr(output, "write") or callable(output)
    ):
        raise TypeError(
            f"io_output must be None, a text stream, a logging.Logger or a callable, not {output!r}"
        )
    if not (input is None or isinstance(input, str) or hasattr(input, "readline")):
        raise TypeError(f"io_input must be None, a str or a text stream, not {input!r}")


async def io_server(
    output: Output = None, input: Input = None, *, binary: bool = False, encoding: str = "unicode"
) -> None:
    """The body of an io server process (see the module docstring); runs until killed."""
    rt = current_runtime()
    sink = _Sink(output)
    source = _Source(input) if input is not None else None
    options = Options(binary=binary, encoding=encoding, has_input=source is not None)
    numbers: dict[Atom, int] = {}

    def node_index(node: Atom) -> int:
        n = numbers.get(node)
        if n is None:
            n = numbers[node] = len(numbers) + 1
        return n

    while True:
        msg = await receive()
        envelope = parse_envelope(msg)
        if envelope is None:
            continue
        sender, reply_as, request = envelope
        decision = decide(request, options, local_node=rt.node, node_index=node_index)
        reply = decision.reply
        try:
            if decision.text:
                sink.write(decision.text)
            if decision.read is not None:
                assert source is not None
                data = await source.read(decision.read)
                reply = read_reply(decision.read, data, decision.options)
        except (OSError, ValueError) as exc:  # a closed or broken output/input
            log.warning("io server %r: %s", rt.node, exc)
            reply = (_ERROR, Atom("terminated"))
        options = decision.options
        if type(sender) is Pid:
            send(sender, (IO_REPLY, reply_as, reply))


def start_server(
    output: Output = None, input: Input = None, *, binary: bool = False, encoding: str = "unicode"
) -> Pid:
    """Start an io server process (a group leader) and return its pid; see the module docstring.

    Give it to ``pj.group_leader(pid, target)`` to collect a process's output somewhere else.
    """
    check_options(output, input)
    if encoding not in ("unicode", "latin1"):
        raise ValueError(f"encoding must be 'unicode' or 'latin1', not {encoding!r}")
    rt = current_runtime()
    pid, _ = rt.spawn(partial(io_server, binary=binary, encoding=encoding), (output, input))
    rt.set_group_leader(pid, pid)
    return pid


def _start_default(rt: Runtime) -> Pid:
    opts = rt.io_options
    pid, _ = rt.spawn(_default_body, (opts.get("output"), opts.get("input")))
    rt.set_group_leader(pid, pid)
    return pid


async def _default_body(output: Output, input: Input) -> None:
    await io_server(output, input)


set_default_group_leader_starter(_start_default)
