"""Tracking and registry benchmark: Flywheel side by side with MLflow, SQLite for both.

    python bench/tracking.py                      # full size (100k points, 10k runs)
    python bench/tracking.py --points 2000 --runs 200 --per-call-points 500 --skip-mlflow

Three parts, each timed in a fresh process per side (so peak RSS is that part's own):
  (a) logging metric points: batched (Flywheel `run.log_metrics` of 10 keys per call,
      buffered; MLflow `log_batch` of 1,000) and one point per call (`run.log_metric`
      vs `MlflowClient.log_metric`);
  (b) searching 10k runs with a param filter, ordered by a metric (median of 20);
  (c) logging a scikit-learn model in a run, registering it, setting an alias and loading
      it by alias to predict (median of 5).

MLflow is installed in its own venv (default /tmp/mlflow-venv, made on first use with
pip) and runs bench/_mlflow_side.py there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import PeakRss, machine, mib, table

MLFLOW_VERSION = "3.17.2"
MLFLOW_SIDE = Path(__file__).resolve().parent / "_mlflow_side.py"
KEYS = 10
SEARCH_REPEATS = 20
REGISTER_REPEATS = 5


# The Flywheel side (one phase per process) --------------------------------------------
def _project(workdir: Path) -> Any:
    from flywheel.project import Project

    if not (workdir / "proj" / "flywheel.yaml").exists():
        return Project.init(workdir / "proj")
    return Project.open(workdir / "proj")


def fw_log_batched(workdir: Path, points: int) -> dict[str, Any]:
    project = _project(workdir)
    run = project.start_run("bench")
    steps = points // KEYS
    values = [{f"m{k}": (step * KEYS + k) * 0.001 for k in range(KEYS)} for step in range(steps)]
    start = time.perf_counter()
    for step, metrics in enumerate(values):
        run.log_metrics(metrics, step=step)
    run.finish()
    return {"seconds": time.perf_counter() - start}


def fw_log_per_call(workdir: Path, points: int) -> dict[str, Any]:
    project = _project(workdir)
    run = project.start_run("bench")
    start = time.perf_counter()
    for i in range(points):
        run.log_metric(f"m{i % KEYS}", i * 0.001, step=i // KEYS)
    run.finish()
    return {"seconds": time.perf_counter() - start}


def fw_search(workdir: Path, runs: int) -> dict[str, Any]:
    project = _project(workdir)
    made = time.perf_counter()
    for i in range(runs):
        with project.start_run(f"run{i}") as run:
            run.log_params({"model": ("lgbm", "xgb", "sklearn")[i % 3], "lr": 0.01 * (i % 10)})
            run.log_metrics({"auc": (i * 7919 % runs) / runs})
    setup = time.perf_counter() - made
    times, found = [], 0
    for _ in range(SEARCH_REPEATS):
        start = time.perf_counter()
        result = project.runs.search(params={"model": "lgbm"}, order_by="metrics.auc desc",
                                     limit=100)
        times.append(time.perf_counter() - start)
        found = len(result)
    return {"seconds": statistics.median(times), "found": found, "setup": setup}


def fw_register(workdir: Path, rows: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    project = _project(workdir)
    data = pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows) % 7 * 1.0})
    model = LogisticRegression().fit(data, (data["b"] > 3).astype(int))
    times = []
    for attempt in range(REGISTER_REPEATS):
        start = time.perf_counter()
        with project.start_run("train") as run:
            run.log_artifact("model", model)
        version = project.registry.register("purchase", run_id=run.id, artifact="model")
        project.registry.set_alias("purchase", "champion", version=version.version)
        predicted = project.registry.load("purchase@champion").predict(data)
        times.append(time.perf_counter() - start)
        assert len(predicted) == rows and version.version == attempt + 1
    return {"seconds": statistics.median(times)}


FW_PHASES = {"log_batched": fw_log_batched, "log_per_call": fw_log_per_call,
             "search": fw_search, "register": fw_register}


# Orchestration -------------------------------------------------------------------------
def run_phase(command: list[str], timeout: float) -> dict[str, Any]:
    """Run one phase in its own process; its JSON result plus the peak RSS sampled here."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        with PeakRss([proc.pid]) as peak:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        return {"error": (stderr.strip().splitlines() or ["exit code"])[-1][:300]}
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss"] = peak.peak
    return result


