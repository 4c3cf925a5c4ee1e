"""Alerts: fired once per monitor, action, window and subject; rate-limited by cooldown with
the suppressed counted; webhooks (to a real local server), commands and log lines; failures
recorded and retried, never raised."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel._core.metadata.alerts import AlertRecord
from flywheel.backends.metadata.sql import SqlMetadataStore
from flywheel.monitoring.alerts import Alerts
from flywheel.monitoring.delivery import Delivery
from flywheel.monitoring.policy import ActionSpec, EvaluationSpec, RetrainingSpec
from tests.monitoring.alerts_support import HOUR, Clock, Receiver, receiver, result


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(f"sqlite:///{tmp_path}/metadata.db")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def webhook(url: str, *, cooldown: dt.timedelta = HOUR, timeout: float = 5.0) -> ActionSpec:
    return ActionSpec(name="ops", kind="webhook", target=url, cooldown=cooldown,
                      timeout=timeout)


def test_a_webhook_fires_once_across_dispatches_and_restarts(
        store: SqlMetadataStore, hook: Receiver, tmp_path: Path) -> None:
    clock = Clock()
    alerts = Alerts(store=store, actions={"ops": webhook(hook.url)}, clock=clock)
    results = [result(0), result(0, subject="channel", status="ok")]
    first = alerts.dispatch("purchase_drift", ["ops"], results)
    assert [a.subject for a in first.delivered] == ["price"]
    again = alerts.dispatch("purchase_drift", ["ops"], results)
    assert again.delivered == [] and again.duplicates == 1
    clock.advance(3 * HOUR)  # past the cooldown: still the same alert, still not again
    restarted = SqlMetadataStore(store.url)
    try:
        later = Alerts(store=restarted, actions={"ops": webhook(hook.url)}, clock=clock)
        assert later.dispatch("purchase_drift", ["ops"], results).duplicates == 1
    finally:
        restarted.close()

    (body,) = hook.bodies
    sent = first.delivered[0]
    assert body == {
        "alert_id": sent.id, "monitor": "purchase_drift", "kind": "drift", "action": "ops",
        "window": {"start": "2026-02-28T00:00:00+00:00", "end": "2026-02-28T01:00:00+00:00"},
        "subject": "price", "statistic": "psi", "value": 0.31, "threshold": 0.2,
        "status": "red", "fired_at": "2026-03-01T00:00:00+00:00", "attempt": 1,
        "suppressed": 0}
    (stored,) = store.alerts()
    assert (stored.outcome, stored.detail, stored.attempts) == ("delivered", "HTTP 200", 1)


def test_the_cooldown_suppresses_and_counts(store: SqlMetadataStore, hook: Receiver) -> None:
    clock = Clock()
    alerts = Alerts(store=store, actions={"ops": webhook(hook.url)}, clock=clock)
    # Four red windows at once: the first fires, three wait out the hour.
    report = alerts.dispatch("purchase_drift", ["ops"], [result(w) for w in range(4)])
    assert len(report.delivered) == 1 and len(report.suppressed) == 3
    assert report.delivered[0].window_start == result(0).window_start
    clock.advance(dt.timedelta(minutes=59))
    assert len(alerts.dispatch("purchase_drift", ["ops"], [result(4)]).suppressed) == 1
    clock.advance(dt.timedelta(minutes=1, seconds=1))
    fired = alerts.dispatch("purchase_drift", ["ops"], [result(5)])
    assert len(fired.delivered) == 1
    assert [b["suppressed"] for b in hook.bodies] == [0, 4]
    # The cooldown is per monitor and action: another monitor fires at once.
    other = alerts.dispatch("sessions_quality", ["ops"], [result(0, monitor="sessions")])
    assert len(other.delivered) == 1
    assert [a.outcome for a in store.alerts(monitor="purchase_drift")].count("suppressed") == 4


def test_one_alert_per_subject_and_the_dataset_row_first(store: SqlMetadataStore,
                                                         hook: Receiver) -> None:
    alerts = Alerts(store=store, actions={"ops": webhook(hook.url)}, clock=Clock())
    report = alerts.dispatch("purchase_drift", ["ops"], [
        result(0, subject="price"), result(0, subject="dataset"), result(0, subject="age")])
    assert [a.subject for a in report.delivered] == ["dataset"]
    assert [a.subject for a in report.suppressed] == ["age", "price"]
    no_cooldown = Alerts(store=store, actions={
        "page": ActionSpec(name="page", kind="webhook", target=hook.url,
                           cooldown=dt.timedelta(0))}, clock=Clock())
    both = no_cooldown.dispatch("purchase_drift", ["page"], [
        result(1, subject="price"), result(1, subject="age")])
    assert len(both.delivered) == 2 and both.suppressed == []


def test_a_failing_webhook_is_recorded_and_retried(store: SqlMetadataStore,
                                                   hook: Receiver) -> None:
    hook.statuses = [503, 500]
    alerts = Alerts(store=store, actions={"ops": webhook(hook.url)}, clock=Clock(),
                    max_attempts=3)
    first = alerts.dispatch("purchase_drift", ["ops"], [result(0)])
    assert first.delivered == [] and first.failed[0].detail == "HTTP 503: ok"
    assert alerts.dispatch("purchase_drift", ["ops"], []).failed[0].detail == "HTTP 500: ok"
    third = alerts.dispatch("purchase_drift", ["ops"], [])
    assert third.retried == 1 and len(third.delivered) == 1
    assert alerts.dispatch("purchase_drift", ["ops"], []).retried == 0
    assert [b["attempt"] for b in hook.bodies] == [1, 2, 3]
    assert len({b["alert_id"] for b in hook.bodies}) == 1
    (stored,) = store.alerts()
    assert (stored.outcome, stored.attempts) == ("delivered", 3)


def test_retries_are_bounded_and_a_refused_connection_is_a_reason(
        store: SqlMetadataStore) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    alerts = Alerts(store=store, actions={"ops": webhook(f"http://127.0.0.1:{port}/")},
                    clock=Clock(), max_attempts=2)
    report = alerts.dispatch("purchase_drift", ["ops"], [result(0)])
    assert report.failed[0].detail.startswith("cannot connect")
    assert alerts.dispatch("purchase_drift", ["ops"], []).retried == 1
    assert alerts.dispatch("purchase_drift", ["ops"], []).retried == 0
    (stored,) = store.alerts()
    assert (stored.outcome, stored.attempts) == ("failed", 2)


def test_a_slow_webhook_times_out(store: SqlMetadataStore, hook: Receiver) -> None:
    hook.delay = 1.0
    alerts = Alerts(store=store, actions={"ops": webhook(hook.url, timeout=0.1)},
                    clock=Clock())
    report = alerts.dispatch("purchase_drift", ["ops"], [result(0)])
    assert report.failed[0].detail == "timed out after 0.1 s"


def test_a_command_reads_the_alert_on_stdin(store: SqlMetadataStore, tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    copy = ("import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())")
    actions = {"page": ActionSpec(name="page", kind="command",
                                  target=(sys.executable, "-c", copy, str(out))),
               "broken": ActionSpec(name="broken", kind="command", target=(
                   sys.executable, "-c", "import sys; sys.exit('no pager here')"))}
    alerts = Alerts(store=store, actions=actions, clock=Clock())
    report = alerts.dispatch("purchase_drift", ["page", "broken"], [result(0)])
    assert [a.action for a in report.delivered] == ["page"]
    sent = json.loads(out.read_text())
    assert (sent["monitor"], sent["subject"], sent["value"]) == ("purchase_drift", "price",
                                                                 0.31)
    assert sent["alert_id"] == report.delivered[0].id
    assert report.failed[0].detail.endswith("exit 1: no pager here")


def test_a_log_action_and_an_unknown_action(store: SqlMetadataStore,
                                            caplog: pytest.LogCaptureFixture) -> None:
    alerts = Alerts(store=store, actions={
        "note": ActionSpec(name="note", kind="log", target="warning")}, clock=Clock())
    with caplog.at_level(logging.INFO, logger="flywheel.monitoring.alerts"):
        report = alerts.dispatch("purchase_drift", ["note", "nowhere"], [result(0)])
    assert report.unknown_actions == ["nowhere"] and len(report.delivered) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert any("monitor purchase_drift, price psi = 0.31 (threshold 0.2)" in m for m in lines)
    assert any("nowhere" in m and "skipped" in m for m in lines)


def policy(name: str = "retrain_purchase",
           schedule: dt.timedelta | None = dt.timedelta(days=7)) -> RetrainingSpec:
    return RetrainingSpec(name=name, pipeline="pipelines/train.yaml", model="purchase",
                          deployment=None,
                          evaluation=EvaluationSpec(table="labels", label="label"),
                          holdout=dt.timedelta(days=7), schedule=schedule)


def test_a_retraining_action_starts_once_per_cooldown(store: SqlMetadataStore) -> None:
    calls: list[AlertRecord] = []
    answers = [Delivery(ok=False, detail="step model failed"), Delivery(ok=True,
                                                                        detail="promoted")]

    def retrain(spec: RetrainingSpec, alert: AlertRecord) -> Delivery:
        assert spec.name == "retrain_purchase"
        calls.append(alert)
        return answers.pop(0)

    clock = Clock()
    alerts = Alerts(store=store, actions={}, retraining={"retrain_purchase": policy()},
                    retrain=retrain, clock=clock)
    report = alerts.dispatch("purchase_drift", ["retrain_purchase"],
                             [result(w) for w in range(3)])
    assert len(report.failed) == 1 and len(report.suppressed) == 2
    assert alerts.dispatch("purchase_drift", ["retrain_purchase"], []).retried == 1
    assert [c.attempts for c in calls] == [1, 2]
    assert calls[0].id == calls[1].id
    assert store.alerts(outcome="delivered")[0].detail == "promoted"


def test_a_schedule_starts_once_per_period(store: SqlMetadataStore) -> None:
    calls: list[AlertRecord] = []
    answers = [True, False, True]

    def retrain(spec: RetrainingSpec, alert: AlertRecord) -> Delivery:
        calls.append(alert)
        return Delivery(ok=answers.pop(0), detail="kept")

    clock = Clock()
    alerts = Alerts(store=store, actions={}, retraining={
        "retrain_purchase": policy(), "manual": policy(name="manual", schedule=None)},
        retrain=retrain, clock=clock)
    assert len(alerts.run_schedules().delivered) == 1
    clock.advance(dt.timedelta(days=1))
    assert alerts.run_schedules().duplicates == 1
    clock.advance(dt.timedelta(days=7))
    assert len(alerts.run_schedules().failed) == 1
    retried = alerts.run_schedules()  # the failed one again, not a new period's
    assert retried.retried == 1 and len(retried.delivered) == 1 and retried.duplicates == 1
    assert [(c.monitor, c.action) for c in calls] == [("schedule", "retrain_purchase")] * 3
    assert calls[1].window_start - calls[0].window_start == dt.timedelta(days=7)
    assert calls[2].id == calls[1].id and calls[2].attempts == 2
