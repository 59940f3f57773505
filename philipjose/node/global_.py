"""``global`` on a philipjose node: the ``global_name_server`` of OTP's ``global`` (protocol version 8,
OTP 25+), so that a visible Python node takes part in global name registration and global locks.
Where OTP 27 changed the server (an ``init_connect`` that finds an attempt pending restarts and is
dropped; a restarted connection forgets the names and locks of that node's processes) this does as
27 does; the messages on the wire are the same in 25 and 27.

Python API (``pj.global_``)::

    yes = await pj.global_.register_name(name, pid)  # Atom('yes') | Atom('no'), as global:register_name/2
    await pj.global_.unregister_name(name)
    await pj.global_.re_register_name(name, pid)
    pid = pj.global_.whereis_name(name)               # Pid | None (OTP: undefined)
    pid = pj.global_.send(name, msg)                  # BadArg when the name is not registered
    names = pj.global_.registered_names()
    ok = await pj.global_.set_lock((resource, requester), nodes=None, retries=None)
    await pj.global_.del_lock((resource, requester), nodes=None)
    result = await pj.global_.trans((resource, requester), fn, nodes=None, retries=None)
    await pj.global_.sync()                           # like global:sync/0

``name`` is any term (an ``Atom``, a ``str`` is taken as an atom, a tuple...). Every call that changes
the table or takes locks must run inside a process (it waits for the other nodes' answers).

Theory of operation
-------------------
The ``global_name_server`` process speaks OTP 25's ``global.erl`` protocol with every *visible*
node (it subscribes to the node's ``monitor_nodes``). On nodeup both servers send
``{init_connect, {8, MyTag}, Node, {locker, no_longer_a_pid, Known, TheLocker}}``; each locker
(a second process, ``_locker``) then takes the ``global`` lock, with the requester id
``[LockerA, LockerB]`` sorted in Erlang term order, on the boss (the greatest known node), on both
nodes and on all known nodes, answering the other locker with ``{lock_set, Self, true, Known, HisTag}``
(sent as a cast to the other server, vsn 6+). With the lock set, each server sends ``{exchange,
Node, Names, [], HisTag}``; a resolver merges the name lists (conflicts are resolved by the name's
method on the node of the conflicting pid, through ``rex``, when this node is the smaller one),
then ``{resolved, ...}`` goes both ways and each server applies the operations, tells its other
known nodes ``{new_nodes, ...}`` and connects to the nodes the peer knows (``sync_others``: then
``{in_sync, Node, true}``): this is how a Python node that joins one erl node of a cluster ends
up connected to all of them, as OTP does with ``connect_all`` (the default). The locker then
releases the lock.

Registration (``register_name``) takes the lock ``{global, Caller}`` on the boss and on every known
node, checks the name is free, and calls ``{register, Name, Pid, Method}`` on every known node,
as OTP's registrar does; the server monitors each registered pid and each lock holder, so a name
or a lock goes away when its process dies or its node goes down.

``prevent_overlapping_partitions`` (OTP 25 default, true): when a connection to a known node is
lost, the server tells the other known nodes ``{lost_connection, ...}``; a server that is told
disconnects from the lost node (after sending it ``{remove_connection, Node}``), so that no node
stays connected to both sides of a partition. This server obeys those messages as OTP does.

Not provided: ``global_group`` (a Python node is in no global group), ``register_name_external``
semantics beyond storing the name (no C nodes link through us), and calling an Erlang fun
(a name's resolve method) on this node: a conflict whose other pid is a Python process is
resolved with OTP's default rule (``random_exit_name``: keep the pid of the smaller node, kill the
other) unless the method is ``global:random_notify_name/3`` or ``global:notify_all_name/3``, which
are done as OTP does.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import trio

from philipjose.actors import Exit, current_runtime, receive
from philipjose.actors import call as _call
from philipjose.actors import demonitor as _demonitor
from philipjose.actors import exit as _exit
from philipjose.actors import monitor as _monitor
from philipjose.actors import reply as _reply
from philipjose.actors import self as _self
from philipjose.actors import send as _send
from philipjose.actors import spawn as _spawn
from philipjose.actors.errors import BadArg
from philipjose.term import Atom, ExportFun, Pid, Reference, term_to_binary

__all__ = [
    "NAME",
    "del_lock",
    "re_register_name",
    "register_name",
    "registered_names",
    "send",
    "server",
    "set_lock",
    "sync",
    "trans",
    "unregister_name",
    "whereis_name",
]

log: Final = logging.getLogger("philipjose.node.global")

NAME: Final = Atom("global_name_server")
_VSN: Final = 8

_GEN_CALL: Final = Atom("$gen_call")
_GEN_CAST: Final = Atom("$gen_cast")
_DOWN: Final = Atom("DOWN")
_EXIT: Final = Atom("EXIT")
_NODEUP: Final = Atom("nodeup")
_NODEDOWN: Final = Atom("nodedown")
_GLOBAL: Final = Atom("global")
_YES: Final = Atom("yes")
_NO: Final = Atom("no")
_OK: Final = Atom("ok")
_INSERT: Final = Atom("insert")
_DELETE: Final = Atom("delete")
_LOCKER: Final = Atom("locker")
_LOCK_SET: Final = Atom("lock_set")
_CANCEL: Final = Atom("cancel")
_KILL: Final = Atom("kill")
_VSN_TAG: Final = Atom("vsn")
_LOCK_TAG: Final = Atom("lock")
_REX: Final = Atom("rex")
_CALL: Final = Atom("call")
_CONFLICT: Final = Atom("global_name_conflict")
_DEFAULT_METHOD: Final = ExportFun("global", "random_exit_name", 3)
_NOTIFY_METHOD: Final = ExportFun("global", "random_notify_name", 3)
_NOTIFY_ALL_METHOD: Final = ExportFun("global", "notify_all_name", 3)

_tags = itertools.count(1)


def _key(term: Any) -> bytes:
    """A hashable key with Erlang's exact equality (``=:=``) for any term: its external format."""
    return term_to_binary(term)


def _pid_order(pid: Pid) -> tuple[int, int, bytes, int]:
    """Erlang's term order of pids (checked against erl 25): serial, number, node name, creation."""
    return (pid.serial, pid.id, str(pid.node).encode(), pid.creation)


def _sorted_pids(pids: Iterable[Pid]) -> list[Pid]:
    return sorted(pids, key=_pid_order)


def _boss(nodes: Iterable[Atom]) -> Atom:
    """``the_boss/1``: the greatest node name (atoms compare by their text)."""
    return max(nodes, key=lambda n: str(n).encode())


