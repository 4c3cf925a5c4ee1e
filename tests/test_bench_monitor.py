"""The monitor benchmark runs, at a tiny size, beside its naive peer: not a timed test,
only proof that it works and that `flywheel monitor run` finds the shifted columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_monitor_benchmark_runs_and_finds_the_shifted_columns() -> None:
    result = subprocess.run([sys.executable, str(BENCH / "monitor.py"), "--rows", "20000"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "flywheel monitor run" in out and "peak RSS" in out
    assert "flywheel vs pandas + scipy:" in out
    drifted = out.split("flywheel drifted columns (")[1].splitlines()[0]
    for column in ("num_03", "num_04", "cat_00", "cat_02"):
        assert column in drifted
    assert "num_10" not in drifted and "cat_05" not in drifted
