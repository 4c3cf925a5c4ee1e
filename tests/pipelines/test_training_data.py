"""Training data: fetched point in time from the feature store, offered to steps as
`training_set` (Arrow, pandas or Polars, as the parameter is annotated), its table
versions recorded on the run and part of the cache key of the steps that read it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel._core.errors import FlywheelError
from flywheel.pipelines import PipelineError
from flywheel.project import Project
from tests.helpers import write_visits_project
from tests.pipelines.support import calls
from tests.registry.support import ingest

DEFINITIONS = '''
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"])
score = FeatureService(name="score", features=["visits:*"])
'''
STEPS = '''
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa

from flywheel.pipelines import Pipeline


def called(name):
    with (Path(__file__).parent / "calls.txt").open("a") as handle:
        handle.write(name + "\\n")


def features(training_set: pd.DataFrame) -> pd.DataFrame:
    called("features")
    assert isinstance(training_set, pd.DataFrame)
    return training_set[["pages", "seconds", "label"]]


def rows(training_set: pa.Table) -> int:
    called("rows")
    assert isinstance(training_set, pa.Table)
    return training_set.num_rows


def users(training_set: pl.DataFrame) -> list:
    called("users")
    assert isinstance(training_set, pl.DataFrame)
    return sorted(set(training_set["user_id"].to_list()))


def model(features: pd.DataFrame, threshold: int = 3) -> dict:
    called("model")
    return {"positive": int((features["pages"] > threshold).sum())}


pipeline = Pipeline("train", steps=[features, rows, users, model])
'''
SPEC = '''
pipeline: pipelines/train.py:pipeline
params: {threshold: 2}
training_data:
  feature_service: score
  entities: >-
    select user_id, event_time + interval 1 second as event_timestamp, pages > 2 as label
    from user_visits order by event_time
'''


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_visits_project(project_dir, DEFINITIONS)
    (project_dir / "pipelines").mkdir()
    (project_dir / "pipelines/train.py").write_text(STEPS)
    (project_dir / "pipelines/train.yaml").write_text(SPEC)
    with Project.open(project_dir) as project:
        project.apply()
        ingest(project, range(6))
        yield project


def test_steps_get_the_training_set_as_annotated(project: Project) -> None:
    result = project.run("pipelines/train.yaml")
    assert sorted(calls(project.root)) == ["features", "model", "rows", "users"]
    assert result.output("rows") == 6
    assert result.output("users") == ["u0", "u1", "u2"]
    assert result.output("model") == {"positive": 3}
    assert list(result.output("features").columns) == ["pages", "seconds", "label"]
    assert result.table_versions == {"user_visits": 0}
    training = result.state.training_set
    assert training is not None
    parent = project.runs.get(result.id)
    assert parent.inputs == {"user_visits": 0}
    assert parent.params == {"threshold": "2"}
    assert parent.tags["flywheel.training_set"] == training.digest
    assert project.artifacts.get_bytes(training.digest)[:4] == b"PAR1"
    assert project.runs.load_artifact(result.id, "training_set").num_rows == 6


def test_a_new_table_version_reruns_the_steps_that_read_it(project: Project) -> None:
    project.run("pipelines/train.yaml")
    calls(project.root)
    again = project.run("pipelines/train.yaml")
    assert calls(project.root) == []
    assert {s.status for s in again.steps} == {"cached"}
    ingest(project, range(6, 8))
    newer = project.run("pipelines/train.yaml")
    assert newer.table_versions == {"user_visits": 1}
    assert sorted(calls(project.root)) == ["features", "model", "rows", "users"]
    assert newer.output("rows") == 8


def test_same_rows_in_a_new_table_version_still_rerun_its_readers(project: Project) -> None:
    first = project.run("pipelines/train.yaml")
    calls(project.root)
    project.transform(full_refresh=True)  # a new version with the same rows
    rebuilt = project.run("pipelines/train.yaml")
    assert rebuilt.table_versions == {"user_visits": 1}
    assert rebuilt.state.training_set == first.state.training_set  # same bytes
    assert sorted(calls(project.root)) == ["features", "rows", "users"]
    assert rebuilt.step("model").status == "cached"  # its input's bytes did not change


def test_a_time_range_restricts_the_entity_rows(project: Project) -> None:
    spec = project.root / "pipelines" / "range.yaml"
    spec.write_text(SPEC.replace("training_data:\n", "training_data:\n  start: 2026-01-02\n"
                                 "  end: 2026-01-04\n"))
    assert project.run(spec).output("rows") == 2


def test_a_bad_entity_query_is_one_line_and_starts_no_run(project: Project) -> None:
    spec = project.root / "pipelines" / "bad.yaml"
    spec.write_text(SPEC.replace("from user_visits", "from nowhere"))
    with pytest.raises(FlywheelError, match="entity_df query failed") as info:
        project.run(spec)
    assert "\n" not in str(info.value)
    assert project.runs.search() == []
    spec.write_text(SPEC.replace("score", "nothing"))
    with pytest.raises(FlywheelError, match="nothing"):
        project.run(spec)


def test_a_step_reading_training_set_needs_training_data(project: Project) -> None:
    spec = project.root / "pipelines" / "none.yaml"
    spec.write_text("pipeline: pipelines/train.py:pipeline\n")
    with pytest.raises(PipelineError, match="step features: input 'training_set'"):
        project.run(spec)


def test_a_model_from_a_pipeline_run_registers_with_its_lineage(project: Project) -> None:
    (project.root / "pipelines" / "fit.py").write_text('''
import pandas as pd
from sklearn.linear_model import LogisticRegression

from flywheel.pipelines import Pipeline


def model(training_set: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=c).fit(training_set[["pages", "seconds"]],
                                       training_set["label"])


pipeline = Pipeline("fit", steps=[model])
''')
    spec = project.root / "pipelines" / "fit.yaml"
    spec.write_text(SPEC.replace("train.py", "fit.py").replace("threshold: 2", "c: 0.5"))
    result = project.run(spec)
    version = project.registry.register("visits", run_id=result.id, artifact="model",
                                        feature_service="score")
    assert version.lineage["training_set"] == {"user_visits": 0}
    assert version.lineage["run"]["id"] == result.id
    assert version.lineage["log_offsets"]  # down to the log
    project.registry.set_alias("visits", "champion", version=version.version)
    import pandas as pd

    loaded = project.registry.load("visits@champion")
    frame = pd.DataFrame({"pages": [0, 5], "seconds": [0.0, 7.5]})
    assert list(loaded.predict(frame)) == list(result.output("model").predict(frame))
