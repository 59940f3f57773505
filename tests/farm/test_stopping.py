"""The grace period of stop requests (pure)."""

from __future__ import annotations

import pytest

from philipjose.farm.stopping import STOP_GRACE, Stopping


def test_a_worker_that_reports_in_time_is_not_killed() -> None:
    s = Stopping(grace=1.0)
    assert s.next_deadline() is None
    assert s.ask("w1", 3, "cancel", 10.0) == 11.0
    assert s.ask("w1", 3, "timeout", 10.5) == 11.0  # asked again: the first request stands
    assert s.next_deadline() == 11.0
    assert s.due(10.99) == []
    s.reported("w1", 3)
    assert s.due(100.0) == [] and s.next_deadline() is None


def test_late_workers_are_due_once_with_their_first_reason() -> None:
    s = Stopping(grace=1.0)
    s.ask("w1", 3, "race", 0.0)
    s.ask("w1", 4, "cancel", 0.5)
    s.ask("w2", 5, "timeout", 0.7)
    s.ask("w3", 6, "cancel", 5.0)
    assert s.due(1.0) == [("w1", "race")]
    assert s.next_deadline() == 1.7  # w1's other request went with it
    assert s.due(2.0) == [("w2", "timeout")]
    s.forget("w3")
    assert s.due(10.0) == [] and s.next_deadline() is None


def test_grace() -> None:
    assert 0 < STOP_GRACE <= 1.0  # short: a cancelled task's slot is free within about a second
    with pytest.raises(ValueError):
        Stopping(grace=-1)
