"""The log: one Delta table per schema MAJOR, plus the bad-rows table, under one root."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from flywheel._core.errors import InputError
from flywheel._core.text import first_line
from flywheel.log.badrows import BAD_ROWS_SCHEMA, BAD_ROWS_TABLE, fingerprint, table_of
from flywheel.log.badrows import PARTITION as BAD_ROWS_PARTITION
from flywheel.log.compaction import CompactionResult, compact
from flywheel.log.dedupe import (
    CaughtUp,
    Claim,
    EventIdIndex,
    Receipts,
    block_ids,
    new_block_prefix,
)
from flywheel.log.lock import FileLock
from flywheel.schemas.keys import LogTableRef
from flywheel.tables.delta import DeltaHandle, Staged, TableStats, is_local

log = logging.getLogger("flywheel.log")


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    version: int | None  # None when every row was a duplicate
    kept: list[bool]  # per input row: stored (True) or a duplicate (False)

    @property
    def stored(self) -> int:
        return sum(self.kept)


@dataclass(slots=True)
class GroupOutcome:
    """What one group commit stored."""

    tables: dict[LogTableRef, AppendOutcome] = field(default_factory=dict)
    unstored: dict[LogTableRef, str] = field(default_factory=dict)
    """Tables whose commit failed after another table of the group had committed: why.
    (When nothing could be committed, `commit_group` raises instead.)"""


@dataclass(slots=True)
class _Pending:
    """One table's part of a group commit, between staging and publishing."""

    handle: DeltaHandle
    ref: LogTableRef | None  # None: the bad-rows table
    savepoint: str
    staged: Staged | None  # None: nothing new to store (all duplicates or repeats)
    counts: dict[tuple[str, str], tuple[int, int, int]]  # (table, door) -> (acc, rej, dup)
    keep: list[bool] = field(default_factory=list)
    blocks: list[tuple[str, int]] = field(default_factory=list)
    version: int | None = None


