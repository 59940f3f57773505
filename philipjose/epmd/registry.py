"""The port mapper's table of registered nodes: pure bookkeeping, no I/O, no clock.

Rules (as OTP's epmd):

- A name is registered by one live connection (its *owner*, any hashable key); a second
  registration of a live name is refused. Names longer than 255 characters are refused.
- When the owner goes away the name is unregistered but its creation counter is remembered (the
  ``max_remembered`` most recently freed names, 1000 by default), so the next registration of that
  name gets a different creation: the counter is bumped and kept at 4 or more, wrapping at 2**32.
- A name never seen before starts its counter at ``seed`` (the server passes the time in seconds,
  so a restarted EPMD does not hand out the creations of the previous one).
- The creation returned is the counter for version-6 nodes (32 bits, never 0) and
  ``counter % 3 + 1`` (1..3) for nodes whose highest version is 5 (16-bit ``ALIVE2_RESP``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from philipjose.epmd.protocol import NodeInfo

__all__ = ["MAX_NAME_CHARS", "Entry", "Registry"]

MAX_NAME_CHARS = 255
_CREATION_FLOOR = 4
_U32_MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Entry:
    """One live registration: the node, the connection that owns it, and its creation."""

    info: NodeInfo
    owner: Hashable
    creation: int
    counter: int


def _bump(counter: int) -> int:
    counter = (counter + 1) & _U32_MASK
    return max(counter, _CREATION_FLOOR)


def _creation(counter: int, highest_version: int) -> int:
    return counter if highest_version >= 6 else counter % 3 + 1


class Registry:
    """Registered nodes by name, with per-name creation counters (see the module docstring)."""

    __slots__ = ("_by_name", "_by_owner", "_max_remembered", "_remembered")

    def __init__(self, *, max_remembered: int = 1000) -> None:
        self._by_name: dict[str, Entry] = {}
        self._by_owner: dict[Hashable, str] = {}
        self._remembered: OrderedDict[str, int] = OrderedDict()
        self._max_remembered = max_remembered

    def __len__(self) -> int:
        return len(self._by_name)

    def register(self, info: NodeInfo, owner: Hashable, *, seed: int) -> Entry | None:
        """Register ``info.name`` for ``owner``; None when refused (name live or too long).

        ``seed`` starts the creation counter of a name not seen before. An owner registers at most
        one name; registering again for the same owner is refused.
        """
        name = info.name
        if name in self._by_name or owner in self._by_owner or len(name) > MAX_NAME_CHARS:
            return None
        counter = self._remembered.pop(name, None)
        counter = _bump(seed & _U32_MASK if counter is None else counter)
        registration = Entry(info, owner, _creation(counter, info.highest_version), counter)
        self._by_name[name] = registration
        self._by_owner[owner] = name
        return registration

    def unregister_owner(self, owner: Hashable) -> Entry | None:
        """Drop the registration held by ``owner`` (its connection closed); None if it held none."""
        name = self._by_owner.pop(owner, None)
        if name is None:
            return None
        registration = self._by_name.pop(name)
        self._remember(name, registration.counter)
        return registration

    def unregister_name(self, name: str) -> Entry | None:
        """Drop the registration of ``name`` (epmd's STOP_REQ); None if it is not registered."""
        registration = self._by_name.get(name)
        if registration is None:
            return None
        return self.unregister_owner(registration.owner)

    def lookup(self, name: str) -> NodeInfo | None:
        registration = self._by_name.get(name)
        return None if registration is None else registration.info

    def names(self) -> list[tuple[str, int]]:
        """``(name, port)`` of every live registration, oldest first."""
        return [(name, reg.info.port) for name, reg in self._by_name.items()]

    def registrations(self) -> list[Entry]:
        return list(self._by_name.values())

    def remembered(self) -> list[tuple[str, int]]:
        """``(name, counter)`` of unregistered names whose counters are kept, oldest first."""
        return list(self._remembered.items())

    def _remember(self, name: str, counter: int) -> None:
        self._remembered[name] = counter
        self._remembered.move_to_end(name)
        while len(self._remembered) > self._max_remembered:
            self._remembered.popitem(last=False)