def _is_tuple(msg: Any, size: int, tag: Atom | None = None) -> bool:
    return type(msg) is tuple and len(msg) == size and (tag is None or msg[0] == tag)


# ---------------------------------------------------------------------------------------------
# The tables (read by the API without a call, as OTP reads its ETS tables).


class _Tables:
    """Names and locks, owned by the ``global_name_server`` process (only it changes them)."""

    def __init__(self) -> None:
        self.names: dict[bytes, tuple[Any, Pid, Any, Reference]] = {}  # key -> (name, pid, method, ref)
        self.names_ext: dict[bytes, tuple[Any, Pid, Atom]] = {}
        self.locks: dict[
            bytes, tuple[Any, Any, list[tuple[Pid, Reference]]]
        ] = {}  # res -> (res, req, holders)
        self.by_ref: dict[Reference, tuple[str, bytes]] = {}  # monitor ref -> ("name" | "lock", key)
        self.global_lock_down = False

    def where(self, name: Any) -> Pid | None:
        entry = self.names.get(_key(name))
        if entry is None:
            return None
        pid = entry[1]
        rt = current_runtime()
        if rt.is_local_node(pid.node) and not rt.lookup(pid):
            return None
        return pid

    def is_global_lock_set(self) -> bool:
        return _key(_GLOBAL) in self.locks

    def can_set_lock(self, lock: tuple[Any, Any]) -> list[tuple[Pid, Reference]] | None:
        """The holders of ``lock`` if it can be set by its requester id (None when it cannot)."""
        resource, requester = lock
        row = self.locks.get(_key(resource))
        if row is None:
            return []
        if _key(row[1]) == _key(requester):
            return row[2]
        return None


_TABLES: dict[Atom, _Tables] = {}  # node name -> the tables of its global_name_server


def _tables() -> _Tables:
    rt = current_runtime()
    tables = _TABLES.get(rt.node)
    if tables is None:
        raise BadArg("global is not running: this node is not distributed")
    return tables


# ---------------------------------------------------------------------------------------------
# The server.


