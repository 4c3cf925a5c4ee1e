"""Monitors on their schedule: what is due under a clock the test moves, and a failure that
is logged, not raised."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from flywheel.monitoring.schedule import MonitorSchedule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_monitor_runs_when_its_period_has_passed() -> None:
    clock, ran = Clock(), []
    schedule = MonitorSchedule(
        schedules={"fast": dt.timedelta(minutes=1), "slow": dt.timedelta(minutes=10)},
        run=lambda names: ran.append(list(names)), clock=clock)
    assert schedule.tick() == ["fast", "slow"]  # everything at first
    clock.now += 59
    assert schedule.tick() == []
    clock.now += 1
    assert schedule.tick() == ["fast"]
    clock.now += 540
    assert schedule.tick() == ["fast", "slow"]
    assert ran == [["fast", "slow"], ["fast"], ["fast", "slow"]]


def test_a_failed_evaluation_is_logged_and_tried_at_the_next_period(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, calls = Clock(), []

    def broken(names: Sequence[str]) -> None:
        calls.append(names)
        raise RuntimeError("the table is gone")

    policies: list[int] = []
    schedule = MonitorSchedule(schedules={"m": dt.timedelta(minutes=5)}, run=broken,
                               run_policies=lambda: policies.append(1), clock=clock)
    assert schedule.tick() == ["m"]
    assert "the table is gone" in caplog.text
    clock.now += 300
    assert schedule.tick() == ["m"] and len(calls) == 2 and policies == [1, 1]


def test_start_and_stop_run_the_loop_in_a_thread() -> None:
    ran: list[Sequence[str]] = []
    schedule = MonitorSchedule(schedules={"m": dt.timedelta(hours=1)}, run=ran.append)
    schedule.start()
    schedule.stop()  # the first tick happens before the loop waits, so it has run
    assert ran == [["m"]]
