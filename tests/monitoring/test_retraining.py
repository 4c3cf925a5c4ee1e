"""Retraining end to end on a tiny project: a real pipeline trains a challenger before the
held-out week, both models are scored on that week, and the challenger is promoted, kept
out, or offered as challenger; the alert, the run, the version and the alias move link up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from flywheel.monitoring.alerts import Alerts
from flywheel.monitoring.retraining import ACTOR, Retrainer
from flywheel.project import Project
from tests.monitoring.alerts_support import Clock, result
from tests.monitoring.retraining_support import (
    DAYS,
    START,
    USERS,
    ingest_visits,
    policy,
    write_retraining_project,
)

COLUMNS = ["pages", "seconds"]
HOLDOUT_START = START + dt.timedelta(days=DAYS - 1 - 7, hours=USERS - 1, seconds=1)
"""The newest label's time (day 39, the last user's visit, plus a second) less 7 days."""
HOLDOUT_ROWS = 7 * USERS + 1


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_retraining_project(project_dir)
    with Project.open(project_dir) as opened:
        opened.apply()
        ingest_visits(opened)
        yield opened


def champion(project: Project, model: object) -> int:
    version = project.registry.register("purchase", model=model, feature_service="score",
                                        inputs=COLUMNS, alias="champion")
    return version.version


def visits(project: Project) -> pd.DataFrame:
    """Every visit with its label, to fit champions on."""
    frame = project.tables.read("user_visits").to_pandas()
    return frame.assign(label=frame["pages"] > 4)


def retrainer(project: Project) -> Retrainer:
    return Retrainer(project=project, store=project.metadata, runs=project.metadata)


def test_an_alert_retrains_and_a_better_challenger_is_promoted(project: Project) -> None:
    frame = visits(project)
    dummy = DummyClassifier(strategy="prior").fit(frame[COLUMNS], frame["label"])
    first = champion(project, dummy)
    spec = policy()
    alerts = Alerts(store=project.metadata, actions={}, retraining={spec.name: spec},
                    retrain=retrainer(project), clock=Clock())
    report = alerts.dispatch("purchase_drift", [spec.name], [result(0)])
    (alert,) = report.delivered
    (decision,) = project.metadata.decisions()

    assert decision.outcome == "promoted" and decision.alert_id == alert.id
    # The 7 days before the newest label, both ends in: days 33-39, and day 32's last user.
    assert decision.rows == HOLDOUT_ROWS
    assert decision.champion_value == pytest.approx(0.5)  # a constant: no ranking at all
    assert decision.challenger_value is not None and decision.challenger_value > 0.9
    assert alert.detail == decision.reason
    new = decision.challenger_version
    assert new == first + 1 and decision.champion_version == first
    assert project.registry.get("purchase@champion").version == new
    # Lineage: the alias move's reason -> the run (tagged with the alert) -> the version.
    move = project.registry.aliases_history("purchase", "champion")[-1]
    assert (move.from_version, move.to_version, move.actor) == (first, new, ACTOR)
    assert move.reason == decision.reason
    assert move.reason.startswith(
        f"retraining retrain_purchase after alert {alert.id}: auc "
        f"{decision.challenger_value:.4g} vs 0.5 on {HOLDOUT_ROWS} rows (margin 0.01): "
        f"promoted (run {str(decision.run_id)[:8]}, version {new})")
    run = project.runs.get(str(decision.run_id))
    assert run.tags["flywheel.alert_id"] == str(alert.id)
    assert run.tags["flywheel.retraining"] == "retrain_purchase"
    assert run.params["until"] == HOLDOUT_START.isoformat()
    # The challenger trained on the rows before the held-out window only.
    assert run.metrics["rows"] == DAYS * USERS - HOLDOUT_ROWS
    assert project.registry.get(f"purchase/{new}").run_id == run.id


def test_a_challenger_that_does_not_win_is_not_promoted(project: Project) -> None:
    frame = visits(project)
    perfect = LogisticRegression(C=100.0).fit(frame[COLUMNS], frame["label"])
    first = champion(project, perfect)
    decision = retrainer(project).retrain(policy())
    assert decision.outcome == "rejected"
    assert decision.champion_value == pytest.approx(1.0)
    assert decision.challenger_value is not None and decision.challenger_value <= 1.0
    assert project.registry.get("purchase@champion").version == first
    assert decision.challenger_version == first + 1
    assert project.registry.get(f"purchase/{first + 1}").aliases == []
    assert "not promoted, the champion stays" in decision.reason
    assert decision.reason.startswith("retraining retrain_purchase by hand: auc ")
    assert len(project.registry.aliases_history("purchase")) == 1  # only the first alias


def test_too_few_rows_registers_a_challenger(project: Project) -> None:
    frame = visits(project)
    champion(project, DummyClassifier().fit(frame[COLUMNS], frame["label"]))
    decision = retrainer(project).retrain(policy(min_rows=500))
    assert decision.outcome == "challenger" and decision.rows == HOLDOUT_ROWS
    assert project.registry.get("purchase@challenger").version == decision.challenger_version
    assert project.registry.get("purchase@champion").version == 1
    move = project.registry.aliases_history("purchase", "challenger")[-1]
    assert "fewer rows than min_rows 500" in str(move.reason)


def test_approval_offers_a_winner_and_no_champion_promotes(project: Project) -> None:
    offered = retrainer(project).retrain(policy(promote="approval"))
    assert offered.outcome == "challenger" and offered.champion_version is None
    assert "(no champion yet)" in offered.reason
    assert "registered as challenger (promote: approval)" in offered.reason
    promoted = retrainer(project).retrain(policy())
    assert promoted.outcome == "promoted"
    assert project.registry.get("purchase@champion").version == promoted.challenger_version


def test_a_pipeline_without_until_is_a_failed_decision(project: Project) -> None:
    steps = project.root / "pipelines" / "train.py"
    steps.write_text(steps.read_text().replace(", until: str | None = None", "")
                     .replace("    if until is not None:\n        rows = rows[rows["
                              "\"event_timestamp\"] < pd.Timestamp(until)]\n", ""))
    decision = retrainer(project).retrain(policy())
    assert decision.outcome == "failed" and decision.run_id is None
    assert "takes no `until` param" in decision.reason
    assert project.registry.models() == {}
    assert project.metadata.decisions() == [decision]


def test_the_cli_walks_from_the_alias_move_to_the_alert(project: Project) -> None:
    from typer.testing import CliRunner

    from flywheel.cli.main import app
    from flywheel.monitoring.retraining import alert_sink

    spec = policy()
    sink = alert_sink(project, actions={}, retraining={spec.name: spec})
    (alert,) = sink.dispatch("purchase_drift", [spec.name], [result(0)]).delivered
    (decision,) = project.alerts.decisions()
    runner = CliRunner()
    where = ["--project", str(project.root)]
    shown = runner.invoke(app, [*where, "models", "show", "purchase"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert f"after alert {alert.id}" in shown.stdout and ACTOR in shown.stdout
    assert str(decision.run_id)[:8] in shown.stdout
    run = runner.invoke(app, [*where, "runs", "show", str(decision.run_id)[:8]],
                        env={"COLUMNS": "300"})
    assert any("flywheel.alert_id" in line and line.split()[-1] == str(alert.id)
               for line in run.stdout.splitlines())
    listed = runner.invoke(app, [*where, "monitor", "alerts"], env={"COLUMNS": "300"})
    assert "retrain_purchase" in listed.stdout and "delivered" in listed.stdout
