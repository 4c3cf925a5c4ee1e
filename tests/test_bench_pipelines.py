"""The pipelines benchmark runs at a tiny size: not a timed test, only proof that every
mode runs and that they agree (the script checks that every mode ends with one answer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_pipelines_benchmark_runs_every_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "pipelines.py"), "--sizes", "small,large", "--steps", "4",
         "--small-rows", "100", "--large-mb", "0.5", "--repeat", "1"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "pipelines benchmark" in out and "4 steps" in out
    for mode in ("naive", "cold", "warm", "cold process"):
        assert f"small  {mode.rjust(12)}" in out, out
    assert "large         naive" in out and "large          warm" in out
    assert "vs naive" in out and "peak RSS" in out


def test_bad_sizes_are_refused() -> None:
    result = subprocess.run([sys.executable, str(BENCH / "pipelines.py"), "--sizes", "huge"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--sizes takes small and/or large, not huge" in result.stderr
