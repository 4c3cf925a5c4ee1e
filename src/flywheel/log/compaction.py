"""Compaction of log tables: small files merged into big ones, safely beside any writers.

Two concurrent OPTIMIZE commits of delta-rs can both remove the same files and both
succeed (its conflict check lets concurrent removes through when `dataChange` is false),
which doubles rows; and an OPTIMIZE that races fast local appends loses every retry. So a
local table is compacted here, in three steps, each guarded by what makes it safe:

1. Plan and write the merged files, holding only this table's compaction lock (one
   compaction per table at a time, across processes; it saves the work a second
   compaction would throw away). Appends go on meanwhile.
2. Commit, holding the log's writer lock, which every log commit holds: no append can
   take the version in between, so the commit cannot starve. Before committing it checks
   that every file it removes is still in the table. This check, not the compaction
   lock, is what makes a double removal impossible: it holds even if a lock file is
   deleted or another tool compacted the table.
3. Checkpoint, off the writer lock, so later loads of the table start from there.

A compaction killed at any moment leaves either the old files or the new ones as the
table's content (the commit is one atomic file creation); merged files of a compaction
that never committed are unreferenced and harmless.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.log.lock import FileLock
from flywheel.tables import local_commit
from flywheel.tables.delta import DeltaHandle, is_local

log = logging.getLogger("flywheel.log")

TARGET_FILE_BYTES = 100 * 1024 * 1024
"""Files smaller than this are merged, up to this size per merged file (delta-rs's default)."""


@dataclass(frozen=True, slots=True)
class CompactionResult:
    files_removed: int = 0
    files_added: int = 0
    version: int | None = None
    """The version of the compaction's commit; None when nothing was committed."""
    skipped: str | None = None
    """Why nothing was done, when nothing was: `busy` (another process is compacting this
    table), `conflict` (the files changed under the plan), `nothing to do`."""

    def as_dict(self) -> dict[str, Any]:
        return {"numFilesRemoved": self.files_removed, "numFilesAdded": self.files_added,
                "version": self.version, "skipped": self.skipped}


@dataclass(frozen=True, slots=True)
class _File:
    path: str
    size: int
    rows: int
    partition: dict[str, str]
    modified: int


Committed = Callable[[int, int], None]
"""Called with (the version a compaction read, its own version) under the writer lock."""


def compact(handle: DeltaHandle, writer_lock: FileLock, compaction_lock: FileLock, *,
            wait: bool = True, tiered: bool = False, committed: Committed | None = None,
            target_size: int = TARGET_FILE_BYTES) -> CompactionResult:
    """Merge `handle`'s small files (with `tiered`, only files of about the same size: see
    `_plan`). With `wait=False`, a compaction already running in another process makes
    this return at once (`skipped="busy"`)."""
    if not handle.exists():
        return CompactionResult(skipped="nothing to do")
    if not compaction_lock.acquire(blocking=wait):
        return CompactionResult(skipped="busy")
    try:
        # A table of its own: the writer's handle belongs to the writer's thread.
        table = handle.fresh_table()
        if not (is_local(handle.uri) and DeltaHandle.protocol_is_simple(table)):
            return _compact_with_delta_rs(handle, writer_lock, target_size)
        result = _compact_local(handle, table, writer_lock, target_size, tiered, committed)
        if result.version is not None:
            # The table stands at the compaction's commit or later: no second load.
            table.update_incremental()
            table.create_checkpoint()
        return result
    finally:
        compaction_lock.release()


def _compact_local(handle: DeltaHandle, table: Any, writer_lock: FileLock,
                   target_size: int, tiered: bool = False,
                   committed: Committed | None = None) -> CompactionResult:
    files = _active_files(table, handle.partition)
    bins = _plan(files.values(), target_size, tiered)
    if not bins:
        return CompactionResult(skipped="nothing to do")
    base = Path(handle.uri.removeprefix("file://"))
    schema = pa.schema(table.schema().to_arrow())
    written: list[tuple[list[_File], _File]] = []
    try:
        written = [(group, _merge(base, group, schema, handle.partition)) for group in bins]
        with writer_lock:
            table.update_incremental()
            live = set(_active_files(table, handle.partition))
            removed = [f for group, _ in written for f in group]
            if not live.issuperset(f.path for f in removed):
                _discard(base, [new for _, new in written])
                return CompactionResult(skipped="conflict")
            # Every log commit holds this lock, so the version read now is the head.
            head = int(table.version())
            version = local_commit.rewrite(base, removed=[_action(f) for f in removed],
                                           added=[_action(new) for _, new in written],
                                           head=head)
            if committed is not None:
                committed(head, version)
    except BaseException:
        _discard(base, [new for _, new in written])
        raise
    log.debug("compacted %s: %d files into %d at version %d", handle.uri, len(removed),
              len(written), version)
    return CompactionResult(files_removed=len(removed), files_added=len(written),
                            version=version)


def _active_files(table: Any, partition: str | None) -> dict[str, _File]:
    actions = pa.table(table.get_add_actions(flatten=False)).to_pylist()
    found = {}
    for action in actions:
        values = action.get("partition") or {}
        text = {k: local_commit.partition_text(v) for k, v in values.items()}
        if partition is not None and partition not in text:
            text = {}
        found[action["path"]] = _File(action["path"], int(action["size_bytes"]),
                                      int(action["num_records"] or 0), text,
                                      int(action["modification_time"]))
    return found


def _plan(files: Any, target_size: int, tiered: bool) -> list[list[_File]]:
    """Bins of small files, per partition, in the order they were written, each up to
    `target_size`; a bin of one file is left alone (rewriting it gains nothing).

    `tiered` (automatic compaction) merges files only with files of about their own size
    (tiers a factor of 8 apart, from 64 KiB), once a tier holds `_TIER_FILES`: each row is
    rewritten a few times in its life instead of at every compaction, while the number of
    files stays bounded. Without it, every small file of a partition is merged."""
    groups: dict[tuple[object, ...], list[_File]] = defaultdict(list)
    for f in files:
        if f.size < target_size:
            tier = _tier(f.size) if tiered else 0
            groups[(tuple(sorted(f.partition.items())), tier)].append(f)
    bins: list[list[_File]] = []
    for _, members in sorted(groups.items()):
        if tiered and len(members) < _TIER_FILES:
            continue
        members.sort(key=lambda f: (f.modified, f.path))
        current: list[_File] = []
        size = 0
        for f in members:
            if current and size + f.size > target_size:
                bins.append(current)
                current, size = [], 0
            current.append(f)
            size += f.size
        bins.append(current)
    return [b for b in bins if len(b) > 1]


_TIER_BASE = 64 * 1024
_TIER_FILES = 4


def _tier(size: int) -> int:
    tier = 0
    while size >= _TIER_BASE << (3 * tier):
        tier += 1
    return tier


def _merge(base: Path, group: list[_File], schema: pa.Schema, partition: str | None) -> _File:
    """One file with the rows of `group`, in the table's current schema (files written
    before a column was added get nulls for it). One dataset scan: Arrow reads the files
    on its own threads, without the interpreter."""
    import pyarrow.dataset as ds

    stored = pa.schema([f for f in schema if f.name != partition])
    data = ds.dataset([str(base / f.path) for f in group], schema=stored,
                      format="parquet").to_table()
    folder = "/".join(f"{k}={v}" for k, v in group[0].partition.items())
    name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    relative = f"{folder}/{name}" if folder else name
    pq.write_table(data, base / relative, compression="snappy")
    size = (base / relative).stat().st_size
    return _File(relative, size, data.num_rows, group[0].partition, 0)


def _action(f: _File) -> local_commit.FileAction:
    return local_commit.FileAction(path=f.path, partition=f.partition, size=f.size,
                                   rows=f.rows)


def _discard(base: Path, files: list[_File]) -> None:
    for f in files:
        (base / f.path).unlink(missing_ok=True)


def _compact_with_delta_rs(handle: DeltaHandle, writer_lock: FileLock,
                           target_size: int) -> CompactionResult:
    """Tables this package cannot commit to itself (remote, or a newer protocol): delta-rs
    compacts, while appends wait on the writer lock so that the commit cannot lose races."""
    with writer_lock:
        metrics = handle.compact(target_size)
    return CompactionResult(files_removed=int(metrics.get("numFilesRemoved", 0)),
                            files_added=int(metrics.get("numFilesAdded", 0)),
                            version=handle.version())
