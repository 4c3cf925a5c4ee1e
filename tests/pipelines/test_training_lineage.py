"""What a run records of its training data (the entity tables too, each at the version
read), and an empty training set: a failed run before any step, one line, not resumable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flywheel.cli.main import app
from flywheel.features.offline import EntitySource, entity_rows
from flywheel.pipelines import EmptyTrainingSetError, PipelineError
from flywheel.pipelines.state import load_state
from flywheel.project import Project
from flywheel.tracking.training import TRAINING_DATA_TAG
from tests.registry.support import QUERY, SPEC, ingest, write_spec, write_training_project

EMPTY = SPEC.replace("2026-01-01", "2025-01-01").replace("2026-03-01", "2025-03-01")
REASON = f"training_data.entities gave no rows in [2025-01-01, 2025-03-01): {QUERY}"


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_training_project(project_dir)
    with Project.open(project_dir) as opened:
        opened.apply()
        ingest(opened, range(6))
        yield opened


def test_the_run_records_its_training_data(project: Project) -> None:
    result = project.run("pipelines/train.yaml")
    run = project.runs.get(result.id)
    recorded = json.loads(run.tags[TRAINING_DATA_TAG])
    assert recorded["feature_service"] == "score" and recorded["rows"] == 6
    assert recorded["entities"]["tables"] == {"user_daily": 0}
    assert recorded["feature_tables"] == {"user_visits": 0}
    assert run.inputs == result.table_versions == {"user_daily": 0, "user_visits": 0}
    assert run.tags["flywheel.bookkeeping_metrics"] == "steps_ran"
    assert result.state.training_lineage == recorded


def test_a_resumed_run_records_the_training_data_it_reuses(project: Project) -> None:
    steps = project.root / "pipelines" / "train.py"
    good = steps.read_text()
    steps.write_text(good.replace("return len(features)", "raise ValueError('no')"))
    with pytest.raises(Exception, match="step rows failed"):
        project.run("pipelines/train.yaml")
    failed = project.runs.search(status="failed", top_level=True)[0]
    steps.write_text(good)
    resumed = project.runs.get(project.run(resume=failed.id).id)
    assert resumed.tags[TRAINING_DATA_TAG] == failed.tags[TRAINING_DATA_TAG]
    assert resumed.inputs == failed.inputs


def test_a_new_entity_table_version_reruns_the_steps_that_read_it(project: Project) -> None:
    project.run("pipelines/train.yaml")
    # user_daily is rebuilt from the same rows: only the entity table has a new version.
    project.transform(["user_daily"], full_refresh=True)
    again = project.run("pipelines/train.yaml")
    assert again.table_versions == {"user_daily": 1, "user_visits": 0}
    assert again.step("features").status == "ran"


@pytest.mark.parametrize(("query", "tables"), [
    (QUERY, {"user_daily"}),
    ("SELECT d.user_id, d.day_end AS event_timestamp FROM User_Daily d "
     "JOIN user_visits v USING (user_id)", {"user_daily", "user_visits"}),
    ("with recent as (select * from user_daily) select user_id, day_end as event_timestamp "
     "from recent where user_id in (select user_id from user_visits)",
     {"user_daily", "user_visits"}),
    ("select 'u1' as user_id, timestamptz '2026-01-09' as event_timestamp", set()),
])
def test_an_entity_query_records_the_tables_it_reads(project: Project, query: str,
                                                     tables: set[str]) -> None:
    training = project.features.get_historical_features(query, feature_service="score")
    assert training.entities is not None and training.entities.kind == "query"
    assert set(training.entities.tables) == tables
    assert training.table_versions == {"user_visits": 0, **training.entities.tables}


def test_entity_rows_are_read_at_the_version_recorded(project: Project) -> None:
    ingest(project, range(6, 9))  # user_daily v1 has 9 rows, v0 had 6
    tables = project.tables
    rows, source = entity_rows("user_daily", tables, ["user_daily", "user_visits"])
    assert source == EntitySource("table", "user_daily", {"user_daily": 1})
    assert rows.num_rows == 9 == tables.read("user_daily", 1).num_rows


def test_an_empty_training_set_fails_the_run_before_any_step(project: Project) -> None:
    spec = write_spec(project.root, "empty.yaml", EMPTY)
    with pytest.raises(EmptyTrainingSetError) as info:
        project.run(spec)
    assert info.value.message == REASON
    assert "fix training_data.start/end or the data, then start a new run" in str(info.value)
    run = project.runs.get(info.value.run_id)
    assert run.status == "failed" and run.tags["flywheel.error"] == REASON
    assert project.runs.search(parent_id=run.id) == []  # no step started
    state = load_state(project.artifacts, run.id)
    assert (state.status, state.training_rows, state.error) == ("failed", 0, REASON)
    assert {s.status for s in state.steps.values()} == {"pending"}
    assert project.runs.load_artifact(run.id, "training_set").num_rows == 0
    with pytest.raises(PipelineError, match=r"cannot be resumed: resuming reuses the run's "
                       r"own training set, and it is empty .*start a new run: flywheel run "):
        project.run(resume=run.id)


def test_an_empty_training_set_is_one_line_exit_2_in_the_cli(project: Project) -> None:
    spec = write_spec(project.root, "empty.yaml", EMPTY)
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "COLUMNS": "200",
                            "FLYWHEEL_PROJECT": str(project.root), "FLYWHEEL_DEBUG": None})
    result = runner.invoke(app, ["run", str(spec)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {REASON} — fix")
    failed = project.runs.search(status="failed")[0].id
    resumed = runner.invoke(app, ["run", "--resume", failed])
    assert resumed.exit_code == 2, resumed.output
    (line,) = resumed.stderr.strip().splitlines()
    assert f"run {failed} cannot be resumed" in line and "it is empty" in line


@settings(max_examples=60, deadline=None)
@given(value=st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30),
       quoted=st.booleans())
def test_any_start_value_is_a_spec_or_one_line(tmp_path_factory: pytest.TempPathFactory,
                                               value: str, quoted: bool) -> None:
    from flywheel.pipelines.spec import load_spec

    path = tmp_path_factory.mktemp("spec") / "train.yaml"
    shown = json.dumps(value) if quoted else value
    path.write_text(f"pipeline: p.py:pipeline\ntraining_data:\n  feature_service: s\n"
                    f"  entities: t\n  start: {shown}\n", encoding="utf-8")
    try:
        load_spec(path)
    except PipelineError as exc:
        assert "\n" not in str(exc)


def test_a_table_read_for_entities_and_features_is_both(project: Project) -> None:
    query = "select user_id, event_time as event_timestamp from user_visits"
    training = project.features.get_historical_features(query, feature_service="score")
    lineage = training.lineage()
    assert lineage["entities"]["tables"] == lineage["feature_tables"] == {"user_visits": 0}