class _Server:
    """The state of ``global_name_server`` (OTP's ``#state{}`` plus its process dictionary)."""

    def __init__(self, dist: Any, tables: _Tables) -> None:
        self.dist = dist
        self.t = tables
        self.me: Atom = dist.name
        self.known: dict[Atom, int] = {}
        self.pending: dict[Atom, int] = {}
        self.removing: set[Atom] = set()
        self.synced: list[Atom] = []
        self.resolvers: dict[Atom, tuple[int, Pid | None]] = {}
        self.syncers: list[Pid] = []
        self.locker: Pid | None = None
        self.pd: dict[tuple[str, Atom], Any] = {}  # OTP's process dictionary entries, per node
        self.lost: dict[tuple[Atom, Atom], tuple[int, int]] = {}
        self.creation_extension = random.getrandbits(27) << 32

    # -- the process dictionary -----------------------------------------------------------------

    def get(self, what: str, node: Atom) -> Any:
        return self.pd.get((what, node))

    def put(self, what: str, node: Atom, value: Any) -> None:
        self.pd[(what, node)] = value

    def erase(self, what: str, node: Atom) -> Any:
        return self.pd.pop((what, node), None)

    def reset_node_state(self, node: Atom) -> None:
        for what in (
            "wait_lock",
            "save_ops",
            "pre_connect",
            "prot_vsn",
            "sync_tag_my",
            "sync_tag_his",
            "lock_id",
        ):
            self.pd.pop((what, node), None)

    # -- helpers --------------------------------------------------------------------------------

    def cast(self, node: Atom, msg: Any) -> None:
        current_runtime().send((NAME, node), (_GEN_CAST, msg))

    def known_list(self) -> list[tuple[Atom, int]]:
        return [(node, vsn) for node, vsn in self.known.items()]

    def node_vsn(self, node: Atom) -> int:
        if node == self.me:
            return _VSN
        if node in self.known:
            return self.known[node]
        return self.pending.get(node, 0)

    def names_list(self) -> list[tuple[Any, Pid, Any]]:
        return [(name, pid, method) for name, pid, method, _ in self.t.names.values()]

    def names_ext_list(self) -> list[tuple[Any, Pid, Atom]]:
        return list(self.t.names_ext.values())

    def tell_syncers(self, msg: Any) -> None:
        for pid in self.syncers:
            _send(pid, msg)

    # -- names and locks ------------------------------------------------------------------------

    def ins_name(self, name: Any, pid: Pid, method: Any, from_: Pid | Atom, extra: Any) -> None:
        self.delete_name(name)
        ref = _monitor(pid)
        key = _key(name)
        self.t.names[key] = (name, pid, method, ref)
        self.t.by_ref[ref] = ("name", key)
        if not self.lock_still_set(from_, extra):
            self.delete_name(name)

    def lock_still_set(self, from_: Pid | Atom, extra: Any) -> bool:
        row = self.t.locks.get(_key(_GLOBAL))
        if row is None:
            return not self.t.global_lock_down
        if type(from_) is Pid:
            return any(pid == from_ for pid, _ in row[2])
        lock = _extra_info(_LOCK_TAG, extra)
        return _is_tuple(lock, 2) and _key(lock[1]) == _key(row[1])

    def delete_name(self, name: Any) -> None:
        entry = self.t.names.pop(_key(name), None)
        if entry is None:
            return
        ref = entry[3]
        self.t.by_ref.pop(ref, None)
        _demonitor(ref, flush=True)
        self.t.names_ext.pop(_key(name), None)

    def set_lock(self, lock: Any, pid: Pid) -> bool:
        if not _is_tuple(lock, 2) or type(pid) is not Pid:
            return False
        holders = self.t.can_set_lock(lock)
        if holders is None:
            return False
        if any(p == pid for p, _ in holders):
            return True
        ref = _monitor(pid)
        resource, requester = lock
        key = _key(resource)
        self.t.locks[key] = (resource, requester, [(pid, ref), *holders])
        self.t.by_ref[ref] = ("lock", key)
        return True

    def del_lock(self, lock: Any, pid: Pid) -> None:
        if not _is_tuple(lock, 2):
            return
        resource, requester = lock
        key = _key(resource)
        row = self.t.locks.get(key)
        if row is None or _key(row[1]) != _key(requester):
            return
        self.remove_lock(key, pid, down=False)

    def remove_lock(self, key: bytes, pid: Pid, *, down: bool) -> None:
        resource, requester, holders = self.t.locks[key]
        rest = []
        for holder, ref in holders:
            if holder == pid:
                self.t.by_ref.pop(ref, None)
                _demonitor(ref, flush=True)
            else:
                rest.append((holder, ref))
        if rest:
            self.t.locks[key] = (resource, requester, rest)
        else:
            del self.t.locks[key]
            if resource == _GLOBAL:
                self.t.global_lock_down = down

    def delete_node_resources(self, node: Atom) -> None:
        """Forget the names and locks held by processes of ``node`` (as their DOWN would)."""
        for ref, (kind, key) in list(self.t.by_ref.items()):
            if kind == "name":
                row = self.t.names.get(key)
                pid = row[1] if row is not None else None
            else:
                lock = self.t.locks.get(key)
                pid = next((p for p, r in lock[2] if r == ref), None) if lock is not None else None
            if pid is not None and pid.node == node:
                _demonitor(ref, flush=True)
                self.on_down(ref, pid)

    def on_down(self, ref: Reference, pid: Any) -> None:
        entry = self.t.by_ref.pop(ref, None)
        if entry is None:
            return
        kind, key = entry
        if kind == "lock":
            if key in self.t.locks:
                self.remove_lock(key, pid, down=True)
        else:
            row = self.t.names.get(key)
            if row is not None and row[3] == ref:
                del self.t.names[key]
                self.t.names_ext.pop(key, None)

    # -- the connection protocol ----------------------------------------------------------------

    def handle_nodeup(self, node: Atom) -> None:
        if node == self.me or node in self.known or node in self.resolvers:
            return
        pre = self.erase("pre_connect", node)
        if pre is not None:  # resend_pre_connect: handled after our own init_connect went out
            vsn, init_msg, his_tag = pre
            _send(NAME, (_GEN_CAST, (Atom("init_connect"), (vsn, his_tag), node, init_msg)))
        tag = next(_tags)
        self.put("sync_tag_my", node, tag)
        locker = (_LOCKER, Atom("no_longer_a_pid"), self.known_list(), self.locker)
        self.cast(node, (Atom("init_connect"), (_VSN, tag), self.me, locker))
        self.resolvers[node] = (tag, None)

    def init_connect(self, vsn_info: Any, node: Atom, init_msg: Any) -> None:
        if type(vsn_info) is tuple and len(vsn_info) >= 2 and type(vsn_info[0]) is int:
            his_vsn, his_tag = vsn_info[0], vsn_info[1]
        else:
            log.info("illegal global protocol version %r from %s", vsn_info, node)
            return
        vsn = min(his_vsn, _VSN)
        if node in self.pending:
            if his_vsn < 8:
                log.error("global: out of sync connection attempt from old version %d node %s", his_vsn, node)
                self.dist.disconnect(node)
                return
            # OTP 27's rule (25 went on with this init_connect): cancel, start over, drop this one
            self.send_cancel_connect_message(node, his_tag)
            self.restart_connect(node, self.get("sync_tag_my", node))
            return
        self.put("prot_vsn", node, vsn)
        self.put("sync_tag_his", node, his_tag)
        resolver = self.resolvers.get(node)
        if resolver is not None:
            my_tag = resolver[0]
            if not _is_tuple(init_msg, 4, _LOCKER) or type(init_msg[3]) is not Pid:
                log.warning("global: bad init_connect from %s: %.200r", node, init_msg)
                return
            assert self.locker is not None
            _send(self.locker, (Atom("his_the_locker"), init_msg[3], (vsn, []), his_tag, my_tag))
            if his_vsn >= 8:
                _gns_volatile_send(node, (Atom("init_connect_ack"), self.me, his_tag, my_tag))
            self.pending[node] = his_vsn
        else:
            self.put("pre_connect", node, (vsn, init_msg, his_tag))

    def restart_connect(self, node: Atom, my_tag: Any) -> None:
        self.cancel_locker(node, my_tag)
        self.reset_node_state(node)
        self.pending.pop(node, None)
        self.delete_node_resources(node)  # OTP 27: the names and locks of that node's processes go
        if type(my_tag) is int:
            self.handle_nodeup(node)

    def send_cancel_connect_message(self, node: Atom, his_tag: Any) -> None:
        _gns_volatile_send(node, (Atom("cancel_connect"), self.me, his_tag))

    def send_cancel_connect(self, node: Atom, my_tag: Any) -> None:
        vsn = self.pending.get(node)
        if vsn is None or vsn < 8 or self.get("sync_tag_my", node) != my_tag:
            return
        self.send_cancel_connect_message(node, self.get("sync_tag_his", node))

    def cancel_locker(self, node: Atom, tag: Any, fun: Callable[[], None] | None = None) -> None:
        if self.locker is not None:
            _send(self.locker, (_CANCEL, node, tag, fun))
        self.send_cancel_connect(node, tag)
        resolver = self.resolvers.get(node)
        if resolver is not None and resolver[0] == tag:
            if resolver[1] is not None:
                _exit(resolver[1], _KILL)
            del self.resolvers[node]

    def lock_is_set(self, node: Atom, lock_id: Any) -> None:
        self.cast(node, (Atom("exchange"), self.me, self.names_list(), [], self.get("sync_tag_his", node)))
        self.put("lock_id", node, lock_id)
        waiting = self.get("wait_lock", node)
        if _is_tuple(waiting, 2) and waiting[0] == "exchange":
            self.put("wait_lock", node, "lock_is_set")
            self.exchange(node, waiting[1])
        else:
            self.put("wait_lock", node, "lock_is_set")

    def exchange(self, node: Atom, names: Any) -> None:
        if self.erase("wait_lock", node) == "lock_is_set":
            resolver = self.resolvers.get(node)
            if resolver is None:
                return
            tag = resolver[0]
            pid = _spawn(_resolve, node, tag, names, self.t, self.me)
            self.resolvers[node] = (tag, pid)
        else:
            self.put("wait_lock", node, ("exchange", names))

    def exchange_ops(self, node: Atom, tag: Any, ops: Any, resolved: Any) -> None:
        if self.get("sync_tag_my", node) != tag:
            self.cancel_locker(node, tag)
            return
        resolver = self.resolvers.get(node)
        if resolver is not None:
            self.resolvers[node] = (resolver[0], None)  # it has finished
        self.cast(
            node,
            (
                Atom("resolved"),
                self.me,
                resolved,
                self.known_list(),
                Atom("unused"),
                self.names_ext_list(),
                self.get("sync_tag_his", node),
            ),
        )
        saved = self.get("save_ops", node)
        self.put("save_ops", node, ops)
        if _is_tuple(saved, 4, Atom("resolved")):
            _, his_known, names_ext, his_resolved = saved
            self.resolved(node, his_resolved, his_known, names_ext)

    def on_resolved(self, node: Atom, his_resolved: Any, his_known: Any, names_ext: Any, tag: Any) -> None:
        if self.get("sync_tag_my", node) != tag:
            self.cancel_locker(node, tag)
            return
        if type(self.get("save_ops", node)) is list:
            self.resolved(node, his_resolved, his_known, names_ext)
        else:
            self.put("save_ops", node, (Atom("resolved"), his_known, names_ext, his_resolved))

    def resolved(self, node: Atom, his_resolved: Any, his_known: Any, names_ext: Any) -> None:
        ops = list(self.erase("save_ops", node) or []) + list(his_resolved)
        known_before = dict(self.known)
        new_nodes = self.node_vsn_list([node, *his_known])
        his_known_nodes = _node_list(his_known)
        self.sync_others(his_known_nodes)
        extra = [(_VSN_TAG, self.get("prot_vsn", node)), (_LOCK_TAG, self.get("lock_id", node))]
        self.do_ops(ops, self.me, names_ext, extra)
        self.tell_syncers((Atom("synced"), [node]))
        for other in his_known_nodes:
            self.cancel_resolved_locker(other, None)
        msg = (Atom("new_nodes"), self.me, ops, names_ext, new_nodes, extra)
        old_msg = (Atom("new_nodes"), self.me, ops, names_ext, _node_list(new_nodes), extra)
        me = self

        def tell_known() -> None:
            for other, vsn in known_before.items():
                me.cast(other, msg if vsn >= 7 else old_msg)

        self.cancel_resolved_locker(node, tell_known)
        added = self.add_to_known(new_nodes)
        if self.locker is not None:
            _send(self.locker, (Atom("add_to_known"), added))
        self.synced = [node, *[n for n in self.synced if n != node]]

    def cancel_resolved_locker(self, node: Atom, fun: Callable[[], None] | None) -> None:
        tag = self.get("sync_tag_my", node)
        self.pending.pop(node, None)
        self.cancel_locker(node, tag, fun)
        self.reset_node_state(node)

    def node_vsn_list(self, nodes: Iterable[Any]) -> list[tuple[Atom, int]]:
        out = []
        for item in nodes:
            if type(item) is Atom:
                out.append((item, self.node_vsn(item)))
            elif _is_tuple(item, 2) and type(item[0]) is Atom and type(item[1]) is int:
                out.append((item[0], item[1] or self.node_vsn(item[0])))
        return out

    def add_to_known(self, nodes: Iterable[Any]) -> list[Atom]:
        added: list[Atom] = []
        for item in nodes:
            node, vsn = (item, 0) if type(item) is Atom else (item[0], item[1])
            if type(node) is not Atom or "@" not in node or type(vsn) is not int or node == self.me:
                continue
            if node not in self.known:
                added.append(node)
                self.known[node] = vsn
            elif self.known[node] < 0:
                self.known[node] = vsn
        return added

    def new_nodes(self, ops: Any, conn_node: Atom, names_ext: Any, nodes: Any, extra: Any) -> None:
        added = self.add_to_known(n for n in nodes if type(n) is Atom or _is_tuple(n, 2))
        self.sync_others(added)
        self.do_ops(ops, conn_node, names_ext, extra)
        if self.locker is not None:
            _send(self.locker, (Atom("add_to_known"), added))

    def sync_others(self, nodes: Iterable[Atom]) -> None:
        for node in nodes:
            if node != self.me:
                _spawn(_sync_other, node, self.me)

    def do_ops(self, ops: Any, conn_node: Atom, names_ext: Any, extra: Any) -> None:
        ext = {_key(e[0]): e for e in names_ext if _is_tuple(e, 3)} if type(names_ext) is list else {}
        for op in ops:
            if _is_tuple(op, 2, _INSERT) and _is_tuple(op[1], 3) and type(op[1][1]) is Pid:
                name, pid, method = op[1]
                self.ins_name(name, pid, method, conn_node, extra)
                entry = ext.get(_key(name))
                if entry is not None and entry[1] == pid and _key(name) in self.t.names:
                    self.t.names_ext[_key(name)] = entry
        for op in ops:
            if _is_tuple(op, 2, _DELETE):
                self.delete_name(op[1])

    def in_sync(self, node: Atom) -> None:
        self.tell_syncers((Atom("synced"), [node]))
        if node not in self.synced:
            self.synced.append(node)
        self.pending.pop(node, None)
        self.cancel_locker(node, self.get("sync_tag_my", node))
        self.reset_node_state(node)

    def handle_nodedown(self, node: Atom, what: str) -> None:
        self.cancel_locker(node, self.get("sync_tag_my", node))
        if self.locker is not None:
            _send(self.locker, (Atom("remove_from_known"), node))
        self.reset_node_state(node)
        if what == "remove_connection":
            self.removing.add(node)
        elif what == "ignore_node" or node in self.removing:
            self.removing.discard(node)
        else:
            self.inform_connection_loss(node)
        self.pending.pop(node, None)
        self.known.pop(node, None)
        self.synced = [n for n in self.synced if n != node]

    def inform_connection_loss(self, node: Atom) -> None:
        op_id = next(_tags)
        creation = self.creation_extension + self.dist.creation
        msg = (Atom("lost_connection"), self.me, creation, op_id, node)
        self.multicast(msg, node)

    def multicast(self, msg: Any, ignore: Atom) -> None:
        for other, vsn in [*self.known.items(), *self.pending.items()]:
            if other != ignore and vsn >= 7:
                _gns_volatile_send(other, msg)

    def lost_connection(self, node_a: Atom, xcreation: Any, op_id: Any, node_b: Atom) -> None:
        seen = self.lost.get((node_a, node_b))
        if seen is not None and seen[0] == xcreation and type(op_id) is int and op_id <= seen[1]:
            return
        self.multicast((Atom("lost_connection"), node_a, xcreation, op_id, node_b), node_a)
        self.lost[(node_a, node_b)] = (xcreation, op_id if type(op_id) is int else 0)
        victim = node_a if node_b == self.me else node_b
        if victim not in self.known and victim not in self.pending:
            return
        if self.node_vsn(victim) < 7:
            self.dist.disconnect(victim)
        else:
            _gns_volatile_send(victim, (Atom("remove_connection"), self.me))
        log.warning(
            "'global' at node %s disconnected node %s in order to prevent overlapping partitions",
            self.me,
            victim,
        )
        self.handle_nodedown(victim, "remove_connection")

    def remove_connection(self, node: Atom) -> None:
        if node not in self.known and node not in self.pending:
            return
        self.handle_nodedown(node, "remove_connection")
        log.warning(
            "'global' at node %s disconnected node %s in order to prevent overlapping partitions",
            self.me,
            node,
        )
        self.dist.disconnect(node)

    # -- dispatch -------------------------------------------------------------------------------

    def handle_call(self, caller: tuple[Pid, Any], request: Any) -> None:
        pid = caller[0]
        kind = request[0] if type(request) is tuple and request else request
        if kind == Atom("register") and _is_tuple(request, 4) and type(request[2]) is Pid:
            self.ins_name(request[1], request[2], request[3], pid, [])
            _reply(caller, _YES)
        elif kind == Atom("register_ext") and _is_tuple(request, 5) and type(request[2]) is Pid:
            name, target, method, reg_node = request[1:]
            self.ins_name(name, target, method, pid, [])
            if _key(name) in self.t.names:
                self.t.names_ext[_key(name)] = (name, target, reg_node)
            _reply(caller, _YES)
        elif kind == Atom("unregister") and _is_tuple(request, 2):
            self.delete_name(request[1])
            _reply(caller, _OK)
        elif kind == Atom("set_lock") and _is_tuple(request, 2):
            _reply(caller, self.set_lock(request[1], pid))
        elif kind == Atom("del_lock") and _is_tuple(request, 2):
            self.del_lock(request[1], pid)
            _reply(caller, True)
        elif request == Atom("get_known"):
            _reply(caller, self.known_list())
        elif request == Atom("get_synced"):
            _reply(caller, list(self.synced))
        elif kind == Atom("sync") and _is_tuple(request, 2) and type(request[1]) is list:
            nodes = [n for n in request[1] if n != self.me and n not in self.synced]
            self.syncers.append(_spawn(_syncer, nodes, caller))
        elif request == Atom("get_protocol_version"):
            _reply(caller, _VSN)
        elif request == Atom("get_names_ext"):
            _reply(caller, self.names_ext_list())
        else:
            log.warning("global_name_server: unexpected call %.200r from %s", request, pid)

    def handle_cast(self, msg: Any) -> None:
        if type(msg) is not tuple or not msg:
            log.warning("global_name_server: unexpected cast %.200r", msg)
            return
        tag, size = msg[0], len(msg)
        if tag == Atom("init_connect") and size == 4 and type(msg[2]) is Atom:
            self.init_connect(msg[1], msg[2], msg[3])
        elif tag == Atom("lock_is_set") and size == 4:
            _, node, my_tag, lock_id = msg
            if self.get("sync_tag_my", node) == my_tag:
                self.lock_is_set(node, lock_id)
            else:
                self.cancel_locker(node, my_tag)
        elif tag == Atom("exchange") and size == 5 and type(msg[1]) is Atom:
            _, node, names, _ext, my_tag = msg
            if self.get("sync_tag_my", node) == my_tag:
                self.exchange(node, names)
            else:
                self.cancel_locker(node, my_tag)
        elif tag == Atom("exchange_ops") and size == 5:
            self.exchange_ops(msg[1], msg[2], msg[3], msg[4])
        elif tag == Atom("resolved") and size == 7 and type(msg[1]) is Atom:
            _, node, his_resolved, his_known, _unused, names_ext, my_tag = msg
            self.on_resolved(node, his_resolved, his_known, names_ext, my_tag)
        elif tag == Atom("new_nodes") and size == 6 and type(msg[1]) is Atom:
            self.new_nodes(msg[2], msg[1], msg[3], msg[4], msg[5])
        elif tag == Atom("in_sync") and size == 3 and type(msg[1]) is Atom:
            self.in_sync(msg[1])
        elif tag == _LOCK_SET and size in (4, 5) and type(msg[1]) is Pid:
            if size == 5 and self.get("sync_tag_my", msg[1].node) != msg[4]:
                return
            if self.locker is not None:
                _send(self.locker, msg)
        elif tag in (Atom("async_del_name"), Atom("async_del_lock")):
            pass
        else:
            log.warning("global_name_server: unexpected cast %.200r", msg)

    def handle_info(self, msg: Any) -> None:
        if type(msg) is not tuple or not msg:
            log.warning("global_name_server: unexpected message %.200r", msg)
            return
        tag, size = msg[0], len(msg)
        if tag == _NODEUP and size == 2:
            if msg[1] != self.me:
                self.handle_nodeup(msg[1])
        elif (tag == _NODEDOWN and size == 2) or (tag == Atom("extra_nodedown") and size == 2):
            self.tell_syncers((_NODEDOWN, msg[1]))
            self.handle_nodedown(msg[1], "disconnected")
        elif tag == _DOWN and size == 5 and type(msg[1]) is Reference:
            self.on_down(msg[1], msg[3])
        elif tag == _EXIT and size == 3:
            if msg[1] in self.syncers:
                self.syncers.remove(msg[1])
        elif tag == Atom("init_connect_ack") and size == 4:
            _, node, his_my_tag, his_his_tag = msg
            my_my = self.get("sync_tag_my", node)
            if not (my_my == his_my_tag and self.get("sync_tag_his", node) == his_his_tag):
                self.send_cancel_connect_message(node, his_his_tag)
                self.restart_connect(node, my_my)
        elif tag == Atom("cancel_connect") and size == 3:
            _, node, my_tag = msg
            if self.get("sync_tag_my", node) == my_tag:
                self.cancel_locker(node, my_tag)
                self.reset_node_state(node)
                self.pending.pop(node, None)
                self.restart_connect(node, my_tag)
        elif tag == Atom("lost_connection") and size == 5:
            self.lost_connection(msg[1], msg[2], msg[3], msg[4])
        elif tag == Atom("remove_connection") and size == 2:
            self.remove_connection(msg[1])
        elif tag == Atom("whereis") and size == 3:
            _reply(msg[2], self.t.where(msg[1]) or Atom("undefined"))
        elif tag == Atom("synced_done") and size == 2:  # a syncer finished
            if msg[1] in self.syncers:
                self.syncers.remove(msg[1])
        else:
            log.warning("global_name_server: unexpected message %.200r", msg)


