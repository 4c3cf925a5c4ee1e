"""The loop end to end: a served model, traffic and delayed feedback under a moving clock,
drift injected; the drift monitor turns red only after it, one webhook, one retraining with
its decision, and a replay that rebuilds every monitor's table identically."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.monitoring.errors import MonitorSpecError
from flywheel.project import Project
from tests.monitoring.alerts_support import receiver
from tests.monitoring.loop_support import HOUR, T0, Traffic, served_project, traffic

DRIFT_FROM = 4
HOURS = 7
MONITORS = """
monitors:
  purchase_drift:
    kind: drift
    target: {{deployment: purchase}}
    window: 1h
    min_rows: 20
    actions: [ops, retrain_purchase]
  purchase_live:
    kind: performance
    target: {{deployment: purchase}}
    window: 1h
    label_delay: 30m
    metrics: {{auc: {{min: 0.6}}, log_loss: {{max: 0.7}}}}
    estimate: true
  visits_quality:
    kind: quality
    target: {{table: user_visits}}
    window: 1d
    rules:
      - {{column: user_id, not_null: true}}
      - {{column: pages, range: [0, 9]}}
      - {{freshness: 2d}}
      - {{volume: {{min_ratio: 0.5, max_ratio: 2.0, baseline: 3}}}}
actions:
  ops: {{webhook: "{url}", cooldown: 1d}}
retraining:
  retrain_purchase:
    pipeline: pipelines/train.yaml
    model: purchase
    evaluation: {{table: user_daily, label: bought, timestamp: day_end}}
    holdout: 7d
    metric: auc
    min_rows: 10
"""


@pytest.fixture
def served(project_dir: Path) -> Iterator[Project]:
    project = served_project(project_dir)
    yield project
    project.close()


def run_hours(flow: Traffic, project: Project) -> None:
    for _ in range(HOURS):
        flow.hour()
        project.run_monitors()


def test_drift_turns_red_after_the_injection_alerts_once_and_retrains(
        served: Project) -> None:
    with receiver() as hook:
        (served.root / "monitors.yaml").write_text(MONITORS.format(url=hook.url))
        assert [m[0] for m in served.apply().monitors] == ["purchase_drift", "purchase_live",
                                                           "visits_quality"]
        flow = traffic(served, drift_from=DRIFT_FROM)
        try:
            run_hours(flow, served)
        finally:
            flow.deployments.close()
        drift = served.monitor_runner(alerts=False).results("purchase_drift")
        dataset = {r.window_start: r.status for r in drift if r.subject == "dataset"}
        # Every hour is complete: the last hour's feedback (10 minutes after its
        # predictions) moves the horizon past its end.
        assert sorted(dataset) == [T0 + h * HOUR for h in range(HOURS)]
        assert all(status == ("red" if at >= T0 + DRIFT_FROM * HOUR else "ok")
                   for at, status in dataset.items())
        assert all(r.model_version == 1 for r in drift)
        assert len(hook.bodies) == 1, hook.bodies
        body = hook.bodies[0]
        assert body["monitor"] == "purchase_drift"
        assert body["window"]["start"] == (T0 + DRIFT_FROM * HOUR).isoformat()
    decisions = served.alerts.decisions()
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.policy == "retrain_purchase" and decision.run_id is not None
    assert decision.outcome in ("promoted", "challenger", "rejected")
    assert "auc" in decision.reason and decision.rows >= 10


def test_performance_is_realised_after_the_label_delay_and_estimated_before(
        served: Project) -> None:
    (served.root / "monitors.yaml").write_text(MONITORS.format(url="http://127.0.0.1:9/x"))
    flow = traffic(served, drift_from=None)
    try:
        for _ in range(3):
            flow.hour()
    finally:
        flow.deployments.close()
    served.run_monitors(["purchase_live"], alerts=False)
    rows = served.monitor_runner(alerts=False).results("purchase_live")
    realised = {r.window_start for r in rows if not r.estimated}
    estimated = {r.window_start for r in rows if r.estimated}
    # The horizon is 03:09 (the last feedback, 10 minutes after 02:59): three windows are
    # complete, so estimated; only two are also past their 30 minutes of label delay.
    assert estimated == {T0, T0 + HOUR, T0 + 2 * HOUR}
    assert realised == {T0, T0 + HOUR}
    auc = [r for r in rows if r.subject == "auc" and not r.estimated]
    assert all(r.rows == 60 and r.value is not None and r.value > 0.9 for r in auc)


def test_replay_rebuilds_every_monitor_table_identically(served: Project) -> None:
    (served.root / "monitors.yaml").write_text(MONITORS.format(url="http://127.0.0.1:9/x"))
    flow = traffic(served, drift_from=2)
    try:
        for _ in range(4):
            flow.hour()
            served.run_monitors(alerts=False)  # kept window by window
    finally:
        flow.deployments.close()
    tables = [spec.table for spec in served.monitors.monitors.values()]
    before = {t: served.tables.content_hash(t) for t in tables}
    versions = {t: served.tables.version(t) for t in tables}
    served.replay()
    assert {t: served.tables.version(t) for t in tables} != versions  # rebuilt
    assert {t: served.tables.content_hash(t) for t in tables} == before


def test_a_monitor_naming_what_the_project_lacks_fails_apply(served: Project) -> None:
    (served.root / "monitors.yaml").write_text(
        "monitors:\n  m:\n    kind: quality\n    target: {table: nowhere}\n"
        "    rules: [{freshness: 1h}]\n")
    with pytest.raises(MonitorSpecError, match="no table 'nowhere'"):
        served.apply()
