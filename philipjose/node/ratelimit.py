"""A small rate limiter for log lines (pure: the caller passes the time).

Theory of operation: each key (for example ``(peer host, message template)``) may pass ``burst``
times in a window of ``period`` seconds that starts at its first pass; the rest of the window's
events are counted, not passed, and the next event that passes reports how many were held back, so
a log line can say "(N more like this suppressed)". At most ``max_keys`` keys are remembered (the
least recently seen is forgotten first, with its count), so a flood of distinct keys costs bounded
memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``allow(key, now)`` passes at most ``burst`` events per key per ``period`` seconds.

    Defaults: 5 per 60 s, 1024 keys. ``now`` is any monotonic time in seconds.
    """

    __slots__ = ("_keys", "burst", "max_keys", "period")

    def __init__(self, *, burst: int = 5, period: float = 60.0, max_keys: int = 1024) -> None:
        if burst < 1 or period <= 0 or max_keys < 1:
            raise ValueError("burst and max_keys must be at least 1 and period positive")
        self.burst = burst
        self.period = period
        self.max_keys = max_keys
        # key -> [window start, passed in this window, held back since the last pass]
        self._keys: OrderedDict[Hashable, list[float]] = OrderedDict()

    def allow(self, key: Hashable, now: float) -> tuple[bool, int]:
        """``(True, held_back)`` if this event may pass (``held_back``: events of this key not passed
        since the previous one that did), else ``(False, 0)``."""
        state = self._keys.get(key)
        if state is None:
            state = [now, 0, 0]
            self._keys[key] = state
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
            if now - state[0] >= self.period:
                state[0], state[1] = now, 0
        if state[1] < self.burst:
            state[1] += 1
            held = int(state[2])
            state[2] = 0
            return True, held
        state[2] += 1
        return False, 0

    def __len__(self) -> int:
        return len(self._keys)
