"""Registering from runs, on SQLite and PostgreSQL metadata: a pipeline run's model, its
feature service and metrics by default, and lineage that holds the entity table too."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flywheel._core.errors import FlywheelError, InputError
from flywheel.project import Project
from flywheel.registry import ModelVersion
from flywheel.tracking import RunNotFoundError
from tests.registry.support import QUERY, SPEC, ingest, write_spec, write_training_project


class Threshold:
    def predict(self, data: Any) -> list[int]:
        return [int(p > 9) for p in data["pages"]]


@pytest.fixture(params=["sqlite", "postgresql"])
def project(request: pytest.FixtureRequest, project_dir: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    if request.param == "postgresql":
        monkeypatch.setenv("FLYWHEEL_METADATA_URL", request.getfixturevalue("postgres_url"))
    write_training_project(project_dir)
    with Project.open(project_dir) as opened:
        opened.apply()
        ingest(opened, range(8))
        yield opened


def versions_of(project: Project, table: str) -> int:
    return project.metadata.table_versions(table)[-1].version


def test_a_pipeline_model_registers_with_what_the_run_recorded(project: Project) -> None:
    result = project.run("pipelines/train.yaml")
    run = project.runs.get(result.id)
    assert {"steps_ran", "accuracy", "rows"} <= set(run.metrics)
    version = project.registry.register("purchase", run_id=result.id[:8])

    assert version.run_id == result.id and version.flavor == "sklearn"
    assert version.artifact_sha256 == run.artifacts["model"].sha256
    assert version.lineage["run"] == {"id": result.id, "name": "train", "artifact": "model"}
    assert version.signature["feature_service"] == "score"
    assert version.signature["trained_on"] == "score"
    assert version.signature["features"] == ["pages", "seconds"]
    # Step outputs that are numbers are metrics; the runner's step counts are not.
    assert version.metrics == {"accuracy": result.output("accuracy"), "rows": 8.0}
    daily, visits = versions_of(project, "user_daily"), versions_of(project, "user_visits")
    assert version.lineage["training_set"] == {"user_daily": daily, "user_visits": visits}
    entities = version.lineage["entities"]
    assert (entities["kind"], entities["spec"], entities["tables"]) == (
        "query", QUERY, {"user_daily": daily})
    assert "2026-01-01" in entities["text"]  # the query as run, with its window
    data = version.lineage["training_data"]
    assert (data["start"], data["end"], data["rows"]) == ("2026-01-01", "2026-03-01", 8)
    # The entity table is traced down to the log like the feature tables.
    tree = version.lineage["tables"]["user_daily"]
    assert tree == dataclasses.asdict(project.lineage("user_daily", daily))
    assert tree["inputs"][0]["name"] == "user_visits"
    (log, (first, last)), = version.lineage["log_offsets"].items()
    assert "visit" in log and first == 0 and last == tree["inputs"][0]["inputs"][0]["upto"]
    assert project.registry.get("purchase/1").lineage == version.lineage


def test_an_entity_table_named_directly_is_in_the_lineage(project: Project) -> None:
    steps = project.root / "pipelines"
    (steps / "table.py").write_text((steps / "train.py").read_text().replace(
        'features["label"]', 'features["bought"]'))
    spec = write_spec(project.root, "table.yaml", SPEC.replace("train.py", "table.py").replace(
        f"entities: {QUERY}", "entities: user_daily\n  timestamp_column: day_end").replace(
        "  start: 2026-01-01\n  end: 2026-03-01\n", ""))
    version = project.registry.register("daily", run_id=project.run(spec).id)
    daily = versions_of(project, "user_daily")
    entities = version.lineage["entities"]
    assert (entities["kind"], entities["text"], entities["tables"]) == (
        "table", "user_daily", {"user_daily": daily})
    assert "user_daily" in version.lineage["tables"]
    assert version.lineage["training_data"]["start"] is None


def test_a_frame_has_no_table_lineage_and_says_so(project: Project) -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u2"],
                          "event_timestamp": [dt.datetime(2026, 1, 9, tzinfo=dt.UTC)] * 2})
    training = project.features.get_historical_features(frame, feature_service="score")
    with project.start_run("fit") as run:
        run.log_training_set(training)
        run.log_artifact("model", Threshold())
    version = project.registry.register("framed", run_id=run.id)
    entities = version.lineage["entities"]
    assert (entities["kind"], entities["tables"]) == ("frame", {})
    assert "no table lineage" in entities["note"]
    assert version.lineage["training_set"] == {"user_visits": versions_of(project,
                                                                           "user_visits")}
    assert version.signature["feature_service"] == "score"


def test_a_run_that_logged_only_table_versions_has_no_entity_record(project: Project) -> None:
    training = project.features.get_historical_features("user_daily", feature_service="score",
                                                        timestamp_column="day_end")
    assert training.table_versions.keys() == {"user_daily", "user_visits"}
    with project.start_run("fit") as run:
        run.log_inputs(training.table_versions)
        run.log_metrics({"auc": 0.75})
        run.log_artifact("model", Threshold())
    version = project.registry.register("plain", run_id=run.id)
    assert version.lineage["entities"] is None and version.lineage["training_data"] is None
    assert set(version.lineage["tables"]) == {"user_daily", "user_visits"}
    assert version.signature["feature_service"] is None and version.metrics == {"auc": 0.75}


def test_a_step_run_registers_without_its_duration(project: Project) -> None:
    result = project.run("pipelines/train.yaml")
    step = result.step("model").run_id
    assert step is not None and "seconds" in project.runs.get(step).metrics
    version = project.registry.register("step", run_id=step)
    assert version.metrics == {} and version.lineage["run"]["artifact"] == "output"


def test_several_models_in_a_run_need_a_name(project: Project) -> None:
    spec = write_spec(project.root, "both.yaml", SPEC.replace(":pipeline", ":both"))
    result = project.run(spec)
    with pytest.raises(InputError, match=r"has 2 models \(baseline, model\): say which one"):
        project.registry.register("purchase", run_id=result.id)
    assert project.registry.register("purchase", run_id=result.id,
                                     artifact="baseline").lineage["run"]["artifact"] == "baseline"


@pytest.mark.parametrize(("artifact", "message"), [
    ("nope", "has no artifact 'nope' — its models: model"),
    ("accuracy", "artifact 'accuracy' of run .* is a float, not a model"),
    ("features", "is pandas, not a pickled model — its models: model"),
])
def test_an_artifact_that_is_not_a_model_is_refused(project: Project, artifact: str,
                                                    message: str) -> None:
    result = project.run("pipelines/train.yaml")
    with pytest.raises(InputError, match=message):
        project.registry.register("purchase", run_id=result.id, artifact=artifact)
    assert project.registry.models() == {}


def test_a_run_without_a_model_says_what_it_has(project: Project) -> None:
    with project.start_run("notes") as run:
        run.log_artifact("summary", {"auc": 1})
    with pytest.raises(InputError, match=r"has no model: .*\(its artifacts: summary\)"):
        project.registry.register("purchase", run_id=run.id)


def test_runs_that_did_not_finish_are_refused(project: Project) -> None:
    with pytest.raises(InputError, match="is still running"), \
            project.start_run("live") as live:
        live.log_artifact("model", Threshold())
        project.registry.register("purchase", run_id=live.id)
    with pytest.raises(ValueError), project.start_run("broken") as broken:
        broken.log_artifact("model", Threshold())
        raise ValueError("diverged")
    with pytest.raises(InputError, match="failed: ValueError: diverged; a model registers "
                       "from a finished run"):
        project.registry.register("purchase", run_id=broken.id)
    with pytest.raises(RunNotFoundError, match="no run 0000"):
        project.registry.register("purchase", run_id="0000")
    assert project.registry.models() == {}


def test_another_feature_service_must_serve_what_the_model_reads(project: Project) -> None:
    result = project.run("pipelines/train.yaml")
    with pytest.raises(InputError, match=r"'pages_only' does not serve seconds, which the "
                       r"model reads .*trained on 'score'"):
        project.registry.register("purchase", run_id=result.id, feature_service="pages_only")
    with pytest.raises(InputError, match="no feature service 'nope'"):
        project.registry.register("purchase", run_id=result.id, feature_service="nope")
    version = project.registry.register("purchase", run_id=result.id, feature_service="wide")
    assert (version.signature["feature_service"], version.signature["trained_on"]) == (
        "wide", "score")
    assert version.signature["features"] == ["seconds", "pages"]


def test_an_alias_is_set_with_the_new_version(project: Project) -> None:
    result = project.run("pipelines/train.yaml")
    with pytest.raises(InputError, match="alias '1st' is not a name"):
        project.registry.register("purchase", run_id=result.id, alias="1st")
    assert project.registry.models() == {}  # refused before anything was stored
    version: ModelVersion = project.registry.register("purchase", run_id=result.id,
                                                      alias="challenger")
    assert version.aliases == ["challenger"]
    assert project.registry.get("purchase@challenger").version == version.version
    (change,) = project.registry.aliases_history("purchase")
    assert change.reason == f"registered from run {result.id}"


def test_a_model_object_still_registers_without_a_run(project: Project) -> None:
    version = project.registry.register("plain", model=Threshold(), metrics={"auc": 0.5})
    assert version.lineage == {} and version.signature["trained_on"] is None
    with pytest.raises(FlywheelError, match="not both"):
        project.registry.register("plain", run_id="x", artifact="a", model=Threshold())
