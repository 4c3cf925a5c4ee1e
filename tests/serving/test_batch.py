"""Batch scoring gives what scoring the training-set join directly gives, chunk after
chunk, from every kind of input, and writes the model's name and version with the scores."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from flywheel.project import Project
from flywheel.serving.batch import BatchScoringError
from flywheel.serving.batch_scores import LABEL, PROBABILITY, VALUE
from tests.serving.batch_support import build, entity_rows, visits


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    opened = build(project_dir)
    try:
        yield opened
    finally:
        opened.close()


def direct_scores(project: Project, rows: pa.Table, uri: str = "purchase@champion"
                  ) -> tuple[list[object], list[float]]:
    """The training-set join over `rows`, scored by the model itself."""
    loaded = project.registry.load(uri)
    joined = project.features.get_historical_features(rows, feature_service="score")
    frame = joined.to_pandas()[["pages", "seconds"]]
    return (list(loaded.model.predict(frame)),
            [float(p) for p in loaded.model.predict_proba(frame)[:, 1]])


@pytest.mark.parametrize("chunk_size", [7, 1_000])
def test_scores_equal_scoring_the_training_join(project: Project, tmp_path: Path,
                                                chunk_size: int) -> None:
    rows = entity_rows(61)
    pq.write_table(rows, tmp_path / "entities.parquet", row_group_size=10)
    result = project.predict_batch(model="purchase@champion",
                                   input=str(tmp_path / "entities.parquet"),
                                   output=tmp_path / "scores.parquet", chunk_size=chunk_size)
    assert (result.model, result.version, result.rows) == ("purchase", 1, 61)
    assert result.chunks == -(-61 // chunk_size)
    scores = pq.read_table(tmp_path / "scores.parquet")
    labels, probabilities = direct_scores(project, rows)
    assert scores.column("row").to_pylist() == list(range(61))  # input order kept
    assert scores.column(LABEL).to_pylist() == labels
    assert scores.column(PROBABILITY).to_pylist() == pytest.approx(probabilities, abs=1e-12)
    assert set(scores.column("model").to_pylist()) == {"purchase"}
    assert set(scores.column("model_version").to_pylist()) == {1}
    assert len(set(probabilities)) > 2  # the features did reach the model
    metadata = {k.decode(): v.decode() for k, v in pq.read_schema(
        tmp_path / "scores.parquet").metadata.items()}
    assert metadata["flywheel.model"] == "purchase"
    assert metadata["flywheel.model_version"] == "1"
    assert metadata["flywheel.feature_service"] == "score"
    assert json.loads(metadata["flywheel.table_versions"]) == {
        "user_visits": project.tables.version("user_visits")}


def test_a_user_with_no_features_is_scored_with_nulls(project: Project,
                                                      tmp_path: Path) -> None:
    rows = pa.table({"user_id": ["u12", "u1"],
                     "event_timestamp": pa.array([dt.datetime(2026, 2, 1, tzinfo=dt.UTC)] * 2,
                                                 pa.timestamp("us", tz="UTC"))})
    pq.write_table(rows, tmp_path / "two.parquet")
    project.predict_batch(model="purchase", input=str(tmp_path / "two.parquet"),
                          output=tmp_path / "out.parquet", with_features=True)
    scores = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert scores[0]["pages"] is None and scores[1]["pages"] is not None
    assert scores[0][PROBABILITY] is not None  # LightGBM takes missing values


def test_a_derived_table_in_and_a_derived_table_out(project: Project) -> None:
    result = project.predict_batch(model="purchase@champion", input="user_daily",
                                   output="table:daily_scores", chunk_size=40)
    daily = project.tables.read("user_daily")
    assert result.rows == daily.num_rows == 150
    assert result.table_versions == {"user_daily": project.tables.version("user_daily"),
                                     "user_visits": project.tables.version("user_visits")}
    scores = project.tables.read("daily_scores")
    entities = daily.select(["user_id", "event_timestamp"])
    labels, probabilities = direct_scores(project, entities)
    assert scores.column("user_id").to_pylist() == daily.column("user_id").to_pylist()
    assert scores.column(LABEL).to_pylist() == labels
    assert scores.column(PROBABILITY).to_pylist() == pytest.approx(probabilities, abs=1e-12)
    traced = project.lineage("daily_scores")
    assert traced.mode == "predict"
    assert {node.name for node in traced.inputs} == {"user_daily", "user_visits"}
    assert {leaf.name for node in traced.inputs for leaf in node.inputs} >= {"com.acme/visit"}


def test_scoring_again_replaces_the_output_table(project: Project) -> None:
    first = project.predict_batch(model="purchase", input="user_daily",
                                  output="table:daily_scores")
    second = project.predict_batch(model="purchase", input="user_daily",
                                   output="table:daily_scores")
    assert second.table_version == (first.table_version or 0) + 1
    assert project.tables.read("daily_scores").num_rows == 150


def test_as_of_scores_every_row_at_one_time(project: Project, tmp_path: Path) -> None:
    users = pa.table({"user_id": [f"u{i}" for i in range(13)]})
    pq.write_table(users, tmp_path / "users.parquet")
    when = dt.datetime(2026, 1, 3, 12, tzinfo=dt.UTC)
    project.predict_batch(model="purchase", input=str(tmp_path / "users.parquet"),
                          output=tmp_path / "now.parquet", as_of="2026-01-03T12:00:00Z")
    scores = pq.read_table(tmp_path / "now.parquet")
    expected = users.append_column(
        "event_timestamp", pa.array([when] * 13, pa.timestamp("us", tz="UTC")))
    labels, probabilities = direct_scores(project, expected)
    assert scores.column("event_timestamp").to_pylist() == [when] * 13
    assert scores.column(PROBABILITY).to_pylist() == pytest.approx(probabilities, abs=1e-12)
    assert scores.column(LABEL).to_pylist() == labels


@pytest.mark.parametrize("suffix", ["csv", "ndjson"])
def test_csv_and_ndjson_inputs_score_as_parquet_does(project: Project, tmp_path: Path,
                                                     suffix: str) -> None:
    rows = entity_rows(40)
    path = tmp_path / f"entities.{suffix}"
    if suffix == "csv":
        pacsv.write_csv(rows, path)
    else:
        path.write_text("".join(json.dumps({
            "user_id": r["user_id"], "row": r["row"],
            "event_timestamp": r["event_timestamp"].isoformat()}) + "\n"
            for r in rows.to_pylist()))
    project.predict_batch(model="purchase", input=str(path), output=tmp_path / "out.parquet",
                          chunk_size=9)
    scores = pq.read_table(tmp_path / "out.parquet")
    _, probabilities = direct_scores(project, rows)
    assert scores.column("row").to_pylist() == list(range(40))
    assert scores.column(PROBABILITY).to_pylist() == pytest.approx(probabilities, abs=1e-12)


def test_every_chunk_reads_the_feature_tables_the_first_one_read(project: Project,
                                                                 tmp_path: Path) -> None:
    rows = entity_rows(30, hours=400)
    pq.write_table(rows, tmp_path / "entities.parquet")
    before = direct_scores(project, rows)
    version = project.tables.version("user_visits")

    def meanwhile(done: int, total: int | None) -> None:
        if done == 10:  # new visits land and the feature table moves on mid-run
            assert project.ingest(visits(100, seed=99, offset=150)).accepted == 100
            project.transform()

    result = project.predict_batch(model="purchase", input=str(tmp_path / "entities.parquet"),
                                   output=tmp_path / "out.parquet", chunk_size=10,
                                   on_progress=meanwhile)
    assert project.tables.version("user_visits") != version
    assert direct_scores(project, rows) != before  # the new visits do change the scores
    assert result.table_versions["user_visits"] == version
    scores = pq.read_table(tmp_path / "out.parquet")
    assert scores.column(PROBABILITY).to_pylist() == pytest.approx(before[1], abs=1e-12)


def test_an_empty_input_writes_an_empty_file_with_the_columns(project: Project,
                                                              tmp_path: Path) -> None:
    pq.write_table(entity_rows(0), tmp_path / "none.parquet")
    result = project.predict_batch(model="purchase", input=str(tmp_path / "none.parquet"),
                                   output=tmp_path / "out.parquet")
    scores = pq.read_table(tmp_path / "out.parquet")
    assert result.rows == scores.num_rows == 0
    assert scores.column_names == ["user_id", "event_timestamp", "row", LABEL, PROBABILITY,
                                   "model", "model_version"]


def test_a_regressor_writes_values(project: Project, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    training = project.features.get_historical_features(
        "select user_id, event_timestamp, bought from user_daily",
        feature_service="score").to_pandas()
    model = HistGradientBoostingRegressor(max_iter=5).fit(training[["pages", "seconds"]],
                                                          training["seconds"])
    project.registry.register("seconds", model=model, feature_service="score")
    rows = entity_rows(20)
    pq.write_table(rows, tmp_path / "entities.parquet")
    project.predict_batch(model="seconds/1", input=str(tmp_path / "entities.parquet"),
                          output=tmp_path / "out.parquet")
    scores = pq.read_table(tmp_path / "out.parquet")
    joined = project.features.get_historical_features(rows, feature_service="score")
    expected = model.predict(joined.to_pandas()[["pages", "seconds"]])
    assert LABEL not in scores.column_names
    assert scores.column(VALUE).to_pylist() == pytest.approx(list(expected))
    assert set(scores.column("model").to_pylist()) == {"seconds"}


def test_a_model_that_cannot_take_missing_features_fails_in_one_line(
        project: Project, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    training = project.features.get_historical_features(
        "select user_id, event_timestamp, bought from user_daily",
        feature_service="score").to_pandas().dropna()
    model = LogisticRegression().fit(training[["pages", "seconds"]], training["bought"])
    project.registry.register("linear", model=model, feature_service="score")
    pq.write_table(entity_rows(30), tmp_path / "entities.parquet")  # u12 has no visits
    with pytest.raises(BatchScoringError, match="model linear/1 failed on chunk 1"):
        project.predict_batch(model="linear", input=str(tmp_path / "entities.parquet"),
                              output=tmp_path / "out.parquet")
    assert list(tmp_path.glob("*out.parquet*")) == []  # nothing half written is left