def _extra_info(tag: Atom, extra: Any) -> Any:
    if type(extra) is list:
        for item in extra:
            if _is_tuple(item, 2, tag):
                return item[1]
    return None


def _node_list(items: Iterable[Any]) -> list[Atom]:
    out = []
    for item in items:
        if type(item) is Atom and "@" in item:
            out.append(item)
        elif _is_tuple(item, 2) and type(item[0]) is Atom and "@" in item[0]:
            out.append(item[0])
    return out


def _gns_volatile_send(node: Atom, msg: Any) -> None:
    """Send to the server on ``node`` without connecting (OTP: ``[noconnect]``)."""
    dist = current_runtime().dist
    if dist is not None and node in dist.nodes():  # type: ignore[attr-defined]
        current_runtime().send((NAME, node), msg)


async def server(dist: Any) -> None:
    """The ``global_name_server`` process body (started by the node at start)."""
    tables = _Tables()
    _TABLES[dist.name] = tables
    state = _Server(dist, tables)
    state.locker = _spawn(_locker, _self(), dist.name)
    dist.monitor_nodes(_self(), True, "visible")
    for node in dist.nodes("visible"):
        state.handle_nodeup(node)
    try:
        while True:
            msg = await receive()
            try:
                if type(msg) is tuple and len(msg) == 3 and msg[0] == _GEN_CALL and _is_tuple(msg[1], 2):
                    state.handle_call(msg[1], msg[2])
                elif type(msg) is tuple and len(msg) == 2 and msg[0] == _GEN_CAST:
                    state.handle_cast(msg[1])
                else:
                    state.handle_info(msg)
            except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
                # a malformed message from a peer: it is dropped, the server goes on serving the others
                log.warning("global_name_server: dropped a malformed message %.200r: %r", msg, exc)
    finally:
        _TABLES.pop(dist.name, None)


