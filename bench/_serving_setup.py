"""The data, the model and the Flywheel project that bench/serving.py serves.

Two feature views of 10 features each (20 online features), every user in both; a
LightGBM classifier trained on them; a project whose feature service `purchase` names the
20 features, with the model registered as `purchase@champion`, a deployment `purchase`
serving it, and the views materialised to the online store. The peers get the same
model as a LightGBM text file (the same trees, so the same probabilities).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

VIEWS = {"user_profile": "p", "user_activity": "a"}
PER_VIEW = 10
ENTITY = "user_id"
DEPLOYMENT = "purchase"
TTL = dt.timedelta(days=7)


def feature_names() -> list[str]:
    return [f"{prefix}{i:02d}" for prefix in VIEWS.values() for i in range(PER_VIEW)]


def make_frames(users: int, seed: int = 7) -> dict[str, Any]:
    """{view: Arrow table} — user ids 0..users-1, updated in the last six hours; the
    features of even index are counts (int), the others amounts (float)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.UTC)
    frames = {}
    for view, prefix in VIEWS.items():
        ages = rng.integers(1, 6 * 3600, users)
        columns: dict[str, Any] = {
            ENTITY: np.arange(users, dtype=np.int64),
            "event_time": pa.array([now - dt.timedelta(seconds=int(s)) for s in ages],
                                   pa.timestamp("us", tz="UTC"))}
        for i in range(PER_VIEW):
            columns[f"{prefix}{i:02d}"] = (rng.integers(0, 500, users).astype(np.int64)
                                           if i % 2 == 0 else np.round(rng.random(users) * 100, 3))
        frames[view] = pa.table(columns)
    return frames


def feature_matrix(frames: dict[str, Any]) -> Any:
    """The 20 features of every user, in `feature_names()` order (float64, row = user)."""
    import numpy as np

    return np.column_stack([frames[view].column(f"{prefix}{i:02d}").to_numpy()
                            .astype(np.float64)
                            for view, prefix in VIEWS.items() for i in range(PER_VIEW)])


def train(matrix: Any, rows: int, trees: int, seed: int = 3) -> Any:
    """A binary LGBMClassifier over the named features; the label depends on several."""
    import lightgbm
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = matrix[:rows]
    score = (x[:, 0] / 250 - 1) + (x[:, 1] / 50 - 1) - (x[:, 10] / 250 - 1) \
        + 0.5 * (x[:, 13] / 50 - 1) + rng.normal(0, 0.7, len(x))
    model = lightgbm.LGBMClassifier(n_estimators=trees, num_leaves=31, learning_rate=0.1,
                                    n_jobs=1, verbose=-1, random_state=seed)
    model.fit(pd.DataFrame(x, columns=feature_names()), (score > 0).astype(int))
    return model


def definitions() -> str:
    lines = ["from datetime import timedelta", "",
             "from flywheel.features import Entity, FeatureService, FeatureView", "",
             f'user = Entity(name="user", join_keys=["{ENTITY}"])']
    for view, prefix in VIEWS.items():
        names = [f"{prefix}{i:02d}" for i in range(PER_VIEW)]
        lines.append(f'{view} = FeatureView(name="{view}", entities=[user], source="{view}", '
                     f'timestamp_column="event_time", '
                     f'ttl=timedelta(seconds={int(TTL.total_seconds())}), features={names!r})')
    services = [f"{view}:{prefix}{i:02d}" for view, prefix in VIEWS.items()
                for i in range(PER_VIEW)]
    lines.append(f'{DEPLOYMENT} = FeatureService(name="{DEPLOYMENT}", features={services!r})')
    return "\n".join(lines) + "\n"


def write_sources(root: Path) -> None:
    """One event schema per view (`dev.bench/<view>_update`) and a transform per view
    that keeps its rows: the views read derived tables, as `flywheel apply` requires."""
    for view, prefix in VIEWS.items():
        properties: dict[str, Any] = {ENTITY: {"type": "integer"}}
        for i in range(PER_VIEW):
            properties[f"{prefix}{i:02d}"] = {"type": "integer" if i % 2 == 0 else "number"}
        schema = root / "schemas" / "dev.bench" / f"{view}_update" / "jsonschema" / "1-0-0"
        schema.parent.mkdir(parents=True, exist_ok=True)
        schema.write_text(json.dumps({
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": properties, "required": list(properties),
            "additionalProperties": False}))
        columns = ", ".join([ENTITY, *(f"{prefix}{i:02d}" for i in range(PER_VIEW))])
        (root / "transforms").mkdir(exist_ok=True)
        (root / "transforms" / f"{view}.sql").write_text(
            f"-- inputs: updates=dev.bench/{view}_update\n"
            f"select {columns}, event_time from updates\n")


def events(frames: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for view, table in frames.items():
        key = f"iglu:dev.bench/{view}_update/jsonschema/1-0-0"
        for row in table.to_pylist():
            when = row.pop("event_time")
            found.append({"schema": key, "event_time": when.isoformat(), "data": row})
    return found


def make_project(root: Path, frames: dict[str, Any], model: Any,
                 online_url: str | None) -> int:
    """The project: schemas, transforms and views, the events ingested and transformed,
    the model registered, the deployment, the views materialised. Returns the number of
    rows written to the online store."""
    import yaml

    from flywheel.project import Project

    Project.init(root).close()
    if online_url:
        config = yaml.safe_load((root / "flywheel.yaml").read_text()) or {}
        config["online"] = online_url
        (root / "flywheel.yaml").write_text(yaml.safe_dump(config))
    write_sources(root)
    (root / "definitions.py").write_text(definitions())
    (root / "deployments").mkdir(exist_ok=True)
    with Project.open(root) as project:
        project.apply()
        updates = events(frames)
        result = project.ingest(updates)
        if result.accepted != len(updates):
            raise RuntimeError(f"ingest refused {result.rejected} rows: {result.errors[:1]}")
        project.transform()
        project.registry.register(DEPLOYMENT, model=model, feature_service=DEPLOYMENT,
                                  alias="champion")
        (root / "deployments" / f"{DEPLOYMENT}.yaml").write_text(
            f"model: {DEPLOYMENT}@champion\n")
        project.apply()
        runs = project.features.materialize()
    return sum(r.rows for r in runs)


def request_bodies(folder: Path, matrix: Any, entities: list[int]) -> dict[str, Path]:
    """One file of request bodies per request shape, one body a line, entity by entity
    in the same order: ours by entity id and by feature row, MLflow's dataframe_split and
    the Open Inference Protocol's tensor (MLServer, and our own /v2 route)."""
    names = feature_names()
    shapes: dict[str, list[str]] = {"entities": [], "instances": [], "mlflow": [], "v2": []}
    for entity in entities:
        row = [int(v) if j % 2 == 0 else float(v) for j, v in enumerate(matrix[entity])]
        shapes["entities"].append(json.dumps({"entities": {ENTITY: [entity]}}))
        shapes["instances"].append(json.dumps({"instances": [dict(zip(names, row,
                                                                      strict=True))]}))
        shapes["mlflow"].append(json.dumps({"dataframe_split": {"columns": names,
                                                                "data": [row]}}))
        shapes["v2"].append(json.dumps({"inputs": [{"name": "input-0", "shape": [1, len(row)],
                                                    "datatype": "FP64", "data": row}]}))
    paths = {}
    for shape, lines in shapes.items():
        paths[shape] = folder / f"bodies_{shape}.ndjson"
        paths[shape].write_text("\n".join(lines) + "\n")
    return paths

