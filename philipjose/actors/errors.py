"""Errors raised by :mod:`philipjose.actors`.

- :class:`Exit` ends the current process with a reason (``raise pj.Exit(reason)``); ``pj.call`` raises
  it when the server dies, and ``pj.link`` raises ``Exit(noproc)`` when the target is dead.
- :class:`ActorError` is the base of the runtime's own errors; :class:`BadArg` (also a ``ValueError``)
  is Erlang's ``badarg``: the caller passed something the operation cannot accept (an unregistered
  name, a taken name, a dead pid, a remote pid where only local ones make sense, an unknown flag).
- :class:`NoProcessError` (also a ``RuntimeError``) means an operation that needs a current process or
  a running runtime was called outside one.
- :class:`StartError` is raised by ``GenServer.start``/``start_link`` when ``init`` fails.
- :class:`Busy` (also a ``BlockingIOError``) means a send to a remote node was refused because that
  node's connection is busy (see ``docs/distribution.md``, *Back-pressure*): ``pj.send_nowait`` on a
  busy connection, or ``pj.send`` from a process that keeps sending past the hard limit without
  waiting. The message was not sent.
"""

from __future__ import annotations

from typing import Any

from philipjose.term import Atom

__all__ = ["ActorError", "BadArg", "Busy", "Exit", "NoProcessError", "StartError", "Stop", "as_reason"]


def as_reason(reason: Any) -> Any:
    """A user-given reason as a term: a plain ``str`` becomes an :class:`Atom`, anything else is kept."""
    if type(reason) is str:
        return Atom(reason)
    return reason


class ActorError(Exception):
    """Base of the errors raised by the actor runtime itself."""


class BadArg(ActorError, ValueError):
    """Erlang's ``badarg``: an argument the operation cannot accept (the caller's fault)."""


class NoProcessError(ActorError, RuntimeError):
    """Called outside ``pj.run``, or outside a process where the operation needs one."""


class Busy(ActorError, BlockingIOError):
    """A send to a busy distribution connection was refused (the message was not sent).

    Raised by ``pj.send_nowait`` when the connection is busy (OTP's ``erlang:send_nosuspend`` returns
    false there), and by ``pj.send`` when a process that was already held back keeps sending to the
    connection past its hard limit without awaiting (``await pj.send_wait(...)`` waits instead).
    ``node`` is the remote node (an ``Atom``).
    """

    def __init__(self, message: str, node: Any = None) -> None:
        super().__init__(message)
        self.node = node


class StartError(ActorError):
    """A GenServer failed to start; ``reason`` is the exit reason (a term).

    When ``init`` raised an exception, it is chained as ``__cause__``. When the name was taken, the
    reason is ``(Atom('already_started'), pid)`` as in OTP.
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"GenServer failed to start: {self.reason!r}"


class Exit(Exception):
    """End the current process with ``reason``: ``raise pj.Exit(Atom('shutdown'))``.

    Raised out of a process function, the process exits with ``reason`` and its links and monitors see
    that reason. A plain ``str`` reason is converted to an :class:`Atom`. ``Exit(Atom('normal'))`` is a
    normal exit. It is an ordinary ``Exception``, so it can be caught (like Erlang's ``catch``).
    """

    def __init__(self, reason: Any) -> None:
        reason = as_reason(reason)
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"Exit({self.reason!r})"

    def __str__(self) -> str:
        return f"process exited with reason {self.reason!r}"


class Stop(Exception):
    """Stop a GenServer from a callback: ``raise pj.Stop(reason)`` or ``raise pj.Stop(reason, reply=v)``.

    From ``handle_call``, ``reply`` (when given) is sent to the caller before ``terminate(reason)``
    runs. A callback may also *return* a ``Stop`` instance instead of raising it. A plain ``str``
    reason is converted to an :class:`Atom`; the default reason is ``normal``.
    """

    _NO_REPLY: Any = object()

    def __init__(self, reason: Any = "normal", *, reply: Any = _NO_REPLY) -> None:
        reason = as_reason(reason)
        super().__init__(reason)
        self.reason = reason
        self.reply = reply

    @property
    def has_reply(self) -> bool:
        """True when a reply value was given."""
        return self.reply is not Stop._NO_REPLY

    def __repr__(self) -> str:
        if self.has_reply:
            return f"Stop({self.reason!r}, reply={self.reply!r})"
        return f"Stop({self.reason!r})"