# ---------------------------------------------------------------------------------------------
# Helper processes: resolver, syncers, sync_other, the locker.


async def _resolve(node: Atom, tag: int, names: Any, tables: _Tables, me: Atom) -> None:
    """Merge the peer's names with ours (OTP's ``exchange_names``) and hand the result back."""
    ops: list[Any] = []
    resolved: list[Any] = []
    for item in names if type(names) is list else []:
        if not _is_tuple(item, 3) or type(item[1]) is not Pid:
            continue
        name, pid, method = item
        ours = tables.names.get(_key(name))
        if ours is None:
            ops.append((_INSERT, (name, pid, method)))
            continue
        _, pid2, method2, _ref = ours
        if pid2 == pid or not str(me).encode() < str(node).encode():
            continue
        winner = await _resolve_conflict(method2, name, pid, pid2)
        if winner == pid:
            ops.append((_INSERT, (name, pid, method)))
        elif winner == pid2:
            resolved.append((_INSERT, (name, pid2, method2)))
        else:
            op = (_DELETE, name)
            ops.append(op)
            resolved.append(op)
    _send(NAME, (_GEN_CAST, (Atom("exchange_ops"), node, tag, ops, resolved)))


async def _resolve_conflict(method: Any, name: Any, pid: Pid, pid2: Pid) -> Any:
    """``global:resolve_it(Method, Name, Pid, Pid2)`` on ``node(Pid2)``."""
    rt = current_runtime()
    if not rt.is_local_node(pid2.node):
        try:
            answer = await _call(
                (_REX, pid2.node),
                (_CALL, _GLOBAL, Atom("resolve_it"), [method, name, pid, pid2], _self()),
                timeout=None,
            )
        except Exit as exc:
            log.info("global: badrpc %r when conflicting name %r was found", exc.reason, name)
            return pid
        return answer
    low, high = (pid, pid2) if str(pid.node).encode() < str(pid2.node).encode() else (pid2, pid)
    if method == _NOTIFY_ALL_METHOD:
        _send(pid, (_CONFLICT, name, pid2))
        _send(pid2, (_CONFLICT, name, pid))
        return Atom("none")
    if method == _NOTIFY_METHOD:
        _send(high, (_CONFLICT, name))
        return low
    if method != _DEFAULT_METHOD:
        log.warning(
            "global: the resolve method %r of name %r cannot run on a Python node: "
            "resolved as global:random_exit_name/3",
            method,
            name,
        )
    log.info("global: Name conflict terminating %r", (name, high))
    _exit(high, _KILL)
    return low


