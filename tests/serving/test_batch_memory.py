"""Batch scoring holds a chunk at a time: scoring ten times the rows in the same chunk size
takes about the same memory, not ten times more. Each run is its own process, so its
peak resident set is its own."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.serving.batch_support import START, USERS, build

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 50_000

CHILD = """
import json, resource, sys
from flywheel.project import Project

root, source, out, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with Project.open(root) as project:
    # Warm up on a few rows: imports, the model, DuckDB; what follows is the scoring.
    project.predict_batch(model="purchase", input=source + ".head.parquet", output=out,
                          chunk_size=chunk)
    before = peak()
    result = project.predict_batch(model="purchase", input=source, output=out,
                                   chunk_size=chunk)
    print(json.dumps({"rows": result.rows, "before": before, "after": peak()}))
"""


NOTE = 200
"""Bytes of text each entity row carries: a million rows are 200 MB of input, so that
holding the whole input would show."""


def entity_file(path: Path, rows: int) -> str:
    """`rows` entity rows in row groups of 100k, written without holding them all."""
    schema = pa.schema([("user_id", pa.string()),
                        ("event_timestamp", pa.timestamp("us", tz="UTC")),
                        ("note", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            ids = [f"u{(start + i) % (USERS + 1)}" for i in range(count)]
            times = pa.array([START + dt.timedelta(minutes=(start + i) % 12_000)
                              for i in range(count)], pa.timestamp("us", tz="UTC"))
            notes = [f"{start + i:0{NOTE}d}" for i in range(count)]
            writer.write_table(pa.table({"user_id": ids, "event_timestamp": times,
                                         "note": notes}))
    head = pq.read_table(path).slice(0, 100)
    pq.write_table(head, f"{path}.head.parquet")
    return str(path)


def growth(root: Path, source: str, out: Path) -> tuple[int, int]:
    result = subprocess.run([sys.executable, "-c", CHILD, str(root), source, str(out),
                             str(CHUNK)], capture_output=True, text=True, timeout=600,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return found["rows"], found["after"] - found["before"]


@pytest.mark.slow
def test_memory_follows_the_chunk_size_not_the_input(project_dir: Path,
                                                     tmp_path: Path) -> None:
    build(project_dir).close()
    small = entity_file(tmp_path / "small.parquet", 100_000)
    large = entity_file(tmp_path / "large.parquet", 1_000_000)
    rows_small, small_growth = growth(project_dir, small, tmp_path / "small_out.parquet")
    rows_large, large_growth = growth(project_dir, large, tmp_path / "large_out.parquet")
    assert (rows_small, rows_large) == (100_000, 1_000_000)
    assert pq.read_metadata(tmp_path / "large_out.parquet").num_rows == 1_000_000
    print(f"peak RSS growth: 100k rows {small_growth / 2**20:.0f} MiB, "
          f"1M rows {large_growth / 2**20:.0f} MiB (chunks of {CHUNK:,})")
    # Ten times the rows: bounded by the chunk, the peak grows by far less than ten
    # times, and by far less than the input's text alone (a million rows of NOTE bytes).
    assert large_growth <= 2 * small_growth + 48 * 2**20
    assert large_growth < NOTE * 1_000_000 / 2
