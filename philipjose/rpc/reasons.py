"""Python exceptions <-> Erlang exceptions, both ways (pure; no I/O, no Trio).

Serving (an exposed function raised, or returned): :func:`exception_term` gives the Erlang class,
reason and stacktrace, and :func:`call_result` builds the exit reason ``erpc:execute_call/4`` ends its
process with (``{Ref, return, V}``, ``{Ref, throw, V}``, ``{Ref, exit, R}``, ``{Ref, error, R, Stack}``
or ``{Ref, error, {erpc, R}}``), which ``erpc:call`` turns back into a value or an exception.

======================================  =================================================================
raised in the exposed function           Erlang exception
======================================  =================================================================
``rpc.Throw(v)``                         ``throw:v``
``pj.Exit(r)``                           ``exit:r``
``rpc.RemoteError`` (a nested call)      what ``erpc:call`` raised there: ``error:{exception, R, S}``,
                                         ``exit:{exception, R}`` or ``exit:{signal, R}``, ``throw:V``
``rpc.BadRpc(r)`` (a nested call)        ``error:{erpc, r}``
``TimeoutError`` (a nested call)         ``error:{erpc, timeout}``
any other ``Exception``                  ``error:{python_exception, Type, Message, Traceback}`` (the
                                         actors' crash reason) with the Python stack
======================================  =================================================================

The stack is a list of ``{Module, Function, Arity, [{file, File}, {line, Line}]}`` tuples, innermost
first like Erlang's, with the Python module as an atom, the function's qualified name as an atom,
its number of positional parameters, and the file as a charlist. The frames of philipjose's own
rpc machinery are left out, and at most :data:`MAX_FRAMES` are kept (the innermost).

Calling out: :func:`outcome` reads the ``DOWN`` reason of an ``erpc:execute_call`` process the same
way ``erpc`` does and returns the value or the exception to raise.
"""

from __future__ import annotations

import types
from typing import Any, Final

from philipjose.actors import Exit, crash_reason
from philipjose.rpc.errors import BadRpc, RemoteError, Throw
from philipjose.term import Atom

__all__ = [
    "ERROR",
    "EXIT",
    "MAX_FRAMES",
    "RETURN",
    "THROW",
    "badarg_stack",
    "call_result",
    "exception_term",
    "outcome",
    "stacktrace",
    "undef_stack",
]

RETURN: Final = Atom("return")
THROW: Final = Atom("throw")
EXIT: Final = Atom("exit")
ERROR: Final = Atom("error")
ERPC: Final = Atom("erpc")
EXCEPTION: Final = Atom("exception")
SIGNAL: Final = Atom("signal")
TIMEOUT: Final = Atom("timeout")
NOCONNECTION: Final = Atom("noconnection")
_FILE: Final = Atom("file")
_ERLANG: Final = Atom("erlang")
_APPLY: Final = Atom("apply")
_ERROR_INFO: Final = Atom("error_info")
_MODULE: Final = Atom("module")
_ERTS_ERRORS: Final = Atom("erl_erts_errors")
_LINE: Final = Atom("line")

#: Most stack frames put in an Erlang stacktrace (Python's innermost ones).
MAX_FRAMES: Final = 32

_SKIPPED_MODULES: Final = ("philipjose.rpc.", "trio.", "outcome")


def _charlist(text: str) -> list[int]:
    return [ord(ch) for ch in text]


def stacktrace(tb: types.TracebackType | None) -> list[tuple[Atom, Atom, int, list[tuple[Atom, Any]]]]:
    """An Erlang stacktrace (innermost first) from a Python traceback; see the module docstring."""
    frames: list[tuple[Atom, Atom, int, list[tuple[Atom, Any]]]] = []
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__", "?")
        if not isinstance(module, str):
            module = "?"
        if module != "trio" and not module.startswith(_SKIPPED_MODULES):
            code = frame.f_code
            location = [(_FILE, _charlist(code.co_filename[-1024:])), (_LINE, tb.tb_lineno)]
            frames.append((Atom(module[:255]), Atom(code.co_qualname[:255]), code.co_argcount, location))
        tb = tb.tb_next
    frames.reverse()
    return frames[:MAX_FRAMES]


