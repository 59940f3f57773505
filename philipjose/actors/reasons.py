"""Atoms the runtime uses, crash reasons, and the exit-signal decision.

Crash reasons. When a process function raises an exception other than :class:`~.errors.Exit`, the
process exits with the ETF-encodable term::

    (Atom('python_exception'), b'ZeroDivisionError', b'division by zero', b'Traceback (most ...')

that is ``(python_exception, TypeName, Message, TracebackText)`` where the three texts are UTF-8
``bytes`` (Erlang binaries). ``TypeName`` is the bare name for builtins and ``module.QualName``
otherwise; ``TracebackText`` is the formatted traceback, cut to its last
:data:`TRACEBACK_LIMIT` bytes.

The exit-signal rules of Erlang's reference manual are the pure function :func:`decide_exit`.
"""

from __future__ import annotations

import traceback
from typing import Any, Final

from philipjose.term import Atom

__all__ = [
    "DELIVER",
    "DOWN",
    "EXIT",
    "IGNORE",
    "KILL",
    "KILLED",
    "NOCONNECTION",
    "NONODE",
    "NOPROC",
    "NORMAL",
    "PROCESS",
    "PYTHON_EXCEPTION",
    "SHUTDOWN",
    "TRACEBACK_LIMIT",
    "crash_reason",
    "decide_exit",
    "is_quiet",
]

NORMAL: Final = Atom("normal")
KILL: Final = Atom("kill")
KILLED: Final = Atom("killed")
NOPROC: Final = Atom("noproc")
NOCONNECTION: Final = Atom("noconnection")
SHUTDOWN: Final = Atom("shutdown")
EXIT: Final = Atom("EXIT")
DOWN: Final = Atom("DOWN")
PROCESS: Final = Atom("process")
NONODE: Final = Atom("nonode@nohost")
PYTHON_EXCEPTION: Final = Atom("python_exception")

#: Longest traceback text kept in a crash reason, in bytes (the tail is kept).
TRACEBACK_LIMIT: Final = 16_384


def crash_reason(exc: BaseException) -> tuple[Atom, bytes, bytes, bytes]:
    """The exit reason of a process that raised ``exc`` (see the module docstring)."""
    cls = type(exc)
    builtin = cls.__module__ == "builtins"
    type_name = cls.__qualname__ if builtin else f"{cls.__module__}.{cls.__qualname__}"
    text = "".join(traceback.format_exception(exc)).encode("utf-8", "replace")
    if len(text) > TRACEBACK_LIMIT:
        text = b"..." + text[-TRACEBACK_LIMIT:]
    return (PYTHON_EXCEPTION, type_name.encode(), str(exc).encode("utf-8", "replace"), text)


def is_quiet(reason: Any) -> bool:
    """True for reasons that are not logged as crashes: ``normal``, ``shutdown``, ``(shutdown, _)``."""
    if type(reason) is Atom:
        return reason in (NORMAL, SHUTDOWN)
    return type(reason) is tuple and len(reason) == 2 and reason[0] == SHUTDOWN


class _Decision:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :func:`decide_exit` results other than an exit reason.
IGNORE: Final = _Decision("IGNORE")
DELIVER: Final = _Decision("DELIVER")


def decide_exit(reason: Any, *, trap_exit: bool, link: bool, from_self: bool) -> Any:
    """What an exit signal does to its receiver (Erlang's rules).

    Returns :data:`IGNORE`, :data:`DELIVER` (queue ``(EXIT, From, Reason)`` as a message), or the reason
    the receiver dies with. ``link`` is True when the signal comes from a broken link (a linked
    process died) and False for ``exit(pid, reason)``.

    - ``exit(pid, kill)`` cannot be trapped: the receiver dies with ``killed``. (A linked process that
      died *with reason* ``kill`` sends an ordinary, trappable signal.)
    - A trapping receiver gets the message.
    - ``normal`` is ignored, except ``exit(self(), normal)``, which ends the caller with ``normal``.
    - Any other reason kills the receiver with that reason.
    """
    if not link and reason == KILL:
        return KILLED
    if trap_exit:
        return DELIVER
    if reason == NORMAL:
        return NORMAL if (from_self and not link) else IGNORE
    return reason
