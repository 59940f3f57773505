"""The farm's failure policy, fed events with monotonic timestamps: no processes, no clock."""

from __future__ import annotations

import logging
import signal

import pytest

from philipjose.farm.policy import (
    DOWN,
    RETRYING,
    UP,
    FailurePolicy,
    backoff_delay,
    describe_exit,
)


def test_backoff_doubles_from_1_s_to_60_s_with_jitter() -> None:
    assert [backoff_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(1, 0.0) == pytest.approx(0.75)
    assert backoff_delay(1, 0.999999) == pytest.approx(1.25, abs=1e-5)
    assert backoff_delay(10_000, 0.5) == 60
    with pytest.raises(ValueError):
        backoff_delay(0)


def test_describe_exit() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert describe_exit(None, nodedown=True) == "its connection was lost"


def test_a_doomed_worker_is_replaced_at_once_at_info_and_charged_to_nobody() -> None:
    policy = FailurePolicy(["localhost"], intensity=0)
    for now in range(100):
        token = policy.launching("localhost")
        policy.worker_up("localhost")
        verdict = policy.lost(
            "localhost",
            float(now),
            token=token,
            came_up=True,
            how="killed by SIGKILL",
            doomed="race",
            tasks=1,
        )
        assert verdict.relaunch and verdict.at == now and verdict.level == logging.INFO
        assert "race" in verdict.message
    (status,) = policy.status()
    assert status.state is UP and status.failures == 0 and status.last_error is None


def test_deaths_running_tasks_are_charged_to_the_tasks_not_the_machine() -> None:
    policy = FailurePolicy(["localhost"], intensity=0, max_launch_failures=1)
    for now in range(50):  # poison tasks, one after another: the machine never goes down
        token = policy.launching("localhost")
        policy.worker_up("localhost")
        verdict = policy.lost(
            "localhost", now, token=token, came_up=True, how="exited with status 3", tasks=1
        )
        assert verdict.relaunch and verdict.at == now and verdict.level == logging.WARNING
        assert "exited with status 3" in verdict.message and "1 task" in verdict.message
    assert policy.state("localhost") is UP


def test_idle_crashes_past_the_intensity_take_the_machine_down() -> None:
    policy = FailurePolicy(["a", "b"], intensity=2, period=10)
    verdicts = []
    for now in (0.0, 1.0, 2.0):
        token = policy.launching("a")
        policy.worker_up("a")
        verdicts.append(
            policy.lost("a", now, token=token, came_up=True, how="exited with status 1", worker="w0")
        )
    assert [v.relaunch for v in verdicts] == [True, True, False]
    assert verdicts[2].machine_down and verdicts[2].level == logging.WARNING
    assert "machine a is down" in verdicts[2].message and "more than 2 times in 10 s" in verdicts[2].message
    assert verdicts[2].give_up is None  # b can still run workers
    assert policy.state("a") is DOWN and policy.launch_at("a") is None
    assert not policy.all_down()


def test_idle_crashes_spread_out_stay_within_the_intensity() -> None:
    policy = FailurePolicy(["a"], intensity=1, period=10)
    for now in (0.0, 11.0, 22.0, 33.0):
        token = policy.launching("a")
        policy.worker_up("a")
        assert policy.lost("a", now, token=token, came_up=True, how="exited with status 1").relaunch


def test_failed_launches_back_off_then_the_machine_is_down() -> None:
    policy = FailurePolicy(["bad"], max_launch_failures=4, random=lambda: 0.5)
    now, waits = 100.0, []
    while True:
        at = policy.launch_at("bad")
        if at is None:
            break
        now = max(now, at)
        verdict = policy.lost(
            "bad", now, token=policy.launching("bad"), came_up=False, how="Connection refused"
        )
        if verdict.relaunch:
            assert verdict.at is not None and verdict.level == logging.INFO
            assert policy.state("bad") is RETRYING
            waits.append(verdict.at - now)
    assert waits == [1.0, 2.0, 4.0]
    assert verdict.machine_down and verdict.level == logging.WARNING
    assert verdict.message == "machine bad is down: 4 launches failed in a row (last: Connection refused)"
    assert verdict.give_up == "no machine can run a worker; the farm gave up (bad: " + (
        "4 launches failed in a row (last: Connection refused))"
    )
    assert policy.all_down()


def test_slots_failing_together_count_once() -> None:
    policy = FailurePolicy(["m"], max_launch_failures=2, random=lambda: 0.5)
    tokens = [policy.launching("m") for _ in range(4)]  # four slots launch at once; all fail
    verdicts = [policy.lost("m", 5.0, token=t, came_up=False, how="refused") for t in tokens]
    assert all(v.relaunch and v.at == 6.0 for v in verdicts)
    (status,) = policy.status()
    assert status.failures == 1 and status.retry_at == 6.0 and status.state is RETRYING
    assert [v.level for v in verdicts] == [logging.INFO] + [logging.DEBUG] * 3


def test_a_worker_coming_up_resets_the_failures() -> None:
    policy = FailurePolicy(["m"], max_launch_failures=2, random=lambda: 0.5)
    early = policy.launching("m")
    policy.lost("m", 0.0, token=policy.launching("m"), came_up=False, how="timeout")
    assert policy.state("m") is RETRYING
    token = policy.launching("m")
    policy.worker_up("m")
    (status,) = policy.status()
    assert status.state is UP and status.failures == 0 and status.workers == 1 and status.retry_at is None
    # a launch that began before the worker came up fails late: not charged
    assert policy.lost("m", 1.0, token=early, came_up=False, how="timeout").relaunch
    assert policy.status()[0].failures == 0
    assert policy.lost("m", 2.0, token=policy.launching("m"), came_up=False, how="timeout").relaunch
    assert policy.lost("m", 9.0, token=token, came_up=True, how="killed by SIGKILL", tasks=2).relaunch
    assert policy.status()[0].workers == 0


def test_every_machine_down_gives_up_naming_each_and_its_error() -> None:
    policy = FailurePolicy(["a", "b"], max_launch_failures=1)
    first = policy.lost("a", 0.0, token=policy.launching("a"), came_up=False, how="ssh: Connection refused")
    assert first.machine_down and first.give_up is None
    last = policy.lost(
        "b", 0.0, token=policy.launching("b"), came_up=False, how="cannot run nope: No such file"
    )
    assert last.give_up is not None
    assert "a: 1 launches failed in a row (last: ssh: Connection refused)" in last.give_up
    assert "b: 1 launches failed in a row (last: cannot run nope: No such file)" in last.give_up


def test_a_down_machine_with_a_live_worker_gives_up_only_when_that_worker_is_lost() -> None:
    policy = FailurePolicy(["a"], intensity=0, period=60)
    survivor = policy.launching("a")
    policy.worker_up("a")
    token = policy.launching("a")
    policy.worker_up("a")
    down = policy.lost("a", 0.0, token=token, came_up=True, how="exited with status 1")
    assert down.machine_down and down.give_up is None and not policy.all_down()
    end = policy.lost("a", 1.0, token=survivor, came_up=True, how="killed by SIGKILL", tasks=1)
    assert not end.relaunch and end.give_up is not None


def test_nothing_is_restarted_once_shutting_down() -> None:
    policy = FailurePolicy(["a"])
    token = policy.launching("a")
    policy.worker_up("a")
    policy.shut_down()
    verdict = policy.lost("a", 0.0, token=token, came_up=True, how="exited with status 0")
    assert not verdict.relaunch and verdict.message == "" and verdict.give_up is None
    assert policy.launch_at("a") is None


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        FailurePolicy(["a"], max_launch_failures=0)
    with pytest.raises(ValueError):
        FailurePolicy(["a"], intensity=-1)
    with pytest.raises(ValueError):
        FailurePolicy([])


def test_all_down_of_some_hosts_is_a_kind_of_workers_given_up() -> None:
    policy = FailurePolicy(["py", "e1@h", "e2@h"], max_launch_failures=1)
    for node in ("e1@h", "e2@h"):
        policy.lost(node, 0.0, token=policy.launching(node), came_up=False, how="pang")
    assert policy.all_down(["e1@h", "e2@h"]) and not policy.all_down(["py"]) and not policy.all_down()