async def _syncer(nodes: list[Atom], caller: tuple[Pid, Any]) -> None:
    """Answer ``{sync, Nodes}`` once every node has synced with us or gone down."""
    waiting = set(nodes)
    dist = current_runtime().dist
    for node in list(waiting):
        if dist is None or node not in dist.nodes():  # type: ignore[attr-defined]
            waiting.discard(node)
    while waiting:
        msg = await receive()
        if _is_tuple(msg, 2, _NODEDOWN):
            waiting.discard(msg[1])
        elif _is_tuple(msg, 2, Atom("synced")) and type(msg[1]) is list:
            waiting.difference_update(msg[1])
    _reply(caller, _OK)
    _send(NAME, (Atom("synced_done"), _self()))


async def _sync_other(node: Atom, me: Atom) -> None:
    """Connect to ``node`` (a node a peer knows) and tell its server we are in sync with it."""
    dist = current_runtime().dist
    assert dist is not None
    peer = dist.ensure_connecting(node)  # type: ignore[attr-defined]
    await peer.done.wait()
    if peer.up:
        current_runtime().send((NAME, node), (_GEN_CAST, (Atom("in_sync"), me, True)))
    else:
        log.warning("'global' at %s failed to connect to %s", me, node)
        _send(NAME, (Atom("extra_nodedown"), node))


class _Him:
    __slots__ = ("his_tag", "locker", "my_tag", "node", "vsn")

    def __init__(self, node: Atom, locker: Pid, vsn: int, my_tag: Any, his_tag: Any) -> None:
        self.node, self.locker, self.vsn, self.my_tag, self.his_tag = node, locker, vsn, my_tag, his_tag


async def _multi_call(nodes: Iterable[Atom], request: Any) -> list[tuple[Atom, Any]]:
    """``gen_server:multi_call(Nodes, global_name_server, Request)``: the replies of the servers that
    answered (a node that is down or has no server is left out, as OTP's bad nodes)."""
    rt = current_runtime()
    me = _self()
    refs: dict[Reference, Atom] = {}
    for node in nodes:
        dest: Any = NAME if rt.is_local_node(node) else (NAME, node)
        ref = _monitor(dest)
        refs[ref] = node
        rt.send(dest, (_GEN_CALL, (me, ref), request))
    replies: list[tuple[Atom, Any]] = []
    while refs:
        msg = await receive(
            match=lambda m: (
                type(m) is tuple
                and ((len(m) == 2 and m[0] in refs) or (len(m) == 5 and m[0] == _DOWN and m[1] in refs))
            )
        )
        if len(msg) == 2:
            node = refs.pop(msg[0])
            _demonitor(msg[0], flush=True)
            replies.append((node, msg[1]))
        else:
            refs.pop(msg[1])
    return replies


