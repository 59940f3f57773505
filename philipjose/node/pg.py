"""OTP's ``pg`` (process groups, OTP 23+) on a philipjose node: ``pj.pg``.

A *scope* is a process registered under the scope's name (the default scope is ``pg``) that speaks
OTP's pg protocol with the scopes of the same name on the other nodes (see
:mod:`philipjose.node.pg_state`): Erlang and Elixir members are visible to Python, Python members to
``pg:get_members/1,2`` on Erlang nodes, and the members of a node that disconnects leave every group.

The functions work like OTP's, with the scope as an optional keyword argument:

- :func:`join` / :func:`leave` a local process, or a list of them, to a group (any Erlang term;
  a process may join a group several times and leaves it as many times);
- :func:`get_members`, :func:`get_local_members`, :func:`which_groups`, :func:`which_local_groups`;
- :func:`monitor_scope` / :func:`monitor` (OTP 25.1): the caller gets
  ``(ref, Atom('join') | Atom('leave'), group, pids)`` for each change; :func:`demonitor` stops it
  and removes those already queued;
- :func:`start` starts a scope. Every other function starts the scope it names if it is not running
  (OTP needs ``pg:start/1`` or ``start_pg`` first). A scope stops with the runtime, or when its
  process is killed (its local membership is then lost, as in OTP).

They are plain functions (no ``await``): the scope's state lives in this runtime, so
``get_members`` reads it directly (OTP reads its ETS table) and ``join`` updates it at once, on the
scope's behalf; the scope process serves the other nodes. Only local processes may join or leave
(OTP's rule): a remote pid raises :class:`NotLocalError`, OTP's ``{nolocal, Pid}``; a remote process
joins through the scope on its own node.

Discovery, as OTP's scope does it: a starting scope sends ``{discover, Self}`` to ``{Scope, Node}`` of
every visible node (``nodes()``) and subscribes to ``monitor_nodes``, so it discovers every node
that comes up later. The remote scope answers with its members and discovers us in turn, so the two
views meet whichever scope started first. A hidden node (``hidden=True``) discovers nobody, but
answers a ``discover`` from any node, as OTP's scope does. A scope started before ``pj.node.start``
serves this node only.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any, Final

from philipjose.actors import BadArg, Runtime, current_runtime, receive
from philipjose.actors.errors import NoProcessError
from philipjose.actors.reasons import DOWN, PROCESS
from philipjose.actors.runtime import current_process
from philipjose.node.node import Node
from philipjose.node.pg_state import Effect, ScopeState, Send, Unwatch, Watch, canonical
from philipjose.node.ratelimit import RateLimiter
from philipjose.term import Atom, Pid, Reference

__all__ = [
    "DEFAULT_SCOPE",
    "NotLocalError",
    "demonitor",
    "get_local_members",
    "get_members",
    "join",
    "leave",
    "monitor",
    "monitor_scope",
    "start",
    "which_groups",
    "which_local_groups",
]

log: Final = logging.getLogger("philipjose.node.pg")

DEFAULT_SCOPE: Final = Atom("pg")
_JOIN: Final = Atom("join")
_LEAVE: Final = Atom("leave")

ScopeName = Atom | str


class NotLocalError(BadArg):
    """A pid given to :func:`join` or :func:`leave` is not a process of this node (OTP raises
    ``error({nolocal, Pid})``); ``pid`` is the offending value."""

    def __init__(self, pid: Any) -> None:
        super().__init__(
            f"{{nolocal, {pid!r}}}: only processes of this node can join or leave its pg groups "
            "(a remote process joins through the pg scope of its own node)"
        )
        self.pid = pid


class _Scope:
    """A running scope: its pure state and the carrying out of its effects."""

    def __init__(self, rt: Runtime, name: Atom) -> None:
        self.rt = rt
        self.name = name
        self.pid: Pid = Pid(rt.node, 0, 0, 0)  # set by _start
        self.state = ScopeState(name, self.pid)
        self.refs: dict[Reference, Pid] = {}  # monitors of members and peers -> pid
        self.ref_of: dict[Pid, Reference] = {}
        self.dist: Node | None = None
        self.limiter = RateLimiter()  # warnings about messages not understood: 5 a minute

    def carry(self, effects: Iterable[Effect]) -> None:
        rt = self.rt
        for effect in effects:
            if type(effect) is Send:
                dest = effect.dest
                node = dest.node if isinstance(dest, Pid) else dest[1]
                if rt.is_local_node(node) or (self.dist is not None and self.dist.connected(node)):
                    rt.send(dest, effect.message)
            elif type(effect) is Watch:
                ref = rt.monitor_as(self.pid, effect.pid)
                self.refs[ref] = effect.pid
                self.ref_of[effect.pid] = ref
            else:
                assert type(effect) is Unwatch
                old = self.ref_of.pop(effect.pid, None)
                if old is not None:
                    del self.refs[old]
                    rt.demonitor_as(self.pid, old, flush=True)

    def forget(self) -> None:
        """The scope process is gone (it may have been killed before it ever ran): drop the scope."""
        running = _scopes.get(self.rt)
        if running is not None and running.get(self.name) is self:
            del running[self.name]
        if self.dist is not None:
            self.dist.monitor_nodes(self.pid, False, "visible")

    def handle(self, msg: Any) -> None:
        if type(msg) is tuple and len(msg) == 5 and msg[0] == DOWN and msg[2] == PROCESS:
            ref = msg[1]
            pid = self.refs.pop(ref, None)
            if pid is not None:
                del self.ref_of[pid]
                self.carry(self.state.down(pid))
            else:
                self.state.unsubscribe(ref)  # a subscriber went down (or a late DOWN: nothing)
            return
        effects = self.state.handle(msg)
        if effects is None:
            allowed, held = self.limiter.allow(None, time.monotonic())
            if allowed:
                more = f" ({held} more not logged)" if held else ""
                log.warning(
                    "pg scope %s ignored a message it does not understand%s: %.200r", self.name, more, msg
                )
        else:
            self.carry(effects)


_scopes: weakref.WeakKeyDictionary[Runtime, dict[Atom, _Scope]] = weakref.WeakKeyDictionary()


async def _serve(scope: _Scope) -> None:
    """The scope process: serve the other nodes' scopes (and the monitors' DOWNs) until killed."""
    try:
        while True:
            scope.handle(await receive())
    finally:
        scope.forget()


def _scope_name(scope: ScopeName) -> Atom:
    if type(scope) is Atom:
        return scope
    if isinstance(scope, str):
        return Atom(scope)
    raise BadArg(f"a pg scope is an atom (or str), not {scope!r}")


def _get(scope: ScopeName) -> _Scope:
    """The running scope ``scope`` of the current runtime, started if it is not running."""
    rt = current_runtime()
    name = _scope_name(scope)
    running = _scopes.setdefault(rt, {})
    found = running.get(name)
    if found is not None:
        if rt.lookup(found.pid):
            return found
        found.forget()
    holder = rt.whereis(name)
    if holder is not None:
        raise BadArg(f"cannot start pg scope {name}: {holder!r} is registered under that name")
    new = _Scope(rt, name)
    pid, _ = rt.spawn(_serve, (new,))
    new.pid = pid
    new.state.me = pid
    rt.register(name, pid)
    running[name] = new
    dist = rt.dist
    if isinstance(dist, Node):
        new.dist = dist
        dist.monitor_nodes(pid, True, "visible")  # (nodeup, Node): the scope discovers it
        new.carry(new.state.start(dist.nodes("visible")))
    log.debug("pg scope %s started as %r", name, pid)
    return new


def start(scope: ScopeName = DEFAULT_SCOPE) -> Pid:
    """Start the pg scope ``scope`` (default ``pg``) if it is not running; returns its pid.

    Like ``pg:start/1`` it registers the scope's process under the scope's name, and raises
    :class:`~philipjose.actors.BadArg` if another process holds that name. Starting a running scope
    returns its pid.
    """
    return _get(scope).pid


def _local_pids(scope: _Scope, pid_or_pids: Any) -> Pid | list[Pid]:
    rt = scope.rt
    if type(pid_or_pids) is Pid:
        if not rt.is_local_node(pid_or_pids.node):
            raise NotLocalError(pid_or_pids)
        return pid_or_pids
    if not isinstance(pid_or_pids, list | tuple):
        raise NotLocalError(pid_or_pids)
    for pid in pid_or_pids:
        if type(pid) is not Pid or not rt.is_local_node(pid.node):
            raise NotLocalError(pid)
    return list(pid_or_pids)


def join(group: Any, pid_or_pids: Pid | list[Pid], *, scope: ScopeName = DEFAULT_SCOPE) -> None:
    """Make a local process, or each of a list of them, join ``group`` (any Erlang term).

    A process may join a group several times (and must then leave it as many times); a process that
    exits leaves all its groups. Raises :class:`NotLocalError` for a pid of another node (nothing
    joins) and ``philipjose.term.EncodeError`` for a group with no Erlang form.
    """
    found = _get(scope)
    pids = _local_pids(found, pid_or_pids)
    found.carry(found.state.join(group, pids))


def leave(group: Any, pid_or_pids: Pid | list[Pid], *, scope: ScopeName = DEFAULT_SCOPE) -> bool:
    """Make local processes leave ``group`` once each. False (OTP's ``not_joined``) when none of
    them was a member; True otherwise. Raises :class:`NotLocalError` as :func:`join` does."""
    found = _get(scope)
    pids = _local_pids(found, pid_or_pids)
    left, effects = found.state.leave(group, pids)
    found.carry(effects)
    return left


def get_members(group: Any, *, scope: ScopeName = DEFAULT_SCOPE) -> list[Pid]:
    """Every member of ``group`` on every node of the scope (a pid that joined twice is there twice)."""
    return _get(scope).state.members(canonical(group)[0])


def get_local_members(group: Any, *, scope: ScopeName = DEFAULT_SCOPE) -> list[Pid]:
    """The members of ``group`` that run on this node."""
    return _get(scope).state.local_members(canonical(group)[0])


def which_groups(*, scope: ScopeName = DEFAULT_SCOPE) -> list[Any]:
    """Every group that has a member, in canonical form (a ``str`` group comes back as ``bytes``, a
    list as ``List``: see ``docs/terms.md``, Map keys)."""
    return _get(scope).state.which_groups()


def which_local_groups(*, scope: ScopeName = DEFAULT_SCOPE) -> list[Any]:
    """Every group that has a member on this node."""
    return _get(scope).state.which_local_groups()


def _caller() -> Pid:
    proc = current_process()
    if proc is None:
        raise NoProcessError("pg monitors must be made from inside a philipjose process")
    return proc.pid


def monitor_scope(*, scope: ScopeName = DEFAULT_SCOPE) -> tuple[Reference, dict[Any, list[Pid]]]:
    """Subscribe the calling process to every change of the scope: returns ``(ref, groups)``, the
    whole scope (group -> members), then sends ``(ref, Atom('join') | Atom('leave'), group, pids)``
    for each change (OTP 25.1's ``pg:monitor_scope``). The subscription ends with :func:`demonitor`
    or when the caller exits."""
    found = _get(scope)
    me = _caller()
    ref = found.rt.monitor_as(found.pid, me)
    return ref, found.state.subscribe_scope(ref, me)


def monitor(group: Any, *, scope: ScopeName = DEFAULT_SCOPE) -> tuple[Reference, list[Pid]]:
    """Subscribe the calling process to the changes of ``group``: returns ``(ref, members)``, then
    sends ``(ref, Atom('join') | Atom('leave'), group, pids)`` for each (OTP 25.1's ``pg:monitor``)."""
    found = _get(scope)
    me = _caller()
    canonical(group)  # an unencodable group raises before anything is made
    ref = found.rt.monitor_as(found.pid, me)
    return ref, found.state.subscribe_group(ref, me, group)


def demonitor(ref: Reference, *, scope: ScopeName = DEFAULT_SCOPE) -> bool:
    """End the subscription ``ref`` and remove its notifications already in the caller's mailbox.
    False (OTP's ``false``) when ``ref`` is not a subscription of this scope."""
    found = _get(scope)
    if not found.state.unsubscribe(ref):
        return False
    found.rt.demonitor_as(found.pid, ref)
    proc = current_process()
    if proc is not None:

        def notice(m: Any) -> bool:
            return type(m) is tuple and len(m) == 4 and m[0] == ref and m[1] in (_JOIN, _LEAVE)

        found.rt.flush_messages(proc, notice)
    return True
