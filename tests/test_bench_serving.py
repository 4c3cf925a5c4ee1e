"""The serving benchmark runs, at a tiny size and without its peers (CI builds no MLflow
or MLServer venv): not a timed test, only proof that the Flywheel side works end to end
(a LightGBM model served with enrichment, under a load generator in its own process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_serving_benchmark_runs_the_flywheel_side() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "serving.py"), "--quick", "--peers", "none"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "scoring alone, in process" in out
    assert "LightGBM Booster.predict, 1 row (numpy)" in out
    assert "deployment.predict(entities=1 id)" in out
    assert "NOT RUN" not in out and "not yet measured" not in out
    assert "entities (lookup + log)" in out and "instances (feature row)" in out
    assert "req/s" in out and "p99 ms" in out and "MiB" in out
    assert "enrichment + logging in process" in out
    assert "p99 <= 10 ms at 32 connections" in out
