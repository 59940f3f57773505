"""The log-line rate limiter (pure: time is passed in)."""

from __future__ import annotations

import pytest

from philipjose.node.ratelimit import RateLimiter


def test_burst_then_held_back_then_reported() -> None:
    limiter = RateLimiter(burst=2, period=10.0)
    assert limiter.allow("k", 0.0) == (True, 0)
    assert limiter.allow("k", 1.0) == (True, 0)
    assert limiter.allow("k", 2.0) == (False, 0)
    assert limiter.allow("k", 9.9) == (False, 0)
    # A new window: the first event passes and reports the two held back.
    assert limiter.allow("k", 10.0) == (True, 2)
    assert limiter.allow("k", 11.0) == (True, 0)


def test_keys_are_independent() -> None:
    limiter = RateLimiter(burst=1, period=1.0)
    assert limiter.allow(("10.0.0.1", "wrong cookie"), 0.0) == (True, 0)
    assert limiter.allow(("10.0.0.1", "wrong cookie"), 0.1) == (False, 0)
    assert limiter.allow(("10.0.0.2", "wrong cookie"), 0.1) == (True, 0)
    assert limiter.allow(("10.0.0.1", "timeout"), 0.1) == (True, 0)


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(burst=1, period=60.0, max_keys=3)
    for key in range(100):
        assert limiter.allow(key, 0.0) == (True, 0)
    assert len(limiter) == 3
    assert limiter.allow(99, 1.0) == (False, 0)  # a recent key is still remembered
    assert limiter.allow(0, 1.0) == (True, 0)  # an old one was forgotten, so it passes again


def test_one_line_per_second() -> None:
    limiter = RateLimiter(burst=1, period=1.0)
    passed = [t / 100 for t in range(500) if limiter.allow("emfile", t / 100)[0]]
    assert passed == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RateLimiter(burst=0)
    with pytest.raises(ValueError):
        RateLimiter(period=0)
