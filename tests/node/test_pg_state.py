"""The pure pg scope state (philipjose.node.pg_state): OTP's protocol decisions, without processes."""

from __future__ import annotations

from philipjose import Atom, Pid, Reference
from philipjose.node.pg_state import ScopeState, Send, Unwatch, Watch, canonical
from philipjose.term import List

PG = Atom("pg")
HERE = Atom("here@host")
THERE = Atom("there@host")
ME = Pid(HERE, 1, 0, 1)
PEER = Pid(THERE, 1, 0, 2)
G = Atom("g")
JOIN, LEAVE, DISCOVER, SYNC, CAST = (Atom(a) for a in ("join", "leave", "discover", "sync", "$gen_cast"))


def local(n: int) -> Pid:
    return Pid(HERE, 100 + n, 0, 1)


def remote(n: int) -> Pid:
    return Pid(THERE, 100 + n, 0, 2)


def key(group: object) -> bytes:
    return canonical(group)[0]


def with_peer(state: ScopeState) -> None:
    assert state.handle((DISCOVER, PEER)) is not None


def test_discover_answers_sync_watches_and_discovers_back_once() -> None:
    s = ScopeState(PG, ME)
    a = local(1)
    s.join(G, a)
    effects = s.handle((DISCOVER, PEER))
    assert effects == [Send(PEER, (CAST, (SYNC, ME, [(G, [a])]))), Watch(PEER), Send(PEER, (DISCOVER, ME))]
    # Known peer (and OTP 26+'s three-element discover): only the sync.
    assert s.handle((DISCOVER, PEER, 1)) == [Send(PEER, (CAST, (SYNC, ME, [(G, [a])])))]
    assert s.peers() == [PEER]


def test_start_and_nodeup_discover_the_same_scope_on_other_nodes() -> None:
    s = ScopeState(PG, ME)
    assert s.start([THERE, HERE]) == [Send((PG, THERE), (DISCOVER, ME))]
    assert s.nodeup(THERE) == [Send((PG, THERE), (DISCOVER, ME))]
    assert s.handle((Atom("nodeup"), THERE)) == [Send((PG, THERE), (DISCOVER, ME))]
    assert s.nodeup(HERE) == [] and s.handle((Atom("nodedown"), THERE)) == []


def test_local_join_order_watch_broadcast_and_notifications() -> None:
    s = ScopeState(PG, ME)
    with_peer(s)
    a, b = local(1), local(2)
    ref = Reference(HERE, 1, (1, 2, 3))
    sref = Reference(HERE, 1, (4, 5, 6))
    assert s.subscribe_group(ref, ME, G) == []
    assert s.subscribe_scope(sref, ME) == {}
    effects = s.join(G, a)
    assert effects == [
        Watch(a),
        Send(ME, (sref, JOIN, G, [a])),
        Send(ME, (ref, JOIN, G, [a])),
        Send(PEER, (JOIN, ME, G, a)),
    ]
    effects = s.join(G, [b, a])  # a is watched already; the list is broadcast as a list
    assert effects[0] == Watch(b) and Watch(a) not in effects
    assert effects[-1] == Send(PEER, (JOIN, ME, G, [b, a]))
    assert s.members(key(G)) == [b, a, a]  # OTP's order: the latest joiners first
    assert s.local_members(key(G)) == [b, a, a]
    assert s.which_groups() == [G] and s.which_local_groups() == [G]


def test_local_leave_not_joined_and_the_last_group_unwatches() -> None:
    s = ScopeState(PG, ME)
    with_peer(s)
    a = local(1)
    s.join(G, [a, a])
    assert s.leave(Atom("other"), a) == (False, [])
    left, effects = s.leave(G, a)
    assert left and effects == [Send(PEER, (LEAVE, ME, a, [G]))]
    assert s.members(key(G)) == [a]
    left, effects = s.leave(G, [a])
    assert left and effects == [Unwatch(a), Send(PEER, (LEAVE, ME, [a], [G]))]
    assert s.members(key(G)) == [] and s.which_groups() == []
    assert s.leave(G, a) == (False, [])


def test_a_local_member_down_leaves_all_its_groups() -> None:
    s = ScopeState(PG, ME)
    with_peer(s)
    a, b = local(1), local(2)
    s.join(G, a)
    s.join(Atom("h"), [a, b])
    effects = s.down(a)
    assert effects == [Send(PEER, (LEAVE, ME, a, [Atom("h"), G]))]
    assert s.which_groups() == [Atom("h")] and s.members(key(Atom("h"))) == [b]
    assert s.down(a) == []  # a late DOWN