class LogStore:
    """Paths, handles, the event-id index and the writer lock of one project's log."""

    def __init__(self, *, root: str, state_dir: Path) -> None:
        self.root = root.rstrip("/")
        self._handles: dict[str, DeltaHandle] = {}
        self._handles_lock = threading.Lock()
        self._state_dir = state_dir
        self._index: EventIdIndex | None = None
        self.lock = FileLock(state_dir / "log.lock")
        self._compaction_locks: dict[str, FileLock] = {}
        self._names: dict[str, str] = {}

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
        return self._handle(f"{self.root}/log/{ref.path}", "event_date", str(ref))

    def bad_rows(self) -> DeltaHandle:
        return self._handle(f"{self.root}/{BAD_ROWS_TABLE}", BAD_ROWS_PARTITION,
                            BAD_ROWS_TABLE)

    def _handle(self, uri: str, partition: str, name: str) -> DeltaHandle:
        with self._handles_lock:
            handle = self._handles.get(uri)
            if handle is None:
                handle = self._handles[uri] = DeltaHandle(uri, partition)
                self._names[uri] = name  # the table's name in the id index
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

    def commit_group(self, tables: Mapping[LogTableRef, tuple[pa.Schema, pa.Table]],
                     bad_rows: pa.Table | None = None) -> GroupOutcome:
        """Store the events whose `event_id` is new (id-less rows get a block of fresh ids)
        and the bad rows whose input is new, counting every receipt. Call with
        `self.lock` held, so that check, commit and index update are one step.

        All or nothing: every table's files are written before the first commit, so
        whatever can fail because of the data fails while nothing is visible, and then
        nothing is stored (this raises). Bad rows commit first, so a rejected input is
        never lost behind stored events. Only an I/O failure between two tables' commits
        can store a part; the outcome names the tables left out, and their claims are
        given up so that a retry stores them."""
        refs = sorted(tables)
        for ref in refs:
            self._catch_up_events(ref, tables[ref][0])
        has_bad = bad_rows is not None and bad_rows.num_rows > 0
        if has_bad:
            self._catch_up_bad_rows()
        pending: list[_Pending] = []
        with self.index.claiming() as claim:
            try:
                if has_bad:
                    assert bad_rows is not None
                    pending.append(self._stage_bad_rows(claim, bad_rows))
                pending.extend(self._stage_events(claim, ref, *tables[ref]) for ref in refs)
            except BaseException:
                _discard(pending)
                raise
            return _publish(claim, pending)

    def _catch_up_events(self, ref: LogTableRef, schema: pa.Schema | None = None) -> None:
        handle = self.handle(ref)
        if schema is not None:
            handle.create(schema)
        self.index.catch_up(str(ref), handle.version(),
                            lambda after, upto: _read_back_events(handle, str(ref), after, upto))

    def _catch_up_bad_rows(self) -> None:
        handle = self.bad_rows()
        handle.create(BAD_ROWS_SCHEMA)
        self.index.catch_up(BAD_ROWS_TABLE, handle.version(),
                            lambda after, upto: _read_back_bad_rows(handle, after, upto))

    def _stage_events(self, claim: Claim, ref: LogTableRef, schema: pa.Schema,
                      data: pa.Table) -> _Pending:
        handle = self.handle(ref)
        savepoint = claim.savepoint()
        keep = _fresh(data.column("event_id"), claim)
        counts = _door_counts(str(ref), data.column("source"), keep)
        rows = data if all(keep) else data.filter(pa.array(keep))
        pending = _Pending(handle, ref, savepoint, None, counts, keep)
        if not rows.num_rows:
            return pending
        given = rows.column("event_id").combine_chunks()
        missing = given.null_count
        if missing:
            prefix = new_block_prefix()
            pending.blocks.append((prefix, missing))
            filled = pc.replace_with_mask(given, pc.is_null(given), block_ids(prefix, missing))
            rows = rows.set_column(0, "event_id", filled)
        pending.staged = handle.stage(rows.cast(schema), just_refreshed=True)
        return pending

    def _stage_bad_rows(self, claim: Claim, data: pa.Table) -> _Pending:
        handle = self.bad_rows()
        savepoint = claim.savepoint()
        first = claim.new_bad(data.column("fingerprint").to_pylist())
        counts: dict[tuple[str, str], tuple[int, int, int]] = {}
        for schema, door in zip(data.column("schema").to_pylist(),
                                data.column("door").to_pylist(), strict=True):
            key = (table_of(schema), door)
            accepted, rejected, duplicates = counts.get(key, (0, 0, 0))
            counts[key] = (accepted, rejected + 1, duplicates)
        rows = data if all(first) else data.filter(pa.array(first))
        staged = handle.stage(rows.cast(BAD_ROWS_SCHEMA)) if rows.num_rows else None
        return _Pending(handle, None, savepoint, staged, counts)

    def read_bad_rows(self) -> pa.Table:
        """Every bad row, one per distinct input, with `receipts`: how often it came."""
        handle = self.bad_rows()
        if not handle.exists():
            return BAD_ROWS_SCHEMA.empty_table().append_column(
                "receipts", pa.array([], pa.int64()))
        with self.lock:
            self._catch_up_bad_rows()
            counts = self.index.bad_receipts()
        data = handle.read()
        prints = data.column("fingerprint").to_pylist()
        if None in prints:  # rows written before fingerprints were stored
            prints = [p or fingerprint(door, raw) for p, door, raw in zip(
                prints, data.column("door").to_pylist(), data.column("raw").to_pylist(),
                strict=True)]
        return data.append_column("receipts",
                                  pa.array([counts.get(p, 1) for p in prints], pa.int64()))

    def receipts(self) -> list[Receipts]:
        """Per (log table, door): events accepted, rejected and answered as duplicates."""
        with self.lock:  # counts of commits missing from the index are read back first
            for ref in self.tables():
                self._catch_up_events(ref)
            if self.bad_rows().exists():
                self._catch_up_bad_rows()
            return self.index.receipts()

    def read(self, ref: LogTableRef, as_of: int | None = None,
             columns: list[str] | None = None) -> pa.Table:
        """The table as of offset `as_of` (default: its newest); the one place offsets
        are checked."""
        handle = self.handle(ref)
        if self.offset(ref, as_of) is None:
            raise InputError(f"log table {ref} has no events yet")
        return handle.read(as_of, columns)

    def offset(self, ref: LogTableRef, as_of: int | None = None) -> int | None:
        """The offset a read of `ref` as of `as_of` sees: `as_of` itself, once checked to
        be one of the table's offsets, or (None given) its newest; None: no events yet."""
        head = self.handle(ref).version()
        if as_of is None:
            return head
        if head is None or not 0 <= as_of <= head:
            span = "has no events yet" if head is None else f"has offsets 0..{head}"
            raise InputError(f"log table {ref} {span}; {as_of} is not one of them")
        return as_of

    def stats(self, ref: LogTableRef) -> TableStats | None:
        return self.handle(ref).stats()

    def compact(self, handle: DeltaHandle, *, wait: bool = True,
                tiered: bool = False) -> CompactionResult:
        """Merge the small files of a log table (or of bad rows), safely beside writers in
        this and other processes; `wait=False` skips a table another process compacts;
        `tiered` merges only files of about the same size (the background policy)."""
        with self._handles_lock:
            lock = self._compaction_locks.get(handle.uri)
            if lock is None:
                name = hashlib.sha256(handle.uri.encode()).hexdigest()[:16]
                lock = FileLock(self._state_dir / "locks" / f"compact-{name}.lock")
                self._compaction_locks[handle.uri] = lock
        name = self._names[handle.uri]

        def committed(read: int, version: int) -> None:
            # A compaction adds no events: an index that covered the table still does.
            self.index.advance(name, read, version)

        return compact(handle, self.lock, lock, wait=wait, tiered=tiered, committed=committed)


