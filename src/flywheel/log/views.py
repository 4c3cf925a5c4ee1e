"""Read-only views of the log for people: stats, tail, bad-row summaries."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from flywheel.log.badrows import table_of
from flywheel.log.dedupe import Receipts
from flywheel.log.store import LogStore
from flywheel.schemas.keys import LogTableRef
from flywheel.tables.delta import COMMIT_VERSION


@dataclass(frozen=True, slots=True)
class LogTableStats:
    table: str
    events: int
    bad_rows: dict[str, int]
    files: int
    bytes: int
    last_offset: int | None


UNATTRIBUTED = "(no known schema)"
"""Where stats put rejected inputs whose schema names no log table of the project."""


def bad_row_counts(store: LogStore) -> Counter[tuple[str, str]]:
    """(log table or '-', reason) -> distinct bad rows, over the whole bad-rows table."""
    handle = store.bad_rows()
    counts: Counter[tuple[str, str]] = Counter()
    if not handle.exists():
        return counts
    data = handle.read(columns=["schema", "reason"])
    if not data.num_rows:
        return counts
    grouped = data.group_by(["schema", "reason"]).aggregate([([], "count_all")])
    for schema, reason, count in zip(grouped.column("schema").to_pylist(),
                                     grouped.column("reason").to_pylist(),
                                     grouped.column("count_all").to_pylist(), strict=True):
        counts[(table_of(schema), reason)] += count
    return counts


def log_stats(store: LogStore, known: list[LogTableRef]) -> list[LogTableStats]:
    bad = bad_row_counts(store)
    refs = sorted(set(known) | set(store.tables()))
    rows = []
    for ref in refs:
        stats = store.stats(ref)
        reasons = {reason: n for (table, reason), n in bad.items() if table == str(ref)}
        rows.append(LogTableStats(str(ref), stats.rows if stats else 0, reasons,
                                  stats.files if stats else 0, stats.bytes if stats else 0,
                                  stats.version if stats else None))
    names = {str(r) for r in refs}
    unattributed: Counter[str] = Counter()
    for (table, reason), n in bad.items():
        if table not in names:
            unattributed[reason] += n
    if unattributed:
        rows.append(LogTableStats(UNATTRIBUTED, 0, dict(unattributed), 0, 0, None))
    return rows


def receipt_stats(store: LogStore, known: list[LogTableRef]) -> list[Receipts]:
    """Per log table and door: received = accepted + rejected + duplicates. Inputs naming
    no table of the project are counted under `(no known schema)`."""
    names = {str(r) for r in set(known) | set(store.tables())}
    merged: dict[tuple[str, str], list[int]] = {}
    for row in store.receipts():
        table = row.table if row.table in names else UNATTRIBUTED
        counts = merged.setdefault((table, row.door), [0, 0, 0])
        for i, n in enumerate((row.accepted, row.rejected, row.duplicates)):
            counts[i] += n
    return [Receipts(table, door, *counts) for (table, door), counts in sorted(merged.items())]


def tail(store: LogStore, ref: LogTableRef, count: int, as_of: int | None = None) -> pa.Table:
    """The last `count` events committed (as of offset `as_of`), oldest first."""
    handle = store.handle(ref)
    head = store.offset(ref, as_of)
    if head is None or count <= 0:
        return pa.table({})
    span = 1
    while True:
        start = max(head - span, -1)
        rows = handle.changes(start, head)
        if rows.num_rows >= count or start < 0:
            break
        span *= 4
    if not rows.num_rows:
        return rows
    rows = rows.sort_by([(COMMIT_VERSION, "ascending"), ("ingested_at", "ascending")])
    return rows.slice(max(rows.num_rows - count, 0))
