"""Pure decisions behind coding large messages away from the event loop while keeping their order.

- :func:`cheap_to_encode`: whether a term is small enough to encode on the event loop at once (a
  bounded walk: it looks at no more than ``budget`` elements, whatever the term's size).
- :func:`event_sender` and :func:`control_sender`: the key that orders a distribution signal: its
  sending process (or the name or pid that plays that part), the same key whether it is read off a
  decoded event or off the raw control tuple of a message not decoded yet. Two signals with the same
  key are handed on in the order they came; signals with different keys need not be.

Erlang guarantees the order of the signals from one process to another; ordering by sender keeps
that (and more).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from philipjose.node import control as c
from philipjose.term import Fun, ImproperList

__all__ = ["PROBE_BUDGET", "cheap_to_encode", "control_sender", "event_sender"]

#: The elements :func:`cheap_to_encode` looks at before it calls a term large (some 5-10 ms of
#: encoding in pure Python, at worst).
PROBE_BUDGET: Final = 2048

_LEAVES: Final = frozenset({int, float, str, bytes, bool, type(None), bytearray})


def cheap_to_encode(term: Any, budget: int = PROBE_BUDGET) -> bool:
    """True when ``term`` holds at most ``budget`` elements (tuple, list and map items, at any depth).

    Binaries and strings count as one element whatever their length: copying bytes is fast. The walk
    stops as soon as the count passes ``budget``, so it costs at most that many steps.
    """
    kind = type(term)
    if kind in _LEAVES:
        return True
    stack = [term]
    pop = stack.pop
    push = stack.extend
    count = 0
    while stack:
        item = pop()
        kind = type(item)
        if kind is tuple or kind is list:
            count += len(item)
            if count > budget:
                return False
            push(item)
        elif kind in _LEAVES:
            continue
        elif kind is dict or isinstance(item, Mapping):
            count += 2 * len(item)
            if count > budget:
                return False
            push(item.keys())
            push(item.values())
        elif isinstance(item, (tuple, list)):  # List, named tuples
            count += len(item)
            if count > budget:
                return False
            push(item)
        elif kind is ImproperList:
            count += len(item.elements) + 1
            if count > budget:
                return False
            push(item.elements)
            stack.append(item.tail)
        elif kind is Fun:
            count += len(item.free_vars)
            if count > budget:
                return False
            push(item.free_vars)
    return True


def event_sender(event: Any) -> Any:
    """The ordering key of a decoded control event (None when it names no sender)."""
    kind = type(event)
    if kind is c.MonitorP or kind is c.DemonitorP:
        return event.watcher
    if kind is c.MonitorPExit:
        return event.target
    if kind is c.SpawnReply or kind is c.UnknownControl:
        return None
    return getattr(event, "sender", None)


#: Where the sender is in a control tuple, by operation (other operations name none).
_SENDER_AT: Final = {
    c.DOP_LINK: 1,
    c.DOP_EXIT: 1,
    c.DOP_UNLINK: 1,
    c.DOP_REG_SEND: 1,
    c.DOP_GROUP_LEADER: 1,
    c.DOP_EXIT2: 1,
    c.DOP_EXIT_TT: 1,
    c.DOP_REG_SEND_TT: 1,
    c.DOP_EXIT2_TT: 1,
    c.DOP_MONITOR_P: 1,
    c.DOP_DEMONITOR_P: 1,
    c.DOP_MONITOR_P_EXIT: 1,
    c.DOP_SEND_SENDER: 1,
    c.DOP_SEND_SENDER_TT: 1,
    c.DOP_PAYLOAD_EXIT: 1,
    c.DOP_PAYLOAD_EXIT_TT: 1,
    c.DOP_PAYLOAD_EXIT2: 1,
    c.DOP_PAYLOAD_EXIT2_TT: 1,
    c.DOP_PAYLOAD_MONITOR_P_EXIT: 1,
    c.DOP_SPAWN_REQUEST: 2,
    c.DOP_SPAWN_REQUEST_TT: 2,
    c.DOP_ALIAS_SEND: 1,
    c.DOP_ALIAS_SEND_TT: 1,
    c.DOP_UNLINK_ID: 2,
    c.DOP_UNLINK_ID_ACK: 2,
}


def control_sender(control: Any) -> Any:
    """The ordering key of a message from its control tuple: what :func:`event_sender` returns for
    the event it decodes to (None for a control tuple that is not a well-formed operation)."""
    if type(control) is not tuple or not control or type(control[0]) is not int:
        return None
    at = _SENDER_AT.get(control[0])
    if at is None or len(control) <= at:
        return None
    return control[at]