def _fresh(ids: pa.ChunkedArray, claim: Claim) -> list[bool]:
    """Per row: True for an id-less row or the first sighting of a new id."""
    if ids.null_count == len(ids):
        return [True] * len(ids)
    values: list[str | None] = ids.to_pylist()
    new = claim.new([v for v in values if v is not None])
    if len(new) == len(values):  # every id new and distinct: the usual case, no loop
        return [True] * len(values)
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


def _door_counts(table: str, doors: pa.ChunkedArray, keep: list[bool],
                 ) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(table, door) -> (accepted, 0, duplicates), counted column-wise."""
    mask = pa.array(keep, pa.bool_())
    counts: dict[tuple[str, str], tuple[int, int, int]] = {}
    stored = doors if all(keep) else doors.filter(mask)
    for door, n in _value_counts(stored):
        counts[(table, door)] = (n, 0, 0)
    if not all(keep):
        for door, n in _value_counts(doors.filter(pc.invert(mask))):
            accepted, _, _ = counts.get((table, door), (0, 0, 0))
            counts[(table, door)] = (accepted, 0, n)
    return counts


def _value_counts(values: pa.ChunkedArray) -> list[tuple[str, int]]:
    if not len(values):
        return []
    found = pc.value_counts(values)
    return list(zip(found.field("values").to_pylist(), found.field("counts").to_pylist(),
                    strict=True))


def _publish(claim: Claim, pending: list[_Pending]) -> GroupOutcome:
    outcome = GroupOutcome()
    committed: list[_Pending] = []
    for position, part in enumerate(pending):
        if part.staged is not None:
            try:
                part.version = part.handle.publish(part.staged)
            except Exception as exc:
                if not any(p.version is not None for p in committed):
                    _discard(pending)
                    raise
                # Savepoints nest: this undoes the claims of this part and every later one.
                claim.undo(part.savepoint)
                _discard(pending[position:])
                reason = first_line(exc)
                log.error("log commit of %s failed after other tables of its group had "
                          "committed: %s", part.handle.uri, reason)
                for rest in pending[position:]:
                    if rest.ref is not None:
                        outcome.unstored[rest.ref] = reason
                break
        committed.append(part)
    # Written after any undo, which would take them back too.
    for part in committed:
        if part.version is not None:
            claim.done(BAD_ROWS_TABLE if part.ref is None else str(part.ref), part.version,
                       part.blocks)
        for (table, door), (accepted, rejected, duplicates) in part.counts.items():
            claim.count(table, door, accepted=accepted, rejected=rejected,
                        duplicates=duplicates)
        if part.ref is not None:
            outcome.tables[part.ref] = AppendOutcome(part.version, part.keep)
    return outcome


def _discard(pending: list[_Pending]) -> None:
    for part in pending:
        if part.staged is not None and part.version is None:
            part.handle.discard(part.staged)


def _read_back_events(handle: DeltaHandle, table: str, after: int, upto: int) -> CaughtUp:
    changes = handle.changes(after, upto, columns=["event_id", "source"])
    if not changes.num_rows:
        return CaughtUp()
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for door, n in Counter(changes.column("source").to_pylist()).items():
        counts[(table, door)] = (n, 0)
    return CaughtUp(ids=changes.column("event_id").to_pylist(), counts=counts)


def _read_back_bad_rows(handle: DeltaHandle, after: int, upto: int) -> CaughtUp:
    names = handle.schema().names
    wanted = ["door", "schema", "raw", *(["fingerprint"] if "fingerprint" in names else [])]
    changes = handle.changes(after, upto, columns=wanted)
    found = CaughtUp(fingerprints=[])
    if not changes.num_rows:
        return found
    stored = (changes.column("fingerprint").to_pylist() if "fingerprint" in wanted
              else [None] * changes.num_rows)
    counts: Counter[tuple[str, str]] = Counter()
    for door, schema, raw, print_ in zip(changes.column("door").to_pylist(),
                                         changes.column("schema").to_pylist(),
                                         changes.column("raw").to_pylist(), stored,
                                         strict=True):
        assert found.fingerprints is not None
        found.fingerprints.append(print_ or fingerprint(door, raw))
        counts[(table_of(schema), door)] += 1
    found.counts = {key: (0, n) for key, n in counts.items()}
    return found