def exception_term(exc: BaseException) -> tuple[Atom, Any, list[Any]]:
    """``(class, reason, stacktrace)``: how Erlang sees ``exc`` (see the table in the module doc)."""
    if isinstance(exc, Throw):
        return THROW, exc.value, []
    if isinstance(exc, Exit):
        return EXIT, exc.reason, []
    if isinstance(exc, RemoteError):
        if exc.kind == THROW:
            return THROW, exc.reason, []
        if exc.kind == EXIT:
            return EXIT, (SIGNAL if exc.signal else EXCEPTION, exc.reason), []
        return ERROR, (EXCEPTION, exc.reason, exc.stacktrace), stacktrace(exc.__traceback__)
    if isinstance(exc, BadRpc):
        return ERROR, (ERPC, exc.reason), stacktrace(exc.__traceback__)
    if isinstance(exc, TimeoutError):
        return ERROR, (ERPC, TIMEOUT), stacktrace(exc.__traceback__)
    return ERROR, crash_reason(_trimmed(exc)), stacktrace(exc.__traceback__)


def _trimmed(exc: BaseException) -> BaseException:
    """``exc`` with the leading frames of philipjose's rpc machinery dropped from its traceback (so
    the traceback text in the crash reason starts at the exposed function)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if not (isinstance(module, str) and module.startswith("philipjose.rpc.")):
            break
        tb = tb.tb_next
    return exc.with_traceback(tb)


def call_result(ref: Any, exc: BaseException | None, value: Any = None) -> tuple[Any, ...]:
    """The exit reason of an ``erpc:execute_call`` process: ``{Ref, return, value}`` when ``exc`` is
    None, else the exception's ``{Ref, Class, Reason[, Stack]}`` (``error`` always has a stack)."""
    if exc is None:
        return (ref, RETURN, value)
    kind, reason, stack = exception_term(exc)
    if kind == ERROR:
        return (ref, ERROR, reason, stack)
    return (ref, kind, reason)


def undef_stack(module: Any, function: Any, args: Any) -> list[Any]:
    """The stacktrace Erlang gives ``undef`` for ``apply(M, F, Args)``: ``[{M, F, Args, []}]``."""
    return [(module, function, args, [])]


def badarg_stack(module: Any, function: Any, args: Any) -> list[Any]:
    """The stacktrace OTP 25 gives ``badarg`` for ``apply(M, F, Args)`` with a module or function that
    is not an atom or arguments that are not a proper list:
    ``[{erlang, apply, [M, F, Args], [{error_info, #{module => erl_erts_errors}}]}]``."""
    return [(_ERLANG, _APPLY, [module, function, args], [(_ERROR_INFO, {_MODULE: _ERTS_ERRORS})])]


def outcome(ref: Any, reason: Any) -> tuple[bool, Any]:
    """Read the ``DOWN`` reason of a remote ``erpc:execute_call(Ref, ...)`` process, as erpc does.

    Returns ``(True, value)`` for a returned value and ``(False, exception)`` otherwise: a
    :class:`RemoteError` for ``throw``/``exit``/``error`` (and ``signal`` when the process was killed),
    :class:`BadRpc` for ``{erpc, R}`` errors and for ``noconnection``.
    """
    if type(reason) is tuple and len(reason) in (3, 4) and reason[0] == ref:
        kind = reason[1]
        if len(reason) == 3:
            if kind == RETURN:
                return True, reason[2]
            if kind in (THROW, EXIT):
                return False, RemoteError(kind, reason[2])
            if kind == ERROR and type(reason[2]) is tuple and len(reason[2]) == 2 and reason[2][0] == ERPC:
                return False, BadRpc(reason[2][1])
        elif kind == ERROR:
            stack = reason[3] if type(reason[3]) is list else []
            return False, RemoteError(ERROR, reason[2], stack)
    if reason == NOCONNECTION:
        return False, BadRpc(NOCONNECTION)
    return False, RemoteError(EXIT, reason, signal=True)
