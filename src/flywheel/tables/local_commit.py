"""Fast commits for Delta tables on a local disk: blind appends, and publishing files
already written elsewhere as a table's whole new content (write, audit, publish).

An acknowledgement waits for a commit, and `write_deltalake` spends ~10 ms of fixed cost
on each one (planning, snapshot work) however few rows it carries. A blind append needs
much less: write the Parquet files, then create the next `_delta_log/NNN.json` holding
their `add` actions, atomically and only if absent (a hard link fails if the name is
taken, which is the put-if-absent the Delta protocol asks of a log store). Appends are
blind, so a version taken by another commit (a compaction, say) is simply skipped.

Only the simple case is handled here: a table this package created (reader 1, writer 4:
append-only or change data feed, neither of which asks anything of these commits) on a
local disk. Anything else goes through `write_deltalake`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel._core.version import VERSION

_MAX_RACE = 1_000


def partition_text(value: object) -> str:
    """A partition value as Delta's `partitionValues` and Hive folder names spell it."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileAction:
    """A data file a commit adds or removes (path relative to the table)."""

    path: str
    partition: dict[str, str]
    size: int
    rows: int


def _write_files(base: Path, partition: str | None, data: pa.Table,
                 ) -> list[dict[str, object]]:
    groups: list[tuple[dict[str, str], pa.Table]]
    if partition is None:
        groups = [({}, data)]
    else:
        column = data.column(partition)
        groups = []
        for value in pc.unique(column).to_pylist():
            rows = data.filter(pc.equal(column, pa.scalar(value, column.type)))
            groups.append(({partition: partition_text(value)}, rows.drop_columns([partition])))
    adds: list[dict[str, object]] = []
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


def _commit(log_dir: Path, actions: list[dict[str, object]], version: int,
            skip_taken: bool) -> int:
    """Create `_delta_log/{version}.json` atomically, if absent. A blind append may move
    past versions others took; any other commit must not, and fails instead."""
    staged = log_dir / f".{uuid.uuid4()}.json.tmp"
    staged.write_text("\n".join(json.dumps(a, separators=(",", ":")) for a in actions) + "\n")
    try:
        for _ in range(_MAX_RACE if skip_taken else 1):
            try:
                os.link(staged, log_dir / f"{version:020d}.json")
                return version
            except FileExistsError:
                version += 1
        raise RuntimeError(f"could not commit to {log_dir.parent}: version {version - 1} "
                           "was taken by another writer")
    finally:
        staged.unlink()


def _info(operation: str, mode: str, partition: str | None, files: int,
          rows: int) -> dict[str, object]:
    return {"commitInfo": {
        "timestamp": int(time.time() * 1000), "operation": operation,
        "operationParameters": {"mode": mode,
                                "partitionBy": json.dumps([partition] if partition else [])},
        "isBlindAppend": mode == "Append", "clientVersion": f"flywheel-{VERSION}",
        "operationMetrics": {"num_added_files": files, "num_added_rows": rows},
    }}


def replace_all(base: Path, files: list[Path], schema: pa.Schema, head: int,
                table_id: str | None, configuration: dict[str, str],
                current: list[tuple[str, int]]) -> int:
    """Publish `files` (already written inside `base`) as the whole new content of the
    table, in one commit after version `head`: the files in `current` (path, size) are
    removed, the new schema recorded. Version 0 also creates the table."""
    import deltalake

    now_ms = int(time.time() * 1000)
    nullable = pa.schema([f.with_nullable(True) for f in schema])
    rows = [pq.ParquetFile(f).metadata.num_rows for f in files]
    actions: list[dict[str, object]] = [_info("WRITE", "Overwrite", None, len(files),
                                              sum(rows))]
    if head < 0:
        actions.append({"protocol": {"minReaderVersion": 1, "minWriterVersion": 4}})
    actions.append({"metaData": {
        "id": table_id or str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
        "schemaString": deltalake.Schema.from_arrow(nullable).to_json(),
        "partitionColumns": [], "configuration": configuration, "createdTime": now_ms}})
    actions.extend({"remove": {"path": path, "deletionTimestamp": now_ms, "dataChange": True,
                               "extendedFileMetadata": True, "partitionValues": {},
                               "size": size}} for path, size in current)
    actions.extend({"add": {"path": f.relative_to(base).as_posix(), "partitionValues": {},
                            "size": f.stat().st_size, "modificationTime": now_ms,
                            "dataChange": True, "stats": json.dumps({"numRecords": n})}}
                   for f, n in zip(files, rows, strict=True))
    log_dir = base / "_delta_log"
    log_dir.mkdir(parents=True, exist_ok=True)
    return _commit(log_dir, actions, head + 1, skip_taken=False)


@dataclass(slots=True)
class StagedAppend:
    """Files written for an append that is not committed yet (see `stage_append`)."""

    adds: list[dict[str, object]]
    rows: int
    partition: str | None
    metadata: dict[str, object] | None = None
    """A `metaData` action to commit with the files: the table's schema grows."""

    def discard(self, base: Path) -> None:
        """Delete the files of an append that will not be committed."""
        for add in self.adds:
            path = add["add"]["path"]  # type: ignore[index]
            (base / str(path)).unlink(missing_ok=True)


def stage_append(base: Path, partition: str | None, data: pa.Table,
                 metadata: dict[str, object] | None = None) -> StagedAppend:
    """Write `data`'s files into the table's folder; nothing is committed yet, so readers
    do not see them. Everything that can fail for reasons of the data fails here."""
    return StagedAppend(_write_files(base, partition, data), data.num_rows, partition,
                        metadata)


def publish_append(base: Path, staged: StagedAppend, head: int) -> int:
    """Commit staged files after version `head` (or after whatever came since); returns the
    version of the new commit."""
    info = _info("WRITE", "Append", staged.partition, len(staged.adds), staged.rows)
    actions: list[dict[str, object]] = [info]
    if staged.metadata is not None:
        actions.append({"metaData": staged.metadata})
    actions.extend(staged.adds)
    # A blind append may move past versions others took; one that changes the schema
    # must not (it was decided against the schema of `head`).
    return _commit(base / "_delta_log", actions, head + 1,
                   skip_taken=staged.metadata is None)


def append(base: Path, partition: str | None, data: pa.Table, head: int) -> int:
    """Commit `data` after version `head` (or after whatever came since); returns the
    version of the new commit."""
    return publish_append(base, stage_append(base, partition, data), head)


def rewrite(base: Path, *, removed: list[FileAction], added: list[FileAction],
            head: int) -> int:
    """Commit, as version `head + 1`, files that replace others with the same rows (a
    compaction: `dataChange` false, so change feeds and readers from an offset skip it).
    The caller makes sure `removed` are still in the table and nobody commits meanwhile."""
    now_ms = int(time.time() * 1000)
    info = _info("OPTIMIZE", "Optimize", None, len(added), sum(f.rows for f in added))
    actions: list[dict[str, object]] = [info]
    actions.extend({"remove": {"path": f.path, "deletionTimestamp": now_ms,
                               "dataChange": False, "extendedFileMetadata": True,
                               "partitionValues": f.partition, "size": f.size}}
                   for f in removed)
    actions.extend({"add": {"path": f.path, "partitionValues": f.partition, "size": f.size,
                            "modificationTime": now_ms, "dataChange": False,
                            "stats": json.dumps({"numRecords": f.rows})}} for f in added)
    return _commit(base / "_delta_log", actions, head + 1, skip_taken=False)
