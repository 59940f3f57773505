"""The state of one ``pg`` scope and OTP's pg protocol, sans-I/O (no trio, no processes).

Theory of operation
-------------------
A scope (OTP's ``pg`` gen_server, registered under the scope's name on every node that runs it) keeps
what OTP keeps in its state record and its ETS table:

- ``groups``: group -> all members and the local ones, in OTP's order (the latest joiner first);
- ``local``: each local member -> the groups it joined (a process may join a group many times);
- ``remote``: each peer scope (the scope process of another node) -> its view, group -> its members;
- the subscribers of ``monitor_scope`` and ``monitor`` (OTP 25.1), by monitor reference.

Every operation is a method that updates the state and returns the *effects* the process carrying it
out must perform, in order: :class:`Send` a message (OTP's pg sends with ``noconnect``: a message to a
node without a connection is dropped, never a reason to connect), :class:`Watch` a pid (monitor a new
local member, or a new peer scope) and :class:`Unwatch` one (a local member that left its last
group). The process tells the state when a watched pid went down (:meth:`ScopeState.down`).

The protocol (OTP 23-27, unchanged since; ``kernel/src/pg.erl``), between the scope processes:

- ``{discover, Peer}`` (OTP 26+ also accepts ``{discover, Peer, Version}``): sent to ``{Scope, Node}``
  when a scope starts (to every visible node) and on ``nodeup``. The receiver answers
  ``gen_server:cast(Peer, {sync, Self, Groups})`` with its local members (``[{Group, Pids}]``) and,
  if the peer is new to it, monitors it and sends ``{discover, Self}`` back.
- ``{'$gen_cast', {sync, Peer, Groups}}``: the peer's local members replace what was known of them.
- ``{join, Peer, Group, PidOrPids}``, ``{leave, Peer, PidOrPids, Groups}``: sent to every known peer
  when local processes join or leave (and when a local member exits: ``leave`` of all its groups).
- A peer scope that goes down (its node disconnected, or it exited) takes all its members with it.

Messages from a scope that is not a known peer (join/leave), from this node itself, and malformed
ones are ignored: a peer's mistake never breaks the scope (OTP's scope crashes with ``badarg``).

Groups are any Erlang term. Two groups are the same when their canonical External Term Format bytes
are (Erlang's exact ``=:=``: ``1`` and ``1.0`` differ, the ``str`` ``"g"`` is the binary ``<<"g">>``);
each group is kept with its canonical, hashable Python form (what a map key of it decodes to), which
is what :meth:`ScopeState.which_groups` and the notifications carry.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Final

from philipjose.term import Atom, Pid, Reference, decode, encode

__all__ = [
    "Effect",
    "ScopeState",
    "Send",
    "Unwatch",
    "Watch",
    "canonical",
]

_JOIN: Final = Atom("join")
_LEAVE: Final = Atom("leave")
_DISCOVER: Final = Atom("discover")
_SYNC: Final = Atom("sync")
_GEN_CAST: Final = Atom("$gen_cast")
_NODEUP: Final = Atom("nodeup")
_NODEDOWN: Final = Atom("nodedown")
_ONE_KEY_MAP: Final = b"\x83t\x00\x00\x00\x01"  # MAP_EXT of arity 1, to decode a group as a map key
_ZERO: Final = b"a\x00"  # SMALL_INTEGER_EXT 0: the key's value
_CANONICAL_CACHE: Final = 4096  # groups whose canonical form is kept (the cache is cleared when full)
_canonical_terms: dict[bytes, Any] = {}  # a group's bytes -> its canonical form (immutable, shareable)


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to ``dest`` (a pid, or ``(name, node)``) if its node is connected."""

    dest: Pid | tuple[Atom, Atom]
    message: Any


@dataclass(frozen=True, slots=True)
class Watch:
    """Monitor ``pid`` (a new local member, or a new peer scope); report its end to ``down``."""

    pid: Pid


@dataclass(frozen=True, slots=True)
class Unwatch:
    """Drop the monitor of ``pid``, a local member that left its last group."""

    pid: Pid


Effect = Send | Watch | Unwatch


def canonical(group: Any) -> tuple[bytes, Any]:
    """The key of ``group`` (its External Term Format bytes) and its canonical, hashable form.

    Raises ``philipjose.term.EncodeError`` (a ``TypeError``) for a value with no Erlang form.
    """
    data = encode(group)
    term = _canonical_terms.get(data)
    if term is None:
        term = next(iter(decode(_ONE_KEY_MAP + data[1:] + _ZERO)[0]))
        if len(_canonical_terms) >= _CANONICAL_CACHE:
            _canonical_terms.clear()
        _canonical_terms[data] = term
    return data, term


