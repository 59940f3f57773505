"""Errors raised by :mod:`philipjose.rpc`.

- :class:`RpcError` is the base of them all.
- :class:`ExposeError` (also a ``ValueError``): :func:`~philipjose.rpc.expose` was given something it
  cannot expose (the caller's fault).
- :class:`RemoteError`: the remote function raised; it carries the Erlang class (``error``, ``exit`` or
  ``throw``), the reason and the stacktrace, as ``erpc:call`` reports them.
- :class:`BadRpc`: the rpc operation itself failed (``noconnection``, ``notsup``, ``badarg``,
  ``system_limit``), like ``erpc``'s ``{erpc, Reason}`` errors and ``rpc``'s ``{badrpc, Reason}``.

A call that times out raises the builtin ``TimeoutError`` (:class:`RpcTimeout`, a subclass that also
says which remote process was killed).
"""

from __future__ import annotations

from typing import Any

from philipjose.term import Atom, Pid

__all__ = ["BadRpc", "ExposeError", "RemoteError", "RpcError", "RpcTimeout", "Throw"]


class RpcError(Exception):
    """Base of the errors of :mod:`philipjose.rpc`."""


class ExposeError(RpcError, ValueError):
    """``expose`` cannot expose this (not callable, a bad name, keyword-only parameters...)."""


class RemoteError(RpcError):
    """The remotely called function raised.

    ``kind`` is the Erlang exception class as an :class:`Atom`: ``error``, ``exit`` or ``throw``.
    ``reason`` is the exception's reason (for ``throw``, the thrown value), ``stacktrace`` the remote
    stack (a list of ``(Module, Function, Arity, Location)`` tuples, innermost first; empty for
    ``exit`` and ``throw``). ``signal`` is True when the remote process was killed by an exit signal
    rather than exiting itself (erpc's ``{signal, Reason}``).
    """

    def __init__(self, kind: Atom, reason: Any, stacktrace: list[Any] | None = None, *, signal: bool = False):
        super().__init__(kind, reason)
        self.kind = kind
        self.reason = reason
        self.stacktrace: list[Any] = list(stacktrace or [])
        self.signal = signal

    def __str__(self) -> str:
        how = "was killed by an exit signal with reason" if self.signal else f"raised {self.kind}:"
        return f"the remote function {how} {self.reason!r:.2000}"

    def __repr__(self) -> str:
        return f"RemoteError({self.kind!r}, {self.reason!r:.200}, signal={self.signal})"


class BadRpc(RpcError):
    """The rpc operation failed before or without a result: ``reason`` is ``noconnection`` (the
    connection was lost or could not be made), ``notsup`` (the node does not support it), ``badarg``,
    ``system_limit``, or another atom the remote node answered."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"rpc failed: {self.reason!r}"


class RpcTimeout(RpcError, TimeoutError):
    """The call did not finish in time. ``pid`` is the remote process that ran it (killed), or None
    when the remote node had not answered the spawn request yet (the process is killed when it does)."""

    def __init__(self, pid: Pid | None) -> None:
        super().__init__(pid)
        self.pid = pid

    def __str__(self) -> str:
        return "the rpc call timed out" + (f"; killed {self.pid!r}" if self.pid is not None else "")


class Throw(Exception):
    """Raise from an exposed function to make an Erlang ``throw(Value)``: ``raise rpc.Throw(value)``.

    ``rpc:call`` then returns ``value`` and ``erpc:call`` throws it, as for an Erlang function.
    """

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value
