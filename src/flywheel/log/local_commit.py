"""A fast append commit for Delta tables on a local disk.

An acknowledgement waits for a commit, and `write_deltalake` spends ~10 ms of fixed cost
on each one (planning, snapshot work) however few rows it carries. A blind append needs
much less: write the Parquet files, then create the next `_delta_log/NNN.json` holding
their `add` actions, atomically and only if absent (a hard link fails if the name is
taken, which is the put-if-absent the Delta protocol asks of a log store). Appends are
blind, so a version taken by another commit (a compaction, say) is simply skipped.

Only the simple case is handled here: a table this package created (reader 1, writer 4:
append-only with change data feed, neither of which asks anything of an append) and an
unchanged schema. Anything else goes through `write_deltalake`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel._core.version import VERSION

_MAX_RACE = 1_000


def _partition_text(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _write_files(base: Path, partition: str | None, data: pa.Table,
                 ) -> list[dict[str, dict[str, object]]]:
    groups: list[tuple[dict[str, str], pa.Table]]
    if partition is None:
        groups = [({}, data)]
    else:
        column = data.column(partition)
        groups = []
        for value in pc.unique(column).to_pylist():
            rows = data.filter(pc.equal(column, pa.scalar(value, column.type)))
            groups.append(({partition: _partition_text(value)}, rows.drop_columns([partition])))
    adds = []
    now_ms = int(time.time() * 1000)
    for values, rows in groups:
        folder = "/".join(f"{k}={v}" for k, v in values.items())
        name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        relative = f"{folder}/{name}" if folder else name
        target = base / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, target, compression="snappy")
        adds.append({"add": {
            "path": relative, "partitionValues": values, "size": target.stat().st_size,
            "modificationTime": now_ms, "dataChange": True,
            "stats": json.dumps({"numRecords": rows.num_rows}),
        }})
    return adds


def append(base: Path, partition: str | None, data: pa.Table, head: int) -> int:
    """Commit `data` after version `head` (or after whatever came since); returns the
    version of the new commit."""
    adds = _write_files(base, partition, data)
    info = {"commitInfo": {
        "timestamp": int(time.time() * 1000), "operation": "WRITE",
        "operationParameters": {"mode": "Append",
                                "partitionBy": json.dumps([partition] if partition else [])},
        "isBlindAppend": True, "clientVersion": f"flywheel-{VERSION}",
        "operationMetrics": {"num_added_files": len(adds), "num_added_rows": data.num_rows},
    }}
    log_dir = base / "_delta_log"
    staged = log_dir / f".{uuid.uuid4()}.json.tmp"
    staged.write_text("\n".join(json.dumps(a, separators=(",", ":"))
                                for a in [info, *adds]) + "\n")
    try:
        version = head + 1
        for _ in range(_MAX_RACE):
            try:
                os.link(staged, log_dir / f"{version:020d}.json")
                return version
            except FileExistsError:
                version += 1
        raise RuntimeError(f"could not commit to {base}: {_MAX_RACE} versions taken in a race")
    finally:
        staged.unlink()
