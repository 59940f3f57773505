"""Python exceptions <-> erpc's result shapes, both ways (pure)."""

from __future__ import annotations

from typing import Any

import pytest

import philipjose as pj
from philipjose import Atom, Reference
from philipjose.rpc import BadRpc, RemoteError, Throw
from philipjose.rpc.reasons import MAX_FRAMES, call_result, exception_term, outcome, stacktrace
from philipjose.term import binary_to_term, term_to_binary

REF = Reference("a@b", 1, (1, 2, 3))
ERROR, EXIT, THROW, RETURN = Atom("error"), Atom("exit"), Atom("throw"), Atom("return")


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _deep(n: int) -> None:
    if n == 0:
        raise ValueError("bottom")
    _deep(n - 1)


def test_return_value() -> None:
    assert call_result(REF, None, [1, 2]) == (REF, RETURN, [1, 2])


def test_python_exception_becomes_error_with_crash_reason_and_stack() -> None:
    result = call_result(REF, _raise(ValueError("bad value")))
    assert result[:2] == (REF, ERROR)
    reason, stack = result[2], result[3]
    assert reason[:3] == (Atom("python_exception"), b"ValueError", b"bad value")
    assert b"Traceback" in reason[3] and b"bad value" in reason[3]
    module, function, arity, location = stack[0]
    assert (module, function, arity) == (Atom(__name__), Atom("_raise"), 1)
    assert location[0][0] == Atom("file") and isinstance(location[0][1], list)
    assert location[1][0] == Atom("line") and isinstance(location[1][1], int)
    # the whole thing has an external form and survives a round trip
    assert binary_to_term(term_to_binary(result)) == result


def test_stack_is_innermost_first_and_bounded() -> None:
    exc = _raise_from(lambda: _deep(100))
    stack = stacktrace(exc.__traceback__)
    assert len(stack) == MAX_FRAMES
    assert all(frame[1] == Atom("_deep") for frame in stack)
    assert stack[0][3][1][1] > 0


def _raise_from(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as caught:
        return caught
    raise AssertionError("did not raise")


def test_throw_and_exit() -> None:
    assert call_result(REF, Throw([1])) == (REF, THROW, [1])
    assert call_result(REF, pj.Exit("shutdown")) == (REF, EXIT, Atom("shutdown"))


def test_nested_rpc_errors_map_like_erpc_inside_erlang() -> None:
    stack = [(Atom("m"), Atom("f"), 0, [])]
    kind, reason, _ = exception_term(RemoteError(ERROR, Atom("badarith"), stack))
    assert (kind, reason) == (ERROR, (Atom("exception"), Atom("badarith"), stack))
    assert exception_term(RemoteError(EXIT, Atom("x")))[:2] == (EXIT, (Atom("exception"), Atom("x")))
    assert exception_term(RemoteError(EXIT, Atom("killed"), signal=True))[:2] == (
        EXIT,
        (Atom("signal"), Atom("killed")),
    )
    assert exception_term(RemoteError(THROW, 5))[:2] == (THROW, 5)
    assert exception_term(BadRpc(Atom("noconnection")))[:2] == (ERROR, (Atom("erpc"), Atom("noconnection")))
    assert exception_term(TimeoutError())[:2] == (ERROR, (Atom("erpc"), Atom("timeout")))


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ((REF, RETURN, 7), (True, 7)),
        ((REF, THROW, 7), (False, RemoteError(THROW, 7))),
        ((REF, EXIT, Atom("bye")), (False, RemoteError(EXIT, Atom("bye")))),
        ((REF, ERROR, Atom("badarith"), [1]), (False, RemoteError(ERROR, Atom("badarith"), [1]))),
        ((REF, ERROR, (Atom("erpc"), Atom("badarg"))), (False, BadRpc(Atom("badarg")))),
        (Atom("noconnection"), (False, BadRpc(Atom("noconnection")))),
        (Atom("killed"), (False, RemoteError(EXIT, Atom("killed"), signal=True))),
        ((Reference("x@y", 1, (9,)), RETURN, 7), (False, RemoteError(EXIT, None, signal=True))),
    ],
)
def test_outcome_reads_down_reasons_like_erpc(reason: Any, expected: tuple[bool, Any]) -> None:
    ok, value = outcome(REF, reason)
    assert ok == expected[0]
    if ok:
        assert value == expected[1]
        return
    want = expected[1]
    assert type(value) is type(want)
    assert value.reason == (reason if want.reason is None else want.reason)
    if isinstance(want, RemoteError):
        assert (value.kind, value.stacktrace, value.signal) == (want.kind, want.stacktrace, want.signal)


def test_error_messages() -> None:
    assert "raised error" in str(RemoteError(ERROR, Atom("badarith")))
    assert "exit signal" in str(RemoteError(EXIT, Atom("killed"), signal=True))
    assert "noconnection" in str(BadRpc(Atom("noconnection")))
    assert isinstance(pj.rpc.RpcTimeout(None), TimeoutError)
