"""`flywheel demo` end to end, small: through the real server (collector, model server,
feedback route), it must count bad rows by reason, train a model that beats its baseline,
find drift only after the injection, record a retraining decision, join predictions to
their feedback, and leave a project whose replay gives the same tables."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from flywheel.cli.main import app
from flywheel.project import Project
from flywheel.serving.events import PREDICTION_TABLE
from tests.cli.conftest import assert_one_line_error


@pytest.mark.slow
@pytest.mark.parametrize("backends", ["embedded", pytest.param(
    "postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis])])
def test_the_demo_runs_the_whole_loop(tmp_path: Path, backends: str,
                                      request: pytest.FixtureRequest,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if backends != "embedded":  # flywheel.yaml's URLs, overridden as a team would
        monkeypatch.setenv("FLYWHEEL_METADATA_URL", request.getfixturevalue("postgres_url"))
        monkeypatch.setenv("FLYWHEEL_ONLINE_URL", request.getfixturevalue("redis_url"))
    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--days", "6",
                                      "--seed", "7", "--json"],
                                env={"FLYWHEEL_NO_PROGRESS": "1"})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # Malformed events end in bad rows, with their reasons.
    assert set(summary["bad_rows"]) == {"schema_violation", "unknown_schema"}
    assert all(n > 0 for n in summary["bad_rows"].values())
    assert summary["accepted"] + sum(summary["bad_rows"].values()) == summary["events"]
    # The model beats its baseline on the held-out days.
    assert summary["auc"] > summary["baseline_auc"] + 0.03
    # Drift is found, and only from the injection on.
    assert summary["drift_windows"], summary
    assert min(summary["drift_windows"]) >= summary["drift_day"]
    assert "price" in summary["drifted_columns"]
    # The drift alert started a retraining run whose decision is recorded with figures.
    decision = summary["decision"]
    assert decision["outcome"] in ("promoted", "rejected", "challenger")
    assert decision["champion"] is not None and decision["challenger"] is not None
    assert decision["rows"] >= 200
    assert len(summary["runs"]) == 2 and summary["runs"][0] != summary["runs"][1]
    assert (folder / "monitoring.html").read_text().startswith("<!doctype html")
    with Project.open(folder) as project:
        runs = {r.run_id for r in project.alerts.decisions(limit=10)}
        assert runs and all(project.runs.get(r) is not None for r in runs)
        # Every answered prediction is in the log once; each with feedback is joined to it.
        logged = project.log.read(str(PREDICTION_TABLE), columns=["event_id", "shadow"])
        answered = logged.filter(pc.invert(logged.column("shadow")))
        assert answered.num_rows == summary["predictions"]
        assert len(set(logged.column("event_id").to_pylist())) == logged.num_rows
        joined = project.tables.read("predictions_with_feedback")
        with_outcome = joined.filter(pc.is_valid(joined.column("outcome")))
        feedback = project.tables.read("purchase_feedback")
        champion = set(answered.column("event_id").to_pylist())
        assert set(feedback.column("prediction_id").to_pylist()) <= champion
        assert {r for r in with_outcome.column("prediction_id").to_pylist()
                if r in champion} == set(feedback.column("prediction_id").to_pylist())
        # Replay gives the same tables.
        names = ["sessions", "user_activity", "product_popularity", "training_labels",
                 "purchase_feedback", "predictions_with_feedback", "monitor_purchase_drift"]
        before = {name: project.tables.content_hash(name) for name in names}
        project.replay()
        assert {name: project.tables.content_hash(name) for name in names} == before


def test_a_folder_in_use_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me\n")
    line = assert_one_line_error(CliRunner().invoke(app, ["demo", "--dir", str(tmp_path)]))
    assert "is not empty" in line and (tmp_path / "mine.txt").read_text() == "keep me\n"


def test_too_few_days_is_one_line(tmp_path: Path) -> None:
    line = assert_one_line_error(CliRunner().invoke(
        app, ["demo", "--dir", str(tmp_path / "d"), "--days", "2"]))
    assert "4 to 60 days" in line and not (tmp_path / "d").exists()