def mlflow_python(path: str | None) -> tuple[str | None, str]:
    """(python with MLflow, version) or (None, why not). Makes the default venv if need be."""
    venv = Path(tempfile.gettempdir()) / "mlflow-venv"
    python = Path(path) if path else venv / "bin" / "python"

    def probe() -> str | None:
        if not python.exists():
            return None
        done = subprocess.run([str(python), "-c", "import mlflow, sklearn; "
                               "print(mlflow.__version__)"], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    version = probe()
    if version or path:
        return (str(python), version) if version else (None, f"no MLflow at {python}")
    print(f"  installing MLflow {MLFLOW_VERSION} into {venv} (once)", file=sys.stderr)
    for step in ([sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "-q", f"mlflow=={MLFLOW_VERSION}",
                  "scikit-learn", "psutil"]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            return None, f"install failed: {done.stderr.strip()[-200:]}"
    version = probe()
    return (str(python), version) if version else (None, "MLflow did not import")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000,
                        help="metric points for the batched part (a)")
    parser.add_argument("--per-call-points", type=int, default=10_000,
                        help="metric points logged one per call in part (a)")
    parser.add_argument("--runs", type=int, default=10_000, help="runs to search in (b)")
    parser.add_argument("--rows", type=int, default=1_000, help="rows predicted in (c)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--mlflow-python", help="a Python with MLflow installed")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--phase", choices=sorted(FW_PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # a child: one Flywheel phase
        result = FW_PHASES[args.phase](Path(args.workdir), args.size)
        sys.stdout.write(json.dumps(result) + "\n")
        return

    python, version = (None, "skipped (--skip-mlflow)") if args.skip_mlflow else \
        mlflow_python(args.mlflow_python)
    print(f"machine: {machine()}")
    print(f"mlflow: {version if python else 'NOT RUN — ' + version}")
    parts = [("log_batched", args.points, f"(a) log {args.points:,} points, batched"),
             ("log_per_call", args.per_call_points,
              f"(a) log {args.per_call_points:,} points, one per call"),
             ("search", args.runs, f"(b) search {args.runs:,} runs: param filter, order by "
              "metric (median)"),
             ("register", args.rows, "(c) log + register + alias + load + predict (median)")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fw-bench-tracking-") as tmp:
        for phase, size, label in parts:
            ours = run_phase([sys.executable, __file__, "--phase", phase, "--workdir",
                              f"{tmp}/fw-{phase}", "--size", str(size)], args.timeout)
            theirs = (run_phase([python, str(MLFLOW_SIDE), phase, f"{tmp}/mlflow-{phase}",
                                 str(size)], args.timeout) if python else {})
            rows.append(_row(label, phase, size, ours, theirs))
    print()
    print(table(rows, ["part", "flywheel", "mlflow", "speed-up", "peak RSS flywheel",
                       "peak RSS mlflow"]))


def _row(label: str, phase: str, size: int, ours: dict[str, Any],
         theirs: dict[str, Any]) -> list[str]:
    def shown(result: dict[str, Any]) -> str:
        if not result:
            return "-"
        if "error" in result:
            return "error: " + result["error"]
        seconds = result["seconds"]
        if phase.startswith("log"):
            return f"{size / seconds:,.0f} points/s ({seconds:.2f} s)"
        extra = f", {result['found']} found" if "found" in result else ""
        return f"{seconds * 1000:,.1f} ms{extra}"

    ratio = "-"
    if "seconds" in ours and "seconds" in theirs:
        ratio = f"{theirs['seconds'] / ours['seconds']:,.1f}x"
    return [label, shown(ours), shown(theirs), ratio,
            mib(ours["peak_rss"]) if "peak_rss" in ours else "-",
            mib(theirs["peak_rss"]) if "peak_rss" in theirs else "-"]


if __name__ == "__main__":
    main()
