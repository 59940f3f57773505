"""Restart intensity as a pure function of whole-second monotonic timestamps (OTP's add_restart)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from philipjose.supervisors.intensity import add_restart, check_restart, whole_seconds


def test_add_restart_keeps_times_inside_the_period_oldest_first() -> None:
    assert add_restart((), 10, 5) == (10,)
    assert add_restart((4, 5, 7, 9), 10, 5) == (5, 7, 9, 10)  # 5 >= 10 - 5 is kept, 4 dropped
    assert add_restart((1, 2), 10, 5) == (10,)
    assert add_restart((10, 10), 10, 5) == (10, 10, 10)


def test_default_intensity_one_in_five_seconds() -> None:
    first = check_restart((), 100, 1, 5)
    assert not first.exceeded
    second = check_restart(first.restarts, 104, 1, 5)
    assert second.exceeded
    later = check_restart(first.restarts, 106, 1, 5)
    assert not later.exceeded
    assert later.restarts == (106,)


def test_boundary_is_inclusive_like_otp() -> None:
    assert check_restart((100,), 105, 1, 5).exceeded
    assert not check_restart((100,), 106, 1, 5).exceeded


def test_zero_intensity_gives_up_at_the_first_restart() -> None:
    assert check_restart((), 0, 0, 5).exceeded


def test_whole_seconds_floors() -> None:
    assert whole_seconds(3.99) == 3
    assert whole_seconds(-0.5) == -1


@given(
    st.lists(st.integers(min_value=0, max_value=1000), max_size=30), st.integers(1, 20), st.integers(0, 10)
)
def test_matches_a_count_of_recent_restarts(gaps: list[int], period: int, intensity: int) -> None:
    history: tuple[int, ...] = ()
    times: list[int] = []
    now = 0
    for gap in gaps:
        now += gap
        times.append(now)
        check = check_restart(history, now, intensity, period)
        recent = [t for t in times if t >= now - period]
        # A history only ever holds times inside the period, so it may lose old times early only
        # once the supervisor would have given up already.
        assert len(check.restarts) <= len(recent)
        if check.exceeded:
            break
        assert list(check.restarts) == recent
        history = check.restarts
