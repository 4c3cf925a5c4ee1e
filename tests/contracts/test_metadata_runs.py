"""The `RunStorage` contract: runs, params, metrics, tags, artifacts, inputs, on every backend."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from flywheel._core.errors import FlywheelError
from flywheel._core.metadata.runs import (
    MetricPoint,
    RunArtifactRecord,
    RunFilter,
    RunQuery,
    RunRecord,
    RunStorage,
)
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.runs import SqlRunStorage
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def run(run_id: str, name: str = "train", *, minutes: int = 0, **extra: object) -> RunRecord:
    return RunRecord(id=run_id, name=name, status="running",
                     started_at=T0 + dt.timedelta(minutes=minutes), **extra)  # type: ignore[arg-type]


def point(run_id: str, key: str, value: float, step: int, seconds: int = 0) -> MetricPoint:
    return MetricPoint(run_id, key, value, step, T0 + dt.timedelta(seconds=seconds))


class RunStorageContract(MetadataContract):
    @pytest.fixture
    def runs(self, db: Database) -> RunStorage:
        return SqlRunStorage(db)

    def test_run_roundtrip_and_end(self, runs: RunStorage) -> None:
        runs.add_run(run("r1", environment='{"python":"3.11"}', git_commit="abc",
                          git_dirty=True, parent_id="p0"))
        runs.end_run("r1", "failed", T0 + dt.timedelta(seconds=3))

        (got,) = runs.get_runs(["r1"])
        assert (got.status, got.parent_id, got.git_commit, got.git_dirty) == (
            "failed", "p0", "abc", True)
        assert got.environment == '{"python":"3.11"}'
        assert got.started_at == T0 and got.ended_at == T0 + dt.timedelta(seconds=3)
        assert runs.get_runs(["nope", "r1", "r1"]) == [got, got]

    def test_duplicate_run_and_unknown_run_are_refused(self, runs: RunStorage) -> None:
        runs.add_run(run("r1"), {"team": "a"})
        with pytest.raises(FlywheelError, match="already recorded"):
            runs.add_run(run("r1"), {"team": "b"})
        assert runs.run_details(["r1"])["r1"].tags == {"team": "a"}
        with pytest.raises(FlywheelError, match="no run r2"):
            runs.end_run("r2", "finished", T0)

    def test_find_run_ids_by_prefix_escapes_wildcards(self, runs: RunStorage) -> None:
        for run_id in ("ab12", "ab34", "a_x", "cd"):
            runs.add_run(run(run_id))
        assert runs.find_run_ids("ab", limit=5) == ["ab12", "ab34"]
        assert runs.find_run_ids("a_") == ["a_x"]
        assert runs.find_run_ids("%") == []

    def test_params_are_fixed_once_logged(self, runs: RunStorage) -> None:
        runs.add_run(run("r1"))
        runs.log_params("r1", {"lr": "0.1", "depth": "3"})
        runs.log_params("r1", {"lr": "0.1", "seed": "7"})  # the same value again is fine
        with pytest.raises(FlywheelError, match=r"param 'lr'.*'0\.1', now '0\.2'"):
            runs.log_params("r1", {"lr": "0.2", "other": "x"})
        details = runs.run_details(["r1"])["r1"]
        assert details.params == {"lr": "0.1", "depth": "3", "seed": "7"}

    def test_metrics_history_and_latest(self, runs: RunStorage) -> None:
        runs.add_run(run("r1"))
        runs.log_metrics([point("r1", "loss", 0.9, 0), point("r1", "loss", 0.5, 2),
                           point("r1", "auc", 0.7, 0)])
        # An older step arriving later does not replace the latest value.
        runs.log_metrics([point("r1", "loss", 0.7, 1, seconds=5),
                           point("r1", "loss", math.nan, 3), point("r1", "auc", 0.8, 0, 1)])

        history = runs.metric_history("r1", "loss")
        assert [p.step for p in history] == [0, 1, 2, 3]
        assert [p.value for p in history[:3]] == [0.9, 0.7, 0.5] and math.isnan(history[3].value)
        latest = runs.run_details(["r1"])["r1"].metrics
        assert math.isnan(latest["loss"].value) and latest["loss"].step == 3
        assert (latest["auc"].value, latest["auc"].timestamp) == (0.8, T0 + dt.timedelta(seconds=1))
        runs.log_metrics([point("r1", "loss", 0.4, 3, seconds=9)])  # same step, newer time
        assert runs.run_details(["r1"])["r1"].metrics["loss"].value == 0.4

    def test_tags_overwrite_and_inputs_are_fixed(self, runs: RunStorage) -> None:
        runs.add_run(run("r1"))
        runs.set_tags("r1", {"team": "a", "stage": "dev"})
        runs.set_tags("r1", {"stage": "prod"})
        runs.add_run_inputs("r1", {"visits": 3, "users": 1})
        runs.add_run_inputs("r1", {"visits": 3})
        with pytest.raises(FlywheelError, match="'visits' at version 3 already, not 4"):
            runs.add_run_inputs("r1", {"visits": 4})
        details = runs.run_details(["r1"])["r1"]
        assert details.tags == {"team": "a", "stage": "prod"}
        assert details.inputs == {"visits": 3, "users": 1}

    def test_artifacts_one_content_per_name(self, runs: RunStorage) -> None:
        runs.add_run(run("r1"))
        model = RunArtifactRecord("r1", "model", "a" * 64, "pickle", 10)
        runs.add_run_artifacts([model, RunArtifactRecord("r1", "data", "b" * 64, "parquet", 5)])
        runs.add_run_artifacts([model])
        with pytest.raises(FlywheelError, match="already has an artifact 'model'"):
            runs.add_run_artifacts([RunArtifactRecord("r1", "model", "c" * 64, "pickle", 1)])
        assert runs.run_details(["r1"])["r1"].artifacts == {
            "data": RunArtifactRecord("r1", "data", "b" * 64, "parquet", 5), "model": model}

    def test_search_filters_and_orders_by_a_metric(self, runs: RunStorage) -> None:
        aucs = {"r0": 0.7, "r1": 0.9, "r2": 0.8, "r3": None, "r4": 0.95}
        for position, (run_id, auc) in enumerate(aucs.items()):
            runs.add_run(run(run_id, "other" if run_id == "r4" else "train", minutes=position))
            runs.log_params(run_id, {"model": "lgbm" if position % 2 == 0 else "xgb"})
            if auc is not None:
                runs.log_metrics([point(run_id, "auc", auc, 0)])
        runs.set_tags("r2", {"team": "a"})
        runs.end_run("r1", "finished", T0)

        def ids(**kwargs: object) -> list[str]:
            return [r.id for r in runs.search_runs(RunQuery(**kwargs))]  # type: ignore[arg-type]

        assert ids() == ["r4", "r3", "r2", "r1", "r0"]  # newest first
        assert ids(order_by="auc") == ["r4", "r1", "r2", "r0", "r3"]
        assert ids(order_by="auc", descending=False) == ["r0", "r2", "r1", "r4", "r3"]
        assert ids(name="train", order_by="auc", limit=2) == ["r1", "r2"]
        assert ids(status="finished") == ["r1"]
        lgbm = RunFilter("params", "model", "=", "lgbm")
        assert ids(filters=(lgbm,), order_by="auc") == ["r4", "r2", "r0"]
        assert ids(filters=(RunFilter("params", "model", "!=", "lgbm"),)) == ["r3", "r1"]
        good = RunFilter("metrics", "auc", ">=", 0.8)
        assert ids(filters=(lgbm, good)) == ["r4", "r2"]
        assert ids(filters=(RunFilter("metrics", "auc", "<", 0.8),)) == ["r0"]
        assert ids(filters=(RunFilter("tags", "team", "=", "a"),)) == ["r2"]
        assert ids(filters=(RunFilter("params", "missing", "=", "x"),)) == []

    def test_search_parent_and_details_of_many_runs(self, runs: RunStorage) -> None:
        runs.add_run(run("p"))
        for child in range(3):
            runs.add_run(run(f"c{child}", parent_id="p", minutes=child))
            runs.log_params(f"c{child}", {"i": str(child)})
        assert [r.id for r in runs.search_runs(RunQuery(parent_id="p"))] == ["c2", "c1", "c0"]
        assert [r.id for r in runs.search_runs(RunQuery(top_level=True))] == ["p"]
        details = runs.run_details(["c0", "c2", "p"])
        assert {k: d.params for k, d in details.items()} == {
            "c0": {"i": "0"}, "c2": {"i": "2"}, "p": {}}


class TestSqliteRunStorage(OnSqlite, RunStorageContract):
    pass


@pytest.mark.postgres
class TestPostgresRunStorage(OnPostgres, RunStorageContract):
    pass
