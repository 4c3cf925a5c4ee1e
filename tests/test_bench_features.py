"""The feature store benchmark runs, at a tiny size and without Feast (CI has no Feast
venv): not a timed test, only proof that the Flywheel side of both parts works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_feature_benchmark_runs_the_flywheel_side() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "features.py"), "--entities", "2000",
         "--features-rows", "20000", "--online-users", "500", "--online-reads", "50",
         "--warmup", "5", "--skip-feast", "--skip-redis"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "feast: NOT RUN — skipped (--skip-feast)" in out
    assert "Part 1 — point-in-time join" in out
    assert "flywheel (Arrow table)" in out and "flywheel (+ .to_pandas())" in out
    assert "rows/s" in out and "peak RSS" in out
    assert "Part 2 — online reads" in out
    if "not yet measured" not in out:  # the online API is there: its lines print
        assert "flywheel in process" in out and "flywheel HTTP" in out
        assert "p50 ms" in out and "p99 ms" in out
        assert "sqlite: materialize" in out