async def _set_lock_on_nodes(lock: Any, nodes: list[Atom]) -> bool:
    if not nodes:
        return True
    tables = _tables()
    me = current_runtime().node
    if len(nodes) > 1 and me in nodes and tables.can_set_lock(lock) is None:
        return False
    replies = await _multi_call(nodes, (Atom("set_lock"), lock))
    if all(answer is True for _, answer in replies):
        return True
    if len(replies) > 1:
        await _multi_call([n for n, answer in replies if answer is True], (Atom("del_lock"), lock))
    return False


async def _del_lock_on(lock: Any, nodes: list[Atom]) -> None:
    await _multi_call(nodes, (Atom("del_lock"), lock))


async def _delete_global_lock(lock: Any, nodes: list[Atom]) -> None:
    boss = _boss(nodes)
    await _del_lock_on(lock, [n for n in nodes if n != boss])
    await _del_lock_on(lock, [boss])


async def _random_sleep(times: int) -> None:
    limit = 8.0 if times > 5 else (1 << times) / 8
    await trio.sleep(random.uniform(0, limit))


async def _locker(server_pid: Pid, me: Atom) -> None:
    """The locker (OTP's ``the_locker``): takes the ``global`` lock for each new connection."""
    others: list[_Him] = []
    known: list[Atom] = []
    just_synced = False
    my_pid = _self()

    def lock_id(his: Pid) -> tuple[Atom, list[Pid]]:
        return (_GLOBAL, _sorted_pids([my_pid, his]))

    def update(msg: Any) -> bool:
        nonlocal known
        if _is_tuple(msg, 2, Atom("add_to_known")):
            known = [n for n in msg[1] if n not in known] + known
            return True
        if _is_tuple(msg, 2, Atom("remove_from_known")):
            known = [n for n in known if n != msg[1]]
            return True
        return False

    async def drain_known() -> None:
        while True:
            try:
                msg = await receive(
                    match=lambda m: (
                        _is_tuple(m, 2) and m[0] in (Atom("add_to_known"), Atom("remove_from_known"))
                    ),
                    timeout=0,
                )
            except TimeoutError:
                return
            update(msg)

    async def lock_nodes_safely(lock: Any, extra: list[Atom]) -> bool:
        boss = _boss([me, *known])
        first = [boss]
        tables = _tables()
        if first != [me] and tables.can_set_lock(lock) is None:
            return False
        if not await _set_lock_on_nodes(lock, first):
            return False
        await drain_known()
        second = [n for n in [me, *extra] if n not in first]
        if not await _set_lock_on_nodes(lock, second):
            await _del_lock_on(lock, first)
            return False
        if not await _set_lock_on_nodes(lock, [n for n in known if n not in first]):
            await _del_lock_on(lock, first + second)
            return False
        return True

    def send_lock_set(is_set: bool, his_locker: Pid, vsn: int, his_tag: Any) -> None:
        msg: Any = (_LOCK_SET, my_pid, is_set, list(known))
        if vsn >= 8:
            msg = (*msg, his_tag)
        current_runtime().send((NAME, his_locker.node), (_GEN_CAST, msg))

    def find(node: Atom) -> _Him | None:
        return next((h for h in others if h.node == node), None)

    def remove(node: Atom, tag: Any) -> None:
        for him in others:
            if him.node == node and him.my_tag == tag:
                others.remove(him)
                return

    async def wait_cancel(node: Atom, lock: Any, tag: Any, nodes: list[Atom]) -> None:
        msg = await receive(match=lambda m: _is_tuple(m, 4, _CANCEL) and m[1] == node and m[2] == tag)
        if msg[3] is not None:
            msg[3]()
        await _delete_global_lock(lock, nodes)

    async def handle(msg: Any) -> None:
        nonlocal just_synced
        if update(msg):
            return
        if _is_tuple(msg, 5, Atom("his_the_locker")):
            _, his_locker, (vsn, _), his_tag, my_tag = msg
            others.insert(0, _Him(his_locker.node, his_locker, vsn, my_tag, his_tag))
        elif _is_tuple(msg, 4, _CANCEL):
            if msg[3] is not None:
                msg[3]()
            if msg[2] is not None:
                remove(msg[1], msg[2])
        elif type(msg) is tuple and len(msg) in (4, 5) and msg[0] == _LOCK_SET:
            pid, is_set = msg[1], msg[2]
            if is_set is not True:
                return
            him = find(pid.node)
            if him is None or (len(msg) == 5 and msg[4] != him.my_tag):
                send_lock_set(False, pid, 5, 0)
                return
            lock = lock_id(pid)
            ok = await lock_nodes_safely(lock, [])
            send_lock_set(ok, pid, him.vsn, him.his_tag)
            if ok:
                current_runtime().send(
                    server_pid, (_GEN_CAST, (Atom("lock_is_set"), him.node, him.my_tag, lock))
                )
                await wait_cancel(him.node, lock, him.my_tag, [me, *known])
                remove(him.node, him.my_tag)
                just_synced = True
            else:
                just_synced = False
        else:
            log.warning("global locker: unexpected message %.200r", msg)

    async def select_node() -> None:
        nonlocal just_synced
        local_host = str(me).partition("@")[2]
        others[:] = [h for h in others if h.node not in known]
        candidates = list(others)
        local = [h for h in candidates if str(h.node).partition("@")[2] == local_host]
        pool = local or candidates
        if not pool:
            return
        him = random.choice(pool)
        lock = lock_id(him.locker)
        if not await lock_nodes_safely(lock, [him.node]):
            return
        nodes = [me, him.node, *known]
        send_lock_set(True, him.locker, him.vsn, him.his_tag)
        while True:
            msg = await receive(
                match=lambda m: (
                    (
                        type(m) is tuple
                        and len(m) in (4, 5)
                        and m[0] == _LOCK_SET
                        and type(m[1]) is Pid
                        and m[1].node == him.node
                    )
                    or (_is_tuple(m, 4, _CANCEL) and m[1] == him.node and m[2] == him.my_tag)
                )
            )
            if msg[0] == _CANCEL:
                if msg[3] is not None:
                    msg[3]()
                await _delete_global_lock(lock, nodes)
                remove(him.node, him.my_tag)
                return
            if len(msg) == 5 and msg[4] != him.my_tag:
                continue  # an answer to an older attempt
            if msg[2] is True:
                current_runtime().send(
                    server_pid, (_GEN_CAST, (Atom("lock_is_set"), him.node, him.my_tag, lock))
                )
                await wait_cancel(him.node, lock, him.my_tag, nodes)
                just_synced = True
                if him in others:
                    others.remove(him)
                return
            await _delete_global_lock(lock, nodes)
            return

    while True:
        if not others:
            timeout: float | None = None
        elif just_synced:
            timeout = 0
        elif not known:
            timeout = 0.2
        else:
            timeout = min(1.0 + 0.1 * len(known), 3.0)
        just_synced = False
        try:
            msg = await receive(timeout=timeout)
        except TimeoutError:
            if not _tables().is_global_lock_set():
                await select_node()
            continue
        await handle(msg)


