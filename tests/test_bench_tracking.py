"""The tracking benchmark runs, at a tiny size and without MLflow (CI has no MLflow venv):
not a timed test, only proof that the Flywheel side of every part works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_tracking_benchmark_runs_the_flywheel_side() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "tracking.py"), "--points", "2000", "--per-call-points",
         "300", "--runs", "60", "--rows", "50", "--skip-mlflow"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "mlflow: NOT RUN — skipped (--skip-mlflow)" in out
    assert "error" not in out
    assert "(a) log 2,000 points, batched" in out and "points/s" in out
    assert "(a) log 300 points, one per call" in out
    assert "search 60 runs" in out and "20 found" in out
    assert "(c) log + register + alias + load + predict" in out and " ms" in out
    assert "MiB" in out
