"""The log: one Delta table per schema MAJOR, plus the bad-rows table, under one root."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from flywheel._core.errors import InputError
from flywheel.log.badrows import BAD_ROWS_SCHEMA, BAD_ROWS_TABLE
from flywheel.log.badrows import PARTITION as BAD_ROWS_PARTITION
from flywheel.log.compaction import CompactionResult, compact
from flywheel.log.dedupe import Claim, EventIdIndex, block_ids, new_block_prefix
from flywheel.log.lock import FileLock
from flywheel.log.tables import DeltaHandle, TableStats, is_local
from flywheel.schemas.keys import LogTableRef


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    version: int | None  # None when every row was a duplicate
    kept: list[bool]  # per input row: stored (True) or a duplicate (False)

    @property
    def stored(self) -> int:
        return sum(self.kept)


class LogStore:
    """Paths, handles, the event-id index and the writer lock of one project's log."""

    def __init__(self, root: str, state_dir: Path) -> None:
        self.root = root.rstrip("/")
        self._handles: dict[str, DeltaHandle] = {}
        self._handles_lock = threading.Lock()
        self._state_dir = state_dir
        self._index: EventIdIndex | None = None
        self.lock = FileLock(state_dir / "log.lock")
        self._compaction_locks: dict[str, FileLock] = {}

    @property
    def index(self) -> EventIdIndex:
        if self._index is None:
            self._index = EventIdIndex(self._state_dir / "event_ids.sqlite")
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def handle(self, ref: LogTableRef) -> DeltaHandle:
        return self._handle(f"{self.root}/log/{ref.path}", "event_date")

    def bad_rows(self) -> DeltaHandle:
        return self._handle(f"{self.root}/{BAD_ROWS_TABLE}", BAD_ROWS_PARTITION)

    def _handle(self, uri: str, partition: str) -> DeltaHandle:
        with self._handles_lock:
            handle = self._handles.get(uri)
            if handle is None:
                handle = self._handles[uri] = DeltaHandle(uri, partition)
            return handle

    def tables(self) -> list[LogTableRef]:
        """Log tables that exist on storage."""
        if not is_local(self.root):
            return []
        base = Path(self.root.removeprefix("file://")) / "log"
        found = []
        for version_dir in base.glob("*/*/v*"):
            if (version_dir / "_delta_log").is_dir() and version_dir.name[1:].isdigit():
                found.append(LogTableRef(version_dir.parent.parent.name,
                                         version_dir.parent.name, int(version_dir.name[1:])))
        return sorted(found)

    def append_events(self, ref: LogTableRef, schema: pa.Schema, data: pa.Table) -> AppendOutcome:
        """Store the rows whose `event_id` is new, giving id-less rows a block of fresh ids.

        Call with `self.lock` held, so that check, commit and index update are one step."""
        handle = self.handle(ref)
        handle.create(schema)
        index = self.index
        index.catch_up(str(ref), handle.version(), lambda a, b: _ids(handle, a, b))
        with index.claiming() as claim:
            keep = _fresh(data.column("event_id"), claim)
            rows = data if all(keep) else data.filter(pa.array(keep))
            if not rows.num_rows:
                return AppendOutcome(None, keep)
            given = rows.column("event_id").combine_chunks()
            missing = given.null_count
            blocks = []
            if missing:
                prefix = new_block_prefix()
                blocks.append((prefix, missing))
                filled = pc.replace_with_mask(given, pc.is_null(given),
                                              block_ids(prefix, missing))
                rows = rows.set_column(0, "event_id", filled)
            version = handle.append(rows.cast(schema), just_refreshed=True)
            claim.done(str(ref), version, blocks)
        return AppendOutcome(version, keep)

    def append_bad_rows(self, data: pa.Table) -> int:
        handle = self.bad_rows()
        handle.create(BAD_ROWS_SCHEMA)
        return handle.append(data)

    def read(self, ref: LogTableRef, as_of: int | None = None,
             columns: list[str] | None = None) -> pa.Table:
        handle = self.handle(ref)
        if not handle.exists():
            raise InputError(f"log table {ref} has no events yet")
        head = handle.version() or 0
        if as_of is not None and not 0 <= as_of <= head:
            raise InputError(f"log table {ref} has offsets 0..{head}; {as_of} is not one of them")
        return handle.read(as_of, columns)

    def stats(self, ref: LogTableRef) -> TableStats | None:
        return self.handle(ref).stats()

    def compact(self, handle: DeltaHandle, *, wait: bool = True) -> CompactionResult:
        """Merge the small files of a log table (or of bad rows), safely beside writers in
        this and other processes; `wait=False` skips a table another process compacts."""
        with self._handles_lock:
            lock = self._compaction_locks.get(handle.uri)
            if lock is None:
                name = hashlib.sha256(handle.uri.encode()).hexdigest()[:16]
                lock = FileLock(self._state_dir / "locks" / f"compact-{name}.lock")
                self._compaction_locks[handle.uri] = lock
        return compact(handle, self.lock, lock, wait=wait)


def _fresh(ids: pa.ChunkedArray, claim: Claim) -> list[bool]:
    """Per row: True for an id-less row or the first sighting of a new id."""
    if ids.null_count == len(ids):
        return [True] * len(ids)
    values: list[str | None] = ids.to_pylist()
    new = claim.new([v for v in values if v is not None])
    keep = []
    for value in values:
        if value is None:
            keep.append(True)
        elif value in new:
            keep.append(True)
            new.discard(value)  # later copies in the same batch are duplicates
        else:
            keep.append(False)
    return keep


def _ids(handle: DeltaHandle, after: int, upto: int) -> list[str]:
    changes = handle.changes(after, upto, columns=["event_id"])
    return changes.column("event_id").to_pylist() if changes.num_rows else []
