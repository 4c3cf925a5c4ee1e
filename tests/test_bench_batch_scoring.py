"""The batch scoring benchmark runs, at a tiny size: not a timed test, only proof that it
works and that Flywheel's batch scores and the naive pandas baseline agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_batch_scoring_benchmark_runs_and_prints_the_comparison() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "batch_scoring.py"), "--rows", "20000",
         "--feature-rows", "20000", "--users", "500", "--chunk-size", "5000"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "flywheel predict_batch" in out and "naive pandas merge_asof" in out
    assert "peak RSS" in out and "rows/s" in out
    assert "outputs match: yes" in out
    assert "flywheel vs naive:" in out
