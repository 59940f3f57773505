"""``print()`` to the group leader: a ``sys.stdout`` that, inside :func:`print_to_group_leader`,
sends what is written to the current process's group leader.

Theory of operation
-------------------
The first :func:`print_to_group_leader` replaces ``sys.stdout`` by a :class:`GroupLeaderStdout`
wrapping the stream that was there (it is installed again, around the new stream, if someone
replaces ``sys.stdout`` later). A context variable says whether the running code asked for the
redirection; Trio gives every task its own context, so only the code inside the ``with`` block --
and the helper tasks it starts -- is redirected, while every other task, and worker threads
(where no process runs), still write to the wrapped stream.

A redirected ``write(s)`` sends ``{io_request, Sink, Ref, {put_chars, unicode, s}}`` to the
group leader at once, from the writing process, so the text keeps its order with the process's
``pj.io`` calls and messages. ``print`` cannot wait, so the reply goes to a per-runtime sink
process that drops it; a group leader that is gone loses the text, as Erlang's would. rpc runs
every exposed function called from another node inside this block (see ``docs/rpc.md``).
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Final, TextIO

from philipjose.actors import Runtime, receive
from philipjose.actors.runtime import current_process
from philipjose.io.protocol import IO_REQUEST
from philipjose.term import Atom, Pid

__all__ = ["GroupLeaderStdout", "Redirection", "print_to_group_leader"]


class Redirection:
    """One :func:`print_to_group_leader` block; ``written`` is True once it sent text."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = False

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` seconds) until the group leader has written what this block
        sent: one request round trip, since an io server serves a sender's requests in order.
        Nothing to wait for when nothing was printed. rpc drains before a served call returns, so
        the output is out before the caller has the result, as with Erlang's synchronous io."""
        if not self.written:
            return
        from philipjose.io.api import IoError, request  # api sits beside this module

        with contextlib.suppress(IoError, TimeoutError):
            await request((_PUT_CHARS, _UNICODE, []), timeout=timeout)
        self.written = False


_active: Final[ContextVar[Redirection | None]] = ContextVar("philipjose_print_to_group_leader", default=None)
_sinks: Final[weakref.WeakKeyDictionary[Runtime, Pid]] = weakref.WeakKeyDictionary()
_PUT_CHARS: Final = Atom("put_chars")
_UNICODE: Final = Atom("unicode")


async def _sink() -> None:
    while True:
        await receive()


def _sink_of(rt: Runtime) -> Pid:
    pid = _sinks.get(rt)
    if pid is None or not rt.lookup(pid):
        pid, _ = rt.spawn(_sink, ())
        _sinks[rt] = pid
    return pid


class GroupLeaderStdout:
    """The ``sys.stdout`` replacement (see the module docstring); everything that is not a
    redirected write goes to the wrapped stream."""

    def __init__(self, wrapped: TextIO) -> None:
        self.wrapped = wrapped

    def write(self, text: str) -> int:
        redirection = _active.get()
        if redirection is not None and text:
            proc = current_process()
            if proc is not None and proc.alive:
                redirection.written = True
                rt = proc.rt
                gl = rt.group_leader_of(proc)
                rt.send(gl, (IO_REQUEST, _sink_of(rt), rt.make_ref(), (_PUT_CHARS, _UNICODE, text)))
                return len(text)
        return self.wrapped.write(text)

    def flush(self) -> None:
        if _active.get() is None or current_process() is None:
            self.wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _install() -> None:
    if not isinstance(sys.stdout, GroupLeaderStdout) and sys.stdout is not None:
        sys.stdout = GroupLeaderStdout(sys.stdout)


@contextlib.contextmanager
def print_to_group_leader() -> Iterator[Redirection]:
    """Inside the block, ``print()`` and other writes to ``sys.stdout`` from the current task go to
    the current process's group leader (``pj.group_leader()``) instead of the terminal.

    Yields a :class:`Redirection`; ``await redirection.drain()`` after the block waits until the
    group leader has written it all."""
    _install()
    redirection = Redirection()
    token = _active.set(redirection)
    try:
        yield redirection
    finally:
        _active.reset(token)