def test_remote_join_leave_and_peer_down() -> None:
    s = ScopeState(PG, ME)
    r1, r2 = remote(1), remote(2)
    assert s.handle((JOIN, PEER, G, r1)) == []  # not a peer yet: ignored, as OTP
    with_peer(s)
    ref = Reference(HERE, 1, (1, 2, 3))
    s.subscribe_group(ref, ME, G)
    assert s.handle((JOIN, PEER, G, [r1, r2])) == [Send(ME, (ref, JOIN, G, [r1, r2]))]
    assert s.members(key(G)) == [r1, r2] and s.local_members(key(G)) == []
    assert s.handle((LEAVE, PEER, r1, [G, Atom("unknown")])) == [Send(ME, (ref, LEAVE, G, [r1]))]
    assert s.members(key(G)) == [r2] and s.remote[PEER] == {key(G): [r2]}
    a = local(1)
    s.join(G, a)
    assert s.down(PEER) == [Send(ME, (ref, LEAVE, G, [r2]))]
    assert s.members(key(G)) == [a] and s.peers() == []
    assert s.handle((LEAVE, PEER, r2, [G])) == []  # after its DOWN: ignored


def test_sync_replaces_what_was_known_of_a_peer() -> None:
    s = ScopeState(PG, ME)
    r1, r2, r3 = remote(1), remote(2), remote(3)
    sref = Reference(HERE, 1, (9, 9, 9))
    s.subscribe_scope(sref, ME)
    effects = s.handle((CAST, (SYNC, PEER, [(G, [r1]), (Atom("h"), [r2])])))
    assert effects == [Watch(PEER), Send(ME, (sref, JOIN, G, [r1])), Send(ME, (sref, JOIN, Atom("h"), [r2]))]
    # A later sync: h is gone (leave), i is new (join), g changed (replaced silently, as OTP).
    effects = s.handle((CAST, (SYNC, PEER, [(G, [r3]), (Atom("i"), [r1])])))
    assert effects == [Send(ME, (sref, JOIN, Atom("i"), [r1])), Send(ME, (sref, LEAVE, Atom("h"), [r2]))]
    assert s.members(key(G)) == [r3] and s.members(key(Atom("h"))) == []
    assert s.remote[PEER] == {key(G): [r3], key(Atom("i")): [r1]}


def test_unsubscribe_and_subscribers_of_one_group() -> None:
    s = ScopeState(PG, ME)
    r1, r2 = Reference(HERE, 1, (1, 0, 0)), Reference(HERE, 1, (2, 0, 0))
    s.subscribe_group(r1, ME, G)
    s.subscribe_group(r2, ME, G)
    assert s.unsubscribe(r1) and not s.unsubscribe(r1)
    assert s.join(G, local(1))[1:] == [Send(ME, (r2, JOIN, G, [local(1)]))]
    assert s.unsubscribe(r2) and s.monitored == {}
    assert s.join(G, local(2)) == [Watch(local(2))]  # no subscriber left to notify


def test_messages_from_this_node_and_malformed_ones() -> None:
    s = ScopeState(PG, ME)
    assert s.handle((DISCOVER, local(5))) == []  # a scope never peers with its own node
    assert s.handle((CAST, (SYNC, local(5), []))) == []
    for junk in [
        Atom("junk"),
        (),
        (JOIN, PEER, G, Atom("x")),
        (JOIN, Atom("x"), G, [remote(1)]),
        (JOIN, PEER, G, [remote(1), 3]),
        (LEAVE, PEER, [remote(1)], Atom("notalist")),
        (DISCOVER, Atom("x")),
        (CAST, (SYNC, PEER, Atom("x"))),
        (CAST, (SYNC, PEER, [(G,)])),
        (CAST, (SYNC, PEER, [(G, [1])])),
        (CAST, Atom("x")),
        (Atom("nodeup"), b"x"),
    ]:
        assert s.handle(junk) is None, junk
    assert s.peers() == [] and s.groups == {}


def test_groups_are_compared_as_erlang_terms() -> None:
    assert key("g") == key(b"g") != key(G)
    assert key(1) != key(1.0) and key(1) != key(True)
    assert canonical([1, 2])[1] == List([1, 2])
    assert canonical((1, [2]))[1] == (1, List([2]))
    assert canonical({Atom("k"): [1]})[1] == canonical({Atom("k"): [1]})[1]
    hash(canonical({Atom("k"): [1]})[1])
    s = ScopeState(PG, ME)
    s.join([1, 2], local(1))
    s.join("text", local(1))
    assert s.members(key([1, 2])) == [local(1)] and s.members(key(b"text")) == [local(1)]
    assert s.which_groups() == [List([1, 2]), b"text"]
    assert s.handle((CAST, (SYNC, PEER, [([1, 2], [remote(1)])]))) == [Watch(PEER)]
    assert s.members(key([1, 2])) == [remote(1), local(1)]
