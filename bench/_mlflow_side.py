"""The MLflow side of bench/tracking.py, run by MLflow's own venv's Python (no Flywheel
there). One phase per process; prints one JSON object of timings on stdout.

    python _mlflow_side.py PHASE WORKDIR SIZE
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

KEYS = 10
SEARCH_REPEATS = 20
REGISTER_REPEATS = 5


def client(workdir: Path):  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    name = "bench"
    tracking = MlflowClient()
    found = tracking.get_experiment_by_name(name)
    experiment = found.experiment_id if found else tracking.create_experiment(
        name, artifact_location=(workdir / "mlartifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    return tracking, experiment


def log_batched(workdir: Path, points: int) -> dict[str, float]:
    from mlflow.entities import Metric

    tracking, experiment = client(workdir)
    run = tracking.create_run(experiment)
    now = int(time.time() * 1000)
    metrics = [Metric(f"m{i % KEYS}", i * 0.001, now, i // KEYS) for i in range(points)]
    start = time.perf_counter()
    for offset in range(0, points, 1000):  # MLflow's bound on metrics per log_batch
        tracking.log_batch(run.info.run_id, metrics=metrics[offset:offset + 1000])
    tracking.set_terminated(run.info.run_id)
    return {"seconds": time.perf_counter() - start}


def log_per_call(workdir: Path, points: int) -> dict[str, float]:
    tracking, experiment = client(workdir)
    run = tracking.create_run(experiment)
    start = time.perf_counter()
    for i in range(points):
        tracking.log_metric(run.info.run_id, f"m{i % KEYS}", i * 0.001, step=i // KEYS)
    tracking.set_terminated(run.info.run_id)
    return {"seconds": time.perf_counter() - start}


def search(workdir: Path, runs: int) -> dict[str, float]:
    from mlflow.entities import Metric, Param

    tracking, experiment = client(workdir)
    made = time.perf_counter()
    now = int(time.time() * 1000)
    for i in range(runs):
        run = tracking.create_run(experiment, run_name=f"run{i}")
        tracking.log_batch(run.info.run_id,
                           metrics=[Metric("auc", (i * 7919 % runs) / runs, now, 0)],
                           params=[Param("model", ("lgbm", "xgb", "sklearn")[i % 3]),
                                   Param("lr", str(0.01 * (i % 10)))])
        tracking.set_terminated(run.info.run_id)
    setup = time.perf_counter() - made
    times, found = [], 0
    for _ in range(SEARCH_REPEATS):
        start = time.perf_counter()
        result = tracking.search_runs([experiment], filter_string="params.model = 'lgbm'",
                                      order_by=["metrics.auc DESC"], max_results=100)
        times.append(time.perf_counter() - start)
        found = len(result)
    return {"seconds": statistics.median(times), "found": found, "setup": setup}


def register(workdir: Path, rows: int) -> dict[str, float]:
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    tracking, _ = client(workdir)
    data = pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows) % 7 * 1.0})
    model = LogisticRegression().fit(data, (data["b"] > 3).astype(int))
    times = []
    for attempt in range(REGISTER_REPEATS):
        start = time.perf_counter()
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(model, name="model")
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "purchase")
        tracking.set_registered_model_alias("purchase", "champion", version.version)
        loaded = mlflow.pyfunc.load_model("models:/purchase@champion")
        predicted = loaded.predict(data)
        times.append(time.perf_counter() - start)
        assert len(predicted) == rows and int(version.version) == attempt + 1
    return {"seconds": statistics.median(times)}


PHASES = {"log_batched": log_batched, "log_per_call": log_per_call, "search": search,
          "register": register}


def main() -> None:
    phase, workdir, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    workdir.mkdir(parents=True, exist_ok=True)
    import mlflow

    result = PHASES[phase](workdir, size)
    result["version"] = mlflow.__version__  # type: ignore[assignment]
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
