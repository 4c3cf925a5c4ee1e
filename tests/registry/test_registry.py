"""The model registry on a real project: real tiny models, lineage down to log offsets,
aliases with their audit trail, loading by URI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from flywheel._core.artifacts import ArtifactError
from flywheel._core.errors import InputError
from flywheel.project import Project
from flywheel.registry import ModelNotFoundError
from tests.helpers import VISIT, write_visits_project

DEFINITIONS = '''
import datetime as dt
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"], ttl=dt.timedelta(days=30))
score = FeatureService(name="score", features=["visits:*"])
'''


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_visits_project(project_dir, DEFINITIONS)
    with Project.open(project_dir) as opened:
        opened.apply()
        yield opened


def frame(rows: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"pages": rng.integers(0, 20, rows).astype(float),
                         "seconds": rng.random(rows) * 100})
    return data, (data["pages"] > 9).astype(int).to_numpy()


class Threshold:
    def predict(self, data: Any) -> list[int]:
        return [int(p > 9) for p in data["pages"]]


def models() -> dict[str, Any]:
    import lightgbm
    import xgboost
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data, labels = frame()
    booster = xgboost.train({"max_depth": 2, "nthread": 1}, xgboost.DMatrix(data, labels), 3)
    return {
        "sklearn": make_pipeline(StandardScaler(), LogisticRegression()).fit(data, labels),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=5, min_child_samples=2, verbose=-1,
                                            n_jobs=1).fit(data, labels),
        "xgboost": xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(data, labels),
        "xgboost-booster": booster,
        "python": Threshold(),
    }


def test_every_flavor_round_trips_and_predicts_the_same(project: Project) -> None:
    data, _ = frame()
    extra = data.assign(user_id="u", event_time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    for label, model in models().items():
        with project.start_run("train") as run:
            run.log_artifact("model", model)
        version = project.registry.register(label.replace("-", "_"), run_id=run.id,
                                            artifact="model")
        loaded = project.registry.load(f"{version.name}/{version.version}")
        expected = np.asarray(model.predict(data) if label != "xgboost-booster"
                              else model.predict(__import__("xgboost").DMatrix(data)))
        assert version.flavor == label.split("-")[0]
        # Whatever the frame's kind, extra columns (keys, times) are left out by name.
        for given in (data, extra[["user_id", "seconds", "pages", "event_time"]],
                      pa.Table.from_pandas(data), pl.from_pandas(data)):
            np.testing.assert_allclose(np.asarray(loaded.predict(given)), expected)
    assert project.registry.get("sklearn").signature["inputs"] == ["pages", "seconds"]
    assert project.registry.get("python").signature["inputs"] is None


def test_lineage_goes_from_run_to_log_offsets(project: Project) -> None:
    now = dt.datetime.now(dt.UTC).isoformat()
    for batch in range(2):
        project.ingest([{"schema": VISIT, "event_time": now,
                         "data": {"user_id": f"u{batch}{i}", "pages": i, "seconds": 1.0}}
                        for i in range(3)])
        project.transform()
    table_version = project.metadata.table_versions("user_visits")[-1].version
    with project.start_run("train") as run:
        run.log_inputs({"user_visits": table_version})
        run.log_metrics({"auc": 0.91})
    version = project.registry.register("purchase", run_id=run.id, model=Threshold(),
                                        feature_service="score",
                                        output_schema={"purchase": "int"})
    assert version.version == 1 and version.metrics == {"auc": 0.91}
    assert version.lineage["run"] == {"id": run.id, "name": "train"}
    assert version.lineage["training_set"] == {"user_visits": table_version}
    (log_name, (first, last)), = version.lineage["log_offsets"].items()
    assert "visit" in log_name and first == 0 and last >= 1
    assert version.lineage["tables"]["user_visits"]["version"] == table_version
    assert version.signature["feature_service"] == "score"
    assert version.signature["features"] == ["pages", "seconds"]
    assert version.signature["output_schema"] == {"purchase": "int"}


def test_aliases_move_with_an_audit_trail(project: Project) -> None:
    for _ in range(3):
        project.registry.register("purchase", model=Threshold(), metrics={"auc": 0.5})
    registry = project.registry
    registry.set_alias("purchase", "champion", version=1, reason="first", actor="ana")
    registry.set_alias("purchase", "challenger", version=3)
    registry.set_alias("purchase", "champion", version=2, reason="better auc", actor="bo")
    registry.remove_alias("purchase", "challenger", reason="retired", actor="bo")

    assert registry.get("purchase@champion").version == 2
    assert registry.get("purchase@champion").aliases == ["champion"]
    assert registry.get("purchase").version == 3
    history = registry.aliases_history("purchase")
    assert [(c.alias, c.from_version, c.to_version, c.reason, c.actor) for c in history][::2] \
        == [("champion", None, 1, "first", "ana"), ("champion", 1, 2, "better auc", "bo")]
    assert history[1].actor  # the user name when no actor is given
    assert [c.to_version for c in registry.aliases_history("purchase", "challenger")] == [3, None]
    assert [v.aliases for v in registry.versions("purchase")] == [[], ["champion"], []]
    assert list(registry.models()) == ["purchase"]


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda r: r.load("purchase@gone"), ModelNotFoundError, "no alias 'gone'"),
    (lambda r: r.load("purchase/9"), ModelNotFoundError, "no version 9"),
    (lambda r: r.load("nothing"), ModelNotFoundError, "no model 'nothing'"),
    (lambda r: r.load("purchase@"), InputError, "cannot read the model URI"),
    (lambda r: r.set_alias("purchase", "champion", version=9), Exception, "no version 9"),
    (lambda r: r.set_alias("purchase", "1st", version=1), InputError, "is not a name"),
    (lambda r: r.register("bad name", model=Threshold()), InputError, "not a name"),
    (lambda r: r.register("m", model=object()), InputError, "no predict"),
    (lambda r: r.register("m"), InputError, "pass run_id= .* or model=OBJECT"),
    (lambda r: r.register("m", artifact="a", model=Threshold()), InputError, "not both"),
    (lambda r: r.register("m", model=type("Local", (), {"predict": print})()), InputError,
     "cannot be pickled"),
    (lambda r: r.register("m", artifact="model"), InputError, "pass run_id"),
    (lambda r: r.register("m", model=Threshold(), feature_service="nope"), InputError,
     "no feature service 'nope'"),
])
def test_bad_input_is_one_error(project: Project, call: Any, error: type[Exception],
                                message: str) -> None:
    project.registry.register("purchase", model=Threshold())
    with pytest.raises(error, match=message):
        call(project.registry)


def test_only_pickled_run_artifacts_register(project: Project) -> None:
    with project.start_run("train") as run:
        run.log_artifact("summary", {"auc": 1})
    with pytest.raises(InputError, match="json, not a pickled model"):
        project.registry.register("m", run_id=run.id, artifact="summary")
    with pytest.raises(InputError, match="no artifact 'model'"):
        project.registry.register("m", run_id=run.id, artifact="model")


def test_a_tampered_model_is_refused_before_unpickling(project: Project) -> None:
    version = project.registry.register("purchase", model=Threshold())
    digest = version.artifact_sha256
    blob = Path(project.artifacts.url) / "sha256" / digest[:2] / digest[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        project.registry.load("purchase/1")


def test_a_model_whose_code_is_gone_is_one_error(project: Project) -> None:
    blob = b"cno_such_mod\nModel\n."  # a pickle of a class whose module is not installed
    digest = project.artifacts.put_bytes(blob)
    version = project.registry.register("purchase", model=Threshold())
    from flywheel._core.metadata.models import ModelVersionRecord

    project.metadata.add_model_version(ModelVersionRecord(
        "purchase", 0, None, digest, "python"))
    assert project.registry.load(f"purchase/{version.version}").predict(
        {"pages": [10]}) == [1]
    with pytest.raises(InputError, match="module 'no_such_mod' is not installed"):
        project.registry.load("purchase/2")