def _minus(items: list[Pid], removed: list[Pid]) -> list[Pid]:
    """Erlang's ``Items -- Removed``: each element of ``removed`` takes out one occurrence."""
    out = list(items)
    for pid in removed:
        with contextlib.suppress(ValueError):
            out.remove(pid)
    return out


def _pids(value: Any) -> list[Pid] | None:
    """``PidOrPids`` as a list, or None when it is neither a pid nor a list of pids."""
    if type(value) is Pid:
        return [value]
    if type(value) is list and all(type(p) is Pid for p in value):
        return value
    return None


class _Group:
    __slots__ = ("all", "local", "term")

    def __init__(self, term: Any) -> None:
        self.term = term
        self.all: list[Pid] = []
        self.local: list[Pid] = []


class ScopeState:
    """One scope's groups, peers and subscribers (see the module docstring).

    ``name`` is the scope (the name it is registered under on every node), ``me`` the pid of the
    process carrying out the effects (the scope process: peers talk to it).
    """

    def __init__(self, name: Atom, me: Pid) -> None:
        self.name = name
        self.me = me
        self.groups: dict[bytes, _Group] = {}
        self.local: dict[Pid, list[tuple[bytes, Any]]] = {}
        self.remote: dict[Pid, dict[bytes, list[Pid]]] = {}
        self.scope_monitors: dict[Reference, Pid] = {}
        self.group_monitors: dict[Reference, tuple[Pid, bytes]] = {}
        self.monitored: dict[bytes, list[tuple[Pid, Reference]]] = {}

    # ------------------------------------------------------------------ queries

    def members(self, key: bytes) -> list[Pid]:
        """All members of the group whose key is ``key`` (see :func:`canonical`)."""
        group = self.groups.get(key)
        return list(group.all) if group is not None else []

    def local_members(self, key: bytes) -> list[Pid]:
        """The members of this node in the group whose key is ``key``."""
        group = self.groups.get(key)
        return list(group.local) if group is not None else []

    def which_groups(self) -> list[Any]:
        """Every group with at least one member (canonical forms)."""
        return [group.term for group in self.groups.values()]

    def which_local_groups(self) -> list[Any]:
        """Every group with at least one member on this node."""
        return [group.term for group in self.groups.values() if group.local]

    def peers(self) -> list[Pid]:
        """The peer scopes known (the other nodes' scope processes)."""
        return list(self.remote)

    # ------------------------------------------------------------------ local operations

    def start(self, nodes: list[Atom]) -> list[Effect]:
        """The scope has started: discover it on ``nodes`` (the visible connected nodes)."""
        return [Send((self.name, node), (_DISCOVER, self.me)) for node in nodes if node != self.me.node]

    def nodeup(self, node: Atom) -> list[Effect]:
        """A connection to ``node`` came up: ask its scope of the same name to exchange members."""
        if node == self.me.node:
            return []
        return [Send((self.name, node), (_DISCOVER, self.me))]

    def join(self, group: Any, pid_or_pids: Pid | list[Pid]) -> list[Effect]:
        """Local ``pid_or_pids`` (checked local by the caller) join ``group`` (OTP's ``join_local``)."""
        key, term = canonical(group)
        pids = [pid_or_pids] if isinstance(pid_or_pids, Pid) else list(pid_or_pids)
        effects: list[Effect] = []
        for pid in pids:
            joined = self.local.get(pid)
            if joined is None:
                self.local[pid] = [(key, term)]
                effects.append(Watch(pid))
            else:
                joined.insert(0, (key, term))
        entry = self._group(key, term)
        entry.all[:0] = pids
        entry.local[:0] = pids
        self._notify(effects, _JOIN, key, pids)
        self._broadcast(effects, (_JOIN, self.me, entry.term, pid_or_pids))
        return effects

    def leave(self, group: Any, pid_or_pids: Pid | list[Pid]) -> tuple[bool, list[Effect]]:
        """Local ``pid_or_pids`` leave ``group`` once each; ``(False, [])`` when none was a member
        (OTP's ``not_joined``)."""
        key, term = canonical(group)
        pids = [pid_or_pids] if isinstance(pid_or_pids, Pid) else list(pid_or_pids)
        effects: list[Effect] = []
        changed = False
        for pid in pids:
            joined = self.local.get(pid)
            if joined is None:
                continue
            for i, (k, _) in enumerate(joined):
                if k == key:
                    del joined[i]
                    changed = True
                    break
            if not joined:
                del self.local[pid]
                effects.append(Unwatch(pid))
        if not changed:
            return False, []
        self._leave_local(effects, key, pids)
        self._broadcast(effects, (_LEAVE, self.me, pid_or_pids, [term]))
        return True, effects

    def subscribe_scope(self, ref: Reference, pid: Pid) -> dict[Any, list[Pid]]:
        """``pid`` (monitored by the caller with ``ref``) gets every join and leave of the scope;
        returns the whole scope, group -> members (OTP's ``monitor_scope``)."""
        self.scope_monitors[ref] = pid
        return {group.term: list(group.all) for group in self.groups.values()}

    def subscribe_group(self, ref: Reference, pid: Pid, group: Any) -> list[Pid]:
        """``pid`` (monitored by the caller with ``ref``) gets the joins and leaves of ``group``;
        returns its members (OTP's ``monitor/2``)."""
        key, _ = canonical(group)
        self.group_monitors[ref] = (pid, key)
        self.monitored.setdefault(key, []).insert(0, (pid, ref))
        return self.members(key)

    def unsubscribe(self, ref: Reference) -> bool:
        """Drop the subscription ``ref`` (demonitor, or the subscriber went down); False if unknown."""
        if self.scope_monitors.pop(ref, None) is not None:
            return True
        found = self.group_monitors.pop(ref, None)
        if found is None:
            return False
        pid, key = found
        subscribers = [entry for entry in self.monitored.get(key, []) if entry != (pid, ref)]
        if subscribers:
            self.monitored[key] = subscribers
        else:
            self.monitored.pop(key, None)
        return True

    def down(self, pid: Pid) -> list[Effect]:
        """A watched ``pid`` went down: a local member leaves all its groups, or a peer scope's members
        are forgotten."""
        effects: list[Effect] = []
        joined = self.local.pop(pid, None)
        if joined is not None:
            for key, _ in joined:
                self._leave_local(effects, key, [pid])
            self._broadcast(effects, (_LEAVE, self.me, pid, [term for _, term in joined]))
            return effects
        view = self.remote.pop(pid, None)
        if view is not None:
            for key, pids in view.items():
                self._leave_remote(effects, key, pids)
        return effects

    # ------------------------------------------------------------------ protocol messages

    def handle(self, message: Any) -> list[Effect] | None:
        """A message to the scope process: the effects, or None when it is not a pg message (or is a
        malformed one). Join and leave from unknown peers, and anything from this node, give ``[]``."""
        if type(message) is not tuple or not message:
            return None
        tag = message[0]
        size = len(message)
        if tag == _JOIN and size == 4:
            peer, group, pids = message[1], message[2], _pids(message[3])
            if type(peer) is not Pid or pids is None:
                return None
            return self._remote_join(peer, group, pids)
        if tag == _LEAVE and size == 4:
            peer, pids, groups = message[1], _pids(message[2]), message[3]
            if type(peer) is not Pid or pids is None or type(groups) is not list:
                return None
            return self._remote_leave(peer, pids, groups)
        if tag == _DISCOVER and size in (2, 3):
            peer = message[1]
            if type(peer) is not Pid:
                return None
            return self._discover(peer)
        if tag == _GEN_CAST and size == 2:
            cast = message[1]
            if type(cast) is not tuple or len(cast) != 3 or cast[0] != _SYNC or type(cast[1]) is not Pid:
                return None
            groups = cast[2]
            if type(groups) is not list:
                return None
            parsed: list[tuple[Any, list[Pid]]] = []
            for entry in groups:
                if type(entry) is not tuple or len(entry) != 2:
                    return None
                members = _pids(entry[1])
                if members is None:
                    return None
                parsed.append((entry[0], members))
            return self._sync(cast[1], parsed)
        if tag == _NODEUP and size == 2 and type(message[1]) is Atom:
            return self.nodeup(message[1])
        if tag == _NODEDOWN and size == 2:
            return []  # the peer scope's monitor says it: DOWN ... noconnection
        return None

    def _ours(self, peer: Pid) -> bool:
        return peer.node == self.me.node

    def _discover(self, peer: Pid) -> list[Effect]:
        if self._ours(peer):
            return []
        effects: list[Effect] = [Send(peer, (_GEN_CAST, (_SYNC, self.me, self._local_groups())))]
        if peer not in self.remote:
            self.remote[peer] = {}
            effects.append(Watch(peer))
            effects.append(Send(peer, (_DISCOVER, self.me)))
        return effects

    def _sync(self, peer: Pid, groups: list[tuple[Any, list[Pid]]]) -> list[Effect]:
        if self._ours(peer):
            return []
        effects: list[Effect] = []
        old = self.remote.get(peer)
        if old is None:
            old = {}
            effects.append(Watch(peer))
        new: dict[bytes, list[Pid]] = {}
        for group, pids in groups:
            key, term = canonical(group)
            new[key] = pids
            previous = old.pop(key, None)
            if previous is None:
                self._join_remote(effects, key, term, pids)
            elif previous != pids:  # OTP: replaced without a notification ("should be really rare")
                entry = self.groups.get(key)
                if entry is not None:
                    entry.all = pids + _minus(entry.all, previous)
        for key, pids in old.items():
            self._leave_remote(effects, key, pids)
        self.remote[peer] = new
        return effects

    def _remote_join(self, peer: Pid, group: Any, pids: list[Pid]) -> list[Effect]:
        view = self.remote.get(peer)
        if view is None:  # not (or no longer) a peer: a late or stray message
            return []
        key, term = canonical(group)
        effects: list[Effect] = []
        self._join_remote(effects, key, term, pids)
        view[key] = pids + view.get(key, [])
        return effects

    def _remote_leave(self, peer: Pid, pids: list[Pid], groups: list[Any]) -> list[Effect]:
        view = self.remote.get(peer)
        if view is None:
            return []
        effects: list[Effect] = []
        for group in groups:
            key, _ = canonical(group)
            self._leave_remote(effects, key, pids)
            if key in view:
                remaining = _minus(view[key], pids)
                if remaining:
                    view[key] = remaining
                else:
                    del view[key]
        return effects

    # ------------------------------------------------------------------ helpers

    def _group(self, key: bytes, term: Any) -> _Group:
        entry = self.groups.get(key)
        if entry is None:
            entry = self.groups[key] = _Group(term)
        return entry

    def _local_groups(self) -> list[tuple[Any, list[Pid]]]:
        """OTP's ``all_local_pids``: ``[{Group, Pids}]`` of the local members."""
        out: dict[bytes, tuple[Any, list[Pid]]] = {}
        for pid, joined in self.local.items():
            for key, term in joined:
                entry = out.get(key)
                if entry is None:
                    out[key] = (term, [pid])
                else:
                    entry[1].insert(0, pid)
        return list(out.values())

    def _join_remote(self, effects: list[Effect], key: bytes, term: Any, pids: list[Pid]) -> None:
        entry = self._group(key, term)
        entry.all[:0] = pids
        self._notify(effects, _JOIN, key, pids)

    def _leave_local(self, effects: list[Effect], key: bytes, pids: list[Pid]) -> None:
        entry = self.groups.get(key)
        if entry is None:
            return
        remaining = _minus(entry.all, pids)
        if remaining:
            entry.all = remaining
            entry.local = _minus(entry.local, pids)
        else:
            del self.groups[key]
        self._notify(effects, _LEAVE, key, pids, entry.term)

    def _leave_remote(self, effects: list[Effect], key: bytes, pids: list[Pid]) -> None:
        entry = self.groups.get(key)
        if entry is None:
            return
        remaining = _minus(entry.all, pids)
        if remaining or entry.local:
            entry.all = remaining
        else:
            del self.groups[key]
        self._notify(effects, _LEAVE, key, pids, entry.term)

    def _notify(
        self, effects: list[Effect], action: Atom, key: bytes, pids: list[Pid], term: Any = None
    ) -> None:
        if not self.scope_monitors and key not in self.monitored:
            return
        if term is None:
            term = self.groups[key].term
        for ref, pid in self.scope_monitors.items():
            effects.append(Send(pid, (ref, action, term, list(pids))))
        for pid, ref in self.monitored.get(key, ()):
            effects.append(Send(pid, (ref, action, term, list(pids))))

    def _broadcast(self, effects: list[Effect], message: Any) -> None:
        for peer in self.remote:
            effects.append(Send(peer, message))
