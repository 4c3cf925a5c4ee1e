"""The tracking and model-registry part of the `MetadataStore` contract, on every backend."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel._core.errors import FlywheelError
from flywheel._core.metadata import (
    MetadataStore,
    MetricPoint,
    ModelVersionRecord,
    RunArtifactRecord,
    RunFilter,
    RunQuery,
    RunRecord,
)
from flywheel.backends.metadata.sql import SqlMetadataStore

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def run(run_id: str, name: str = "train", *, minutes: int = 0, **extra: object) -> RunRecord:
    return RunRecord(id=run_id, name=name, status="running",
                     started_at=T0 + dt.timedelta(minutes=minutes), **extra)  # type: ignore[arg-type]


def point(run_id: str, key: str, value: float, step: int, seconds: int = 0) -> MetricPoint:
    return MetricPoint(run_id, key, value, step, T0 + dt.timedelta(seconds=seconds))


def version(name: str = "purchase", sha: str = "a" * 64) -> ModelVersionRecord:
    return ModelVersionRecord(name=name, version=0, run_id=None, artifact_sha256=sha,
                              flavor="sklearn")


class RunsMetadataContract:
    """Subclasses provide `url`."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self, url: str) -> Iterator[MetadataStore]:
        store = SqlMetadataStore(url)
        store.migrate()
        yield store
        store.close()

    # Runs ---------------------------------------------------------------------------
    def test_run_roundtrip_and_end(self, store: MetadataStore) -> None:
        store.add_run(run("r1", environment='{"python":"3.11"}', git_commit="abc",
                          git_dirty=True, parent_id="p0"))
        store.end_run("r1", "failed", T0 + dt.timedelta(seconds=3))

        (got,) = store.get_runs(["r1"])
        assert (got.status, got.parent_id, got.git_commit, got.git_dirty) == (
            "failed", "p0", "abc", True)
        assert got.environment == '{"python":"3.11"}'
        assert got.started_at == T0 and got.ended_at == T0 + dt.timedelta(seconds=3)
        assert store.get_runs(["nope", "r1", "r1"]) == [got, got]

    def test_duplicate_run_and_unknown_run_are_refused(self, store: MetadataStore) -> None:
        store.add_run(run("r1"), {"team": "a"})
        with pytest.raises(FlywheelError, match="already recorded"):
            store.add_run(run("r1"), {"team": "b"})
        assert store.run_details(["r1"])["r1"].tags == {"team": "a"}
        with pytest.raises(FlywheelError, match="no run r2"):
            store.end_run("r2", "finished", T0)

    def test_find_run_ids_by_prefix_escapes_wildcards(self, store: MetadataStore) -> None:
        for run_id in ("ab12", "ab34", "a_x", "cd"):
            store.add_run(run(run_id))
        assert store.find_run_ids("ab", limit=5) == ["ab12", "ab34"]
        assert store.find_run_ids("a_") == ["a_x"]
        assert store.find_run_ids("%") == []

    def test_params_are_fixed_once_logged(self, store: MetadataStore) -> None:
        store.add_run(run("r1"))
        store.log_params("r1", {"lr": "0.1", "depth": "3"})
        store.log_params("r1", {"lr": "0.1", "seed": "7"})  # the same value again is fine
        with pytest.raises(FlywheelError, match=r"param 'lr'.*'0\.1', now '0\.2'"):
            store.log_params("r1", {"lr": "0.2", "other": "x"})
        details = store.run_details(["r1"])["r1"]
        assert details.params == {"lr": "0.1", "depth": "3", "seed": "7"}

    def test_metrics_history_and_latest(self, store: MetadataStore) -> None:
        store.add_run(run("r1"))
        store.log_metrics([point("r1", "loss", 0.9, 0), point("r1", "loss", 0.5, 2),
                           point("r1", "auc", 0.7, 0)])
        # An older step arriving later does not replace the latest value.
        store.log_metrics([point("r1", "loss", 0.7, 1, seconds=5),
                           point("r1", "loss", math.nan, 3), point("r1", "auc", 0.8, 0, 1)])

        history = store.metric_history("r1", "loss")
        assert [p.step for p in history] == [0, 1, 2, 3]
        assert [p.value for p in history[:3]] == [0.9, 0.7, 0.5] and math.isnan(history[3].value)
        latest = store.run_details(["r1"])["r1"].metrics
        assert math.isnan(latest["loss"].value) and latest["loss"].step == 3
        assert (latest["auc"].value, latest["auc"].timestamp) == (0.8, T0 + dt.timedelta(seconds=1))
        store.log_metrics([point("r1", "loss", 0.4, 3, seconds=9)])  # same step, newer time
        assert store.run_details(["r1"])["r1"].metrics["loss"].value == 0.4

    def test_tags_overwrite_and_inputs_are_fixed(self, store: MetadataStore) -> None:
        store.add_run(run("r1"))
        store.set_tags("r1", {"team": "a", "stage": "dev"})
        store.set_tags("r1", {"stage": "prod"})
        store.add_run_inputs("r1", {"visits": 3, "users": 1})
        store.add_run_inputs("r1", {"visits": 3})
        with pytest.raises(FlywheelError, match="'visits' at version 3 already, not 4"):
            store.add_run_inputs("r1", {"visits": 4})
        details = store.run_details(["r1"])["r1"]
        assert details.tags == {"team": "a", "stage": "prod"}
        assert details.inputs == {"visits": 3, "users": 1}

    def test_artifacts_one_content_per_name(self, store: MetadataStore) -> None:
        store.add_run(run("r1"))
        model = RunArtifactRecord("r1", "model", "a" * 64, "pickle", 10)
        store.add_run_artifacts([model, RunArtifactRecord("r1", "data", "b" * 64, "parquet", 5)])
        store.add_run_artifacts([model])
        with pytest.raises(FlywheelError, match="already has an artifact 'model'"):
            store.add_run_artifacts([RunArtifactRecord("r1", "model", "c" * 64, "pickle", 1)])
        assert store.run_details(["r1"])["r1"].artifacts == {
            "data": RunArtifactRecord("r1", "data", "b" * 64, "parquet", 5), "model": model}

    def test_search_filters_and_orders_by_a_metric(self, store: MetadataStore) -> None:
        aucs = {"r0": 0.7, "r1": 0.9, "r2": 0.8, "r3": None, "r4": 0.95}
        for position, (run_id, auc) in enumerate(aucs.items()):
            store.add_run(run(run_id, "other" if run_id == "r4" else "train", minutes=position))
            store.log_params(run_id, {"model": "lgbm" if position % 2 == 0 else "xgb"})
            if auc is not None:
                store.log_metrics([point(run_id, "auc", auc, 0)])
        store.set_tags("r2", {"team": "a"})
        store.end_run("r1", "finished", T0)

        def ids(**kwargs: object) -> list[str]:
            return [r.id for r in store.search_runs(RunQuery(**kwargs))]  # type: ignore[arg-type]

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

    def test_search_parent_and_details_of_many_runs(self, store: MetadataStore) -> None:
        store.add_run(run("p"))
        for child in range(3):
            store.add_run(run(f"c{child}", parent_id="p", minutes=child))
            store.log_params(f"c{child}", {"i": str(child)})
        assert [r.id for r in store.search_runs(RunQuery(parent_id="p"))] == ["c2", "c1", "c0"]
        assert [r.id for r in store.search_runs(RunQuery(top_level=True))] == ["p"]
        details = store.run_details(["c0", "c2", "p"])
        assert {k: d.params for k, d in details.items()} == {
            "c0": {"i": "0"}, "c2": {"i": "2"}, "p": {}}

    # Model registry -------------------------------------------------------------------
    def test_versions_count_per_model(self, store: MetadataStore) -> None:
        first = store.add_model_version(version())
        second = store.add_model_version(version(sha="b" * 64))
        other = store.add_model_version(version("churn"))
        assert (first.version, second.version, other.version) == (1, 2, 1)
        assert first.created_at is not None and first.created_at.tzinfo == dt.UTC
        assert [(v.name, v.version) for v in store.model_versions()] == [
            ("churn", 1), ("purchase", 1), ("purchase", 2)]
        assert store.get_model_version("purchase", 2) == second
        assert store.get_model_version("purchase", 3) is None

    def test_aliases_and_their_audit_trail(self, store: MetadataStore) -> None:
        for _ in range(3):
            store.add_model_version(version())
        store.set_alias("purchase", "champion", 1, reason="first", actor="ana")
        store.set_alias("purchase", "challenger", 3, reason=None, actor=None)
        moved = store.set_alias("purchase", "champion", 2, reason="better auc", actor="bo")
        same = store.set_alias("purchase", "champion", 2, reason="again", actor="bo")
        store.set_alias("purchase", "challenger", None, reason="retired", actor="bo")

        assert (moved.from_version, moved.to_version) == (1, 2)
        assert (same.from_version, same.to_version) == (2, 2)
        assert store.aliases("purchase") == {("purchase", "champion"): 2}
        trail = [(c.alias, c.from_version, c.to_version, c.reason, c.actor)
                 for c in store.alias_history("purchase")]
        assert trail == [("champion", None, 1, "first", "ana"),
                         ("challenger", None, 3, None, None),
                         ("champion", 1, 2, "better auc", "bo"),
                         ("challenger", 3, None, "retired", "bo")]
        assert [c.to_version for c in store.alias_history("purchase", "champion")] == [1, 2]

    def test_alias_to_a_missing_version_is_refused(self, store: MetadataStore) -> None:
        store.add_model_version(version())
        with pytest.raises(FlywheelError, match="no version 5"):
            store.set_alias("purchase", "champion", 5, reason=None, actor=None)
        with pytest.raises(FlywheelError, match="no alias 'champion'"):
            store.set_alias("purchase", "champion", None, reason=None, actor=None)
        assert store.alias_history("purchase") == []

    def test_concurrent_registrations_and_alias_moves(self, url: str,
                                                      store: MetadataStore) -> None:
        workers, rounds = 4, 5
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            own = SqlMetadataStore(url)
            try:
                barrier.wait()
                for _ in range(rounds):
                    made = own.add_model_version(version())
                    own.set_alias("purchase", "champion", made.version,
                                  reason=f"w{worker}", actor=None)
            except BaseException as exc:
                errors.append(exc)
            finally:
                own.close()

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert errors == []
        versions = [v.version for v in store.model_versions("purchase")]
        assert versions == list(range(1, workers * rounds + 1))
        trail = store.alias_history("purchase", "champion")
        # Every change starts where the one before it ended: no lost or crossed update.
        assert trail[0].from_version is None
        assert all(a.to_version == b.from_version for a, b in itertools.pairwise(trail))
        assert store.aliases("purchase")[("purchase", "champion")] == trail[-1].to_version


class TestSqliteRunsMetadata(RunsMetadataContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/metadata.db"


@pytest.mark.postgres
class TestPostgresRunsMetadata(RunsMetadataContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