# ---------------------------------------------------------------------------------------------
# The API.


def _name(name: Any) -> Any:
    return Atom(name) if type(name) is str else name


def whereis_name(name: Any) -> Pid | None:
    """The pid registered globally as ``name``, or None (Erlang's ``undefined``)."""
    return _tables().where(_name(name))


def registered_names() -> list[Any]:
    """All globally registered names."""
    return [entry[0] for entry in _tables().names.values()]


def send(name: Any, msg: Any) -> Pid:
    """Send ``msg`` to the pid registered as ``name`` and return the pid (``global:send/2``).

    Raises :class:`~philipjose.actors.BadArg` when no pid is registered under ``name``
    (OTP exits with ``{badarg, {Name, Msg}}``)."""
    pid = whereis_name(name)
    if pid is None:
        raise BadArg(f"no pid is globally registered as {name!r}")
    _send(pid, msg)
    return pid


async def _known() -> list[Atom]:
    ((_, known),) = await _multi_call([current_runtime().node], Atom("get_known"))
    return _node_list(known)


async def _trans_all_known(fn: Callable[[list[Atom]], Awaitable[Any]]) -> Any:
    """OTP's ``trans_all_known``: the lock ``{global, Self}`` on the boss, then on all known nodes."""
    me = current_runtime().node
    lock = (_GLOBAL, _self())
    times = 0
    while True:
        known = await _known()
        nodes = [me, *known]
        boss = _boss(nodes)
        if await _set_lock_on_nodes(lock, [boss]):
            if await _set_lock_on_nodes(lock, nodes) and not set(await _known()) - set(known):
                break
            await _del_lock_on(lock, [boss])
        await _random_sleep(times)
        times += 1
    try:
        return await fn(nodes)
    finally:
        await _delete_global_lock(lock, nodes)


async def register_name(name: Any, pid: Pid, method: Any = _DEFAULT_METHOD) -> Atom:
    """Register ``pid`` as ``name`` on every node of the cluster (``global:register_name/2,3``).

    Returns ``Atom('yes')``, or ``Atom('no')`` when the name is taken or ``pid`` already has a global
    name. ``method`` (an Erlang fun ``fun M:F/3``, default ``global:random_exit_name/3``) decides
    conflicts when two partitions that both have the name merge."""
    name = _name(name)
    if type(pid) is not Pid:
        raise BadArg(f"register_name expects a Pid, not {pid!r}")

    async def register(nodes: list[Atom]) -> Atom:
        tables = _tables()
        if tables.where(name) is not None or any(entry[1] == pid for entry in tables.names.values()):
            return _NO
        await _multi_call(nodes, (Atom("register"), name, pid, method))
        return _YES

    result: Atom = await _trans_all_known(register)
    return result


async def re_register_name(name: Any, pid: Pid, method: Any = _DEFAULT_METHOD) -> Atom:
    """Register ``pid`` as ``name`` even if the name is taken (``global:re_register_name/2,3``)."""
    name = _name(name)

    async def register(nodes: list[Atom]) -> Atom:
        await _multi_call(nodes, (Atom("register"), name, pid, method))
        return _YES

    result: Atom = await _trans_all_known(register)
    return result


async def unregister_name(name: Any) -> None:
    """Remove the global name ``name`` on every node (``global:unregister_name/1``)."""
    name = _name(name)
    if whereis_name(name) is None:
        return

    async def unregister(nodes: list[Atom]) -> None:
        await _multi_call(nodes, (Atom("unregister"), name))

    await _trans_all_known(unregister)


def _lock_nodes(nodes: Iterable[Any] | None) -> list[Atom]:
    rt = current_runtime()
    if nodes is None:
        dist = rt.dist
        visible = dist.nodes("visible") if dist is not None else []  # type: ignore[attr-defined]
        return [rt.node, *visible]
    return [Atom(n) for n in nodes]


async def set_lock(
    lock: tuple[Any, Any], nodes: Iterable[Any] | None = None, retries: int | None = None
) -> bool:
    """``global:set_lock(Id, Nodes, Retries)``: lock ``Id = (ResourceId, LockRequesterId)`` on
    ``nodes`` (default: this node and its visible nodes) for the calling process. ``retries`` None
    retries forever (OTP's ``infinity``), with OTP's random back-off. True when the lock is set."""
    if not _is_tuple(lock, 2):
        raise BadArg(f"a lock id is (ResourceId, LockRequesterId), not {lock!r}")
    targets = _lock_nodes(nodes)
    times = 1
    while True:
        if await _set_lock_on_nodes(lock, targets):
            return True
        if retries is not None:
            if retries <= 0:
                return False
            retries -= 1
        await _random_sleep(times)
        times += 1


async def del_lock(lock: tuple[Any, Any], nodes: Iterable[Any] | None = None) -> bool:
    """``global:del_lock(Id, Nodes)``: release the calling process's hold of ``lock``. Returns True."""
    await _del_lock_on(lock, _lock_nodes(nodes))
    return True


async def trans(
    lock: tuple[Any, Any],
    fn: Callable[[], Awaitable[Any]],
    nodes: Iterable[Any] | None = None,
    retries: int | None = None,
) -> Any:
    """``global:trans/4``: run ``await fn()`` holding ``lock``; ``Atom('aborted')`` if it cannot be set."""
    targets = _lock_nodes(nodes)
    if not await set_lock(lock, targets, retries):
        return Atom("aborted")
    try:
        return await fn()
    finally:
        await del_lock(lock, targets)


async def sync() -> Atom:
    """``global:sync/0``: wait until this node's names are in sync with every visible node."""
    rt = current_runtime()
    dist = rt.dist
    nodes = dist.nodes("visible") if dist is not None else []  # type: ignore[attr-defined]
    result: Atom = await _call(NAME, (Atom("sync"), list(nodes)), timeout=None)
    return result
