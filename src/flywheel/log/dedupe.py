"""The event-id index that makes the log store each event at most once.

Two kinds of ids are indexed differently. Ids that clients send are kept one by one.
Ids the log assigns itself are made in blocks, one block per commit: a random prefix and a
12-digit counter (`1f0c2e7a-93b1-4c55-a1d2-000000000041`, still a valid UUID string), so a
whole commit's worth costs one row. An id of block form is known when its block covers it.

The index is a cache of the log, not a source of truth: each log table's row records the
last commit it covers, and commits after it (say, by a process killed between its log
commit and its index update) are read back from the log before the next check.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

_CHUNK = 20_000
_BLOCK_ID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-)(\d{12})$")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS blocks (prefix TEXT PRIMARY KEY, size INTEGER NOT NULL)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS covered (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL)",
)


def new_block_prefix() -> str:
    r = os.urandom(10).hex()
    variant = "89ab"[int(r[16], 16) & 3]
    return f"{r[0:8]}-{r[8:12]}-4{r[13:16]}-{variant}{r[17:20]}-"


def block_ids(prefix: str, size: int) -> pa.Array:
    """`size` ids of the block `prefix`, built column-wise."""
    counters = pc.utf8_lpad(pa.array(range(size), pa.int64()).cast(pa.string()), 12, "0")
    return pc.binary_join_element_wise(prefix, counters, "")


class EventIdIndex:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
        # synchronous=OFF: a killed process loses nothing (the OS has the pages); an OS
        # crash may lose the last transactions, which `catch_up` reads back from the log.
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-262144",
                       "temp_store=MEMORY"):
            self._db.execute(f"PRAGMA {pragma}")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def covered(self, table: str) -> int:
        row = self._db.execute("SELECT version FROM covered WHERE tbl = ?", (table,)).fetchone()
        return int(row[0]) if row else -1

    def _in_blocks(self, ids: Iterable[str]) -> set[str]:
        by_prefix: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for event_id in ids:
            match = _BLOCK_ID.match(event_id)
            if match:
                by_prefix[match.group(1)].append((event_id, int(match.group(2))))
        found: set[str] = set()
        if by_prefix:
            sizes = dict(self._query("SELECT prefix, size FROM blocks WHERE prefix IN "
                                     "(SELECT value FROM json_each(?))", list(by_prefix)))
            for prefix, members in by_prefix.items():
                size = sizes.get(prefix, 0)
                found.update(i for i, counter in members if counter < size)
        return found

    def _query(self, sql: str, values: list[str]) -> Iterable[tuple[str, int]]:
        for start in range(0, len(values), _CHUNK):
            yield from self._db.execute(sql, (json.dumps(values[start:start + _CHUNK]),))

    @contextmanager
    def claiming(self) -> Iterator[Claim]:
        """A transaction in which ids are claimed before the log commit and kept only if
        `Claim.done` runs: a failed commit rolls the claims back. A crash after the log
        commit but before `done` leaves the ids to `catch_up`, which reads them back."""
        self._db.execute("BEGIN IMMEDIATE")
        claim = Claim(self)
        try:
            yield claim
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT" if claim.finished else "ROLLBACK")

    def record(self, table: str, version: int, ids: Iterable[str],
               blocks: Iterable[tuple[str, int]] = ()) -> None:
        """Add `ids` and id `blocks` committed to `table` at `version`, in one transaction."""
        with self.claiming() as claim:
            self._db.executemany("INSERT OR IGNORE INTO seen (id) VALUES (?)",
                                 ((i,) for i in ids))
            claim.done(table, version, blocks)

    def catch_up(self, table: str, head: int | None,
                 read_ids: Callable[[int, int], list[str]]) -> int:
        """Index commits in (covered, head] using `read_ids(after, upto)`; returns how many."""
        if head is None:
            return 0
        covered = self.covered(table)
        if head <= covered:
            return 0
        ids = read_ids(covered, head)
        singles, blocks = split_blocks(ids)
        self.record(table, head, singles, blocks)
        return len(ids)


class Claim:
    """Ids claimed inside an open index transaction (see `EventIdIndex.claiming`)."""

    def __init__(self, index: EventIdIndex) -> None:
        self._index = index
        self.finished = False

    def new(self, ids: Sequence[str]) -> set[str]:
        """Claim `ids`; returns those not in the log before (each claimed once)."""
        index = self._index
        taken = index._in_blocks(ids)
        taken.update(row[0] for row in index._query(
            "SELECT id FROM seen WHERE id IN (SELECT value FROM json_each(?))",
            [i for i in ids if i not in taken]))
        # Usually every id is new: insert them in SQL, without a Python step per row.
        fresh = [i for i in dict.fromkeys(ids) if i not in taken]
        for _ in index._query("INSERT INTO seen (id) SELECT value FROM json_each(?)", fresh):
            pass
        return set(fresh)

    def done(self, table: str, version: int, blocks: Iterable[tuple[str, int]] = ()) -> None:
        db = self._index._db
        db.executemany("INSERT INTO blocks (prefix, size) VALUES (?, ?) ON CONFLICT (prefix)"
                       " DO UPDATE SET size = max(size, excluded.size)", blocks)
        db.execute("INSERT INTO covered (tbl, version) VALUES (?, ?) ON CONFLICT (tbl) "
                   "DO UPDATE SET version = max(version, excluded.version)", (table, version))
        self.finished = True


def split_blocks(ids: Sequence[str]) -> tuple[list[str], list[tuple[str, int]]]:
    """Ids read back from the log: whole blocks (counters 0..n-1 all present) and the rest."""
    counters: dict[str, set[int]] = defaultdict(set)
    singles = []
    for event_id in ids:
        match = _BLOCK_ID.match(event_id)
        if match:
            counters[match.group(1)].add(int(match.group(2)))
        else:
            singles.append(event_id)
    blocks = []
    for prefix, seen in counters.items():
        if len(seen) == max(seen) + 1:
            blocks.append((prefix, len(seen)))
        else:  # not a block the log made: index each id on its own
            singles.extend(f"{prefix}{c:012d}" for c in seen)
    return singles, blocks
