"""The benchmarks run, at a tiny size: they are not timed tests, only proof that they work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_ingest_benchmark_runs_and_prints_ratios() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "ingest.py"), "--events", "3000", "--naive-events", "1000",
         "--http-events", "1000", "--clients", "2"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "flywheel SDK" in out and "naive" in out and "vs naive" in out
    assert "peak RSS" in out and "HTTP collector" in out and "p99" in out
    assert "flywheel ingest FILE.parquet" in out
