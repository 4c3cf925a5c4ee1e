"""The replay benchmark runs, at a tiny size: not a timed test, only proof that it works
and that Flywheel's replay and the pandas baseline agree. Needs pandas (dev extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_replay_benchmark_runs_and_prints_the_comparison() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "replay.py"), "--events", "20000", "--repeat", "1"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "flywheel replay" in out and "pandas" in out and "vs pandas" in out
    assert "peak RSS" in out and "events/s" in out
    assert "final tables match: yes" in out
    assert "replay vs pandas:" in out
