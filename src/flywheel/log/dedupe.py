"""The event-id index that makes the log store each event at most once, the fingerprints
that keep one bad row per distinct rejected input, and the receipt counters.

Two kinds of ids are indexed differently. Ids that clients send are kept one by one.
Ids the log assigns itself are made in blocks, one block per commit: a random prefix and a
12-digit counter (`1f0c2e7a-93b1-4c55-a1d2-000000000041`, still a valid UUID string), so a
whole commit's worth costs one row. An id of block form is known when its block covers it.
Ids of block form that are not a whole block (the ids a file derives from its rows'
positions, say) are kept as runs of consecutive counters, one row per run.

The index is a cache of the log, not a source of truth: each log table's row records the
last commit it covers, and commits after it (say, by a process killed between its log
commit and its index update) are read back from the log before the next check.

Beside the ids, the index keeps, in the same transactions as the claims, what the log
cannot tell by itself: how often each rejected input was received, and per log table and
door how many events were accepted, rejected and answered as duplicates. The accepted and
bad-row counts of commits read back by `catch_up` are counted from the log, so received =
accepted + rejected + duplicates holds for every answer that was given.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

_CHUNK = 20_000
_BLOCK_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9]{12}$"
# Digits and ends in ASCII (no Unicode digits, no `$` before a final newline): an id of
# block form is exactly one string.
_BLOCK_ID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-)([0-9]{12})")
_PREFIX = 24
"""Characters of a block id before its counter."""
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS blocks (prefix TEXT PRIMARY KEY, size INTEGER NOT NULL)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS runs (prefix TEXT NOT NULL, start INTEGER NOT NULL,"
    " stop INTEGER NOT NULL, PRIMARY KEY (prefix, start)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS covered (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bad_seen (fingerprint TEXT PRIMARY KEY,"
    " receipts INTEGER NOT NULL) WITHOUT ROWID",
)
_COUNTS = ("CREATE TABLE counts (tbl TEXT NOT NULL, door TEXT NOT NULL,"
           " accepted INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,"
           " duplicates INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tbl, door))")


_ESCAPE = "\x01"


def _needs_keys(ids: Sequence[str]) -> bool:
    joined = "".join(ids)
    return "\x00" in joined or _ESCAPE in joined


def _key(event_id: str) -> str:
    """The id as the index holds it. SQLite's JSON functions end a text value at NUL, so
    an id holding one is indexed as the hex of its UTF-8 behind a mark; so is an id that
    starts with the mark itself, which keeps the mapping one to one."""
    if "\x00" in event_id or event_id.startswith(_ESCAPE):
        return _ESCAPE + event_id.encode("utf-8").hex()
    return event_id


def new_block_prefix() -> str:
    r = os.urandom(10).hex()
    variant = "89ab"[int(r[16], 16) & 3]
    return f"{r[0:8]}-{r[8:12]}-4{r[13:16]}-{variant}{r[17:20]}-"


def block_ids(prefix: str, size: int) -> pa.Array:
    """`size` ids of the block `prefix`, built column-wise."""
    counters = pc.utf8_lpad(pa.array(range(size), pa.int64()).cast(pa.string()), 12, "0")
    return pc.binary_join_element_wise(prefix, counters, "")


@dataclass(frozen=True, slots=True)
class Receipts:
    """Events received at one door for one log table (`-`: inputs that name none)."""

    table: str
    door: str
    accepted: int
    rejected: int
    duplicates: int

    @property
    def received(self) -> int:
        return self.accepted + self.rejected + self.duplicates


@dataclass(slots=True)
class CaughtUp:
    """What commits missing from the index held: their ids (or, for bad rows, the
    fingerprints of their inputs) and (table, door) -> (accepted, rejected) counts."""

    ids: list[str] = field(default_factory=list)
    fingerprints: list[str] | None = None
    counts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


class EventIdIndex:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
        # synchronous=OFF: a killed process loses nothing (the OS has the pages); an OS
        # crash may lose the last transactions: `catch_up` reads their ids, accepted
        # events and bad rows back from the log; their duplicate counts are lost.
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-262144",
                       "temp_store=MEMORY"):
            self._db.execute(f"PRAGMA {pragma}")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._add_counts()

    def _add_counts(self) -> None:
        """An index made before the counters existed re-derives everything from the log
        once (its coverage is dropped), so the counts include the events stored before."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            exists = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                      "AND name = 'counts'").fetchone()
            if not exists:
                self._db.execute(_COUNTS)
                self._db.execute("DELETE FROM covered")
                self._db.execute("DELETE FROM bad_seen")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def covered(self, table: str) -> int:
        row = self._db.execute("SELECT version FROM covered WHERE tbl = ?", (table,)).fetchone()
        return int(row[0]) if row else -1

    def _covered(self, ids: pa.Array) -> pa.Array:
        """Per id of block form: is it in a block or a run the index holds?"""
        prefixes = pc.utf8_slice_codeunits(ids, 0, _PREFIX)
        counters = pc.utf8_slice_codeunits(ids, _PREFIX).cast(pa.int64())
        distinct = pc.unique(prefixes).to_pylist()
        runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for prefix, size in self._query("SELECT prefix, size FROM blocks WHERE prefix IN "
                                        "(SELECT value FROM json_each(?))", distinct):
            runs[prefix].append((0, size))
        for start in range(0, len(distinct), _CHUNK):
            part = json.dumps(distinct[start:start + _CHUNK])
            for prefix, first, stop in self._db.execute(
                    "SELECT prefix, start, stop FROM runs WHERE prefix IN "
                    "(SELECT value FROM json_each(?))", (part,)):
                runs[prefix].append((first, stop))
        if not runs:
            return pa.array([False] * len(ids), pa.bool_())
        if len(distinct) == 1 and len(runs[distinct[0]]) <= 16:
            covered = pa.array([False] * len(ids), pa.bool_())
            for first, stop in runs[distinct[0]]:
                inside = pc.and_(pc.greater_equal(counters, pa.scalar(first, pa.int64())),
                                 pc.less(counters, pa.scalar(stop, pa.int64())))
                covered = pc.or_(covered, inside)
            return covered
        spans = {p: _merged(r) for p, r in runs.items()}
        return pa.array([_in_runs(spans.get(p), c) for p, c in zip(
            prefixes.to_pylist(), counters.to_pylist(), strict=True)], pa.bool_())

    def _has_singles(self, prefix: str) -> bool:
        """Are ids of this prefix kept one by one in `seen` (read back before runs were
        kept, or sent by a client before)? Then that prefix is looked up id by id."""
        above = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        found = self._db.execute("SELECT 1 FROM seen WHERE id >= ? AND id < ? LIMIT 1",
                                 (prefix, above)).fetchone()
        return found is not None

    def known(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids, none of block form, the index holds (claims nothing)."""
        keys = {_key(i): i for i in ids} if _needs_keys(ids) else {i: i for i in ids}
        return {keys[row[0]] for row in self._query(
            "SELECT id FROM seen WHERE id IN (SELECT value FROM json_each(?))", list(keys))}

    def add_runs(self, runs: Iterable[tuple[str, int, int]]) -> None:
        self._db.executemany(
            "INSERT INTO runs (prefix, start, stop) VALUES (?, ?, ?) ON CONFLICT (prefix, start)"
            " DO UPDATE SET stop = max(stop, excluded.stop)", runs)

    def _query(self, sql: str, values: list[str]) -> Iterable[tuple[str, int]]:
        for start in range(0, len(values), _CHUNK):
            yield from self._db.execute(sql, (json.dumps(values[start:start + _CHUNK]),))

    @contextmanager
    def claiming(self) -> Iterator[Claim]:
        """A transaction in which ids are claimed before the log commit: an exception rolls
        the claims back; `Claim.savepoint` and `Claim.undo` give up the claims of tables
        whose commit did not happen. A crash after the log commit but before the end of
        the transaction leaves the commit to `catch_up`, which reads it back."""
        self._db.execute("BEGIN IMMEDIATE")
        claim = Claim(self)
        try:
            yield claim
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def catch_up(self, table: str, head: int | None,
                 read_back: Callable[[int, int], CaughtUp]) -> int:
        """Index commits in (covered, head] using `read_back(after, upto)`; returns how
        many rows they held."""
        if head is None:
            return 0
        if head <= self.covered(table):
            return 0
        found = read_back(self.covered(table), head)
        with self.claiming() as claim:
            if found.fingerprints is not None:
                claim.new_bad(found.fingerprints)
                blocks: list[tuple[str, int]] = []
            else:
                singles, blocks = split_blocks(found.ids)
                loose = [i for i in singles if _BLOCK_ID.fullmatch(i)]
                if loose:
                    self.add_runs(runs_of(pa.array(loose, pa.string())))
                    taken = set(loose)
                    singles = [i for i in singles if i not in taken]
                self._db.executemany("INSERT OR IGNORE INTO seen (id) VALUES (?)",
                                     ((_key(i),) for i in singles))
            claim.done(table, head, blocks)
            for (name, door), (accepted, rejected) in found.counts.items():
                claim.count(name, door, accepted=accepted, rejected=rejected)
        return len(found.ids) + len(found.fingerprints or ())

    def advance(self, table: str, covered: int, version: int) -> None:
        """`table` went from `covered` to `version` by commits that add no events (a
        compaction): an index that covered `covered` covers `version`."""
        self._db.execute("UPDATE covered SET version = ? WHERE tbl = ? AND version = ?",
                         (version, table, covered))

    def receipts(self) -> list[Receipts]:
        rows = self._db.execute("SELECT tbl, door, accepted, rejected, duplicates FROM counts "
                                "ORDER BY tbl, door").fetchall()
        return [Receipts(*row) for row in rows]

    def bad_receipts(self) -> dict[str, int]:
        """Fingerprint -> how often that rejected input was received."""
        return dict(self._db.execute("SELECT fingerprint, receipts FROM bad_seen"))


class Claim:
    """Claims inside an open index transaction (see `EventIdIndex.claiming`)."""

    def __init__(self, index: EventIdIndex) -> None:
        self._index = index
        self._savepoints = 0

    def new(self, ids: Sequence[str]) -> set[str]:
        """Claim `ids`; returns those not in the log before (each claimed once)."""
        if _needs_keys(ids):
            by_key = {_key(i): i for i in ids}
            return {by_key[k] for k in self._new_keys(list(by_key))}
        return self._new_keys(ids)

    def _new_keys(self, keys: Sequence[str]) -> set[str]:
        index = self._index
        values = pa.array(keys, pa.string())
        form = pc.match_substring_regex(values, _BLOCK_PATTERN)
        fresh: set[str] = set()
        singles: Sequence[str] = keys
        if pc.any(form).as_py():
            blocky = values.filter(form)
            mixed = [p for p in pc.unique(pc.utf8_slice_codeunits(blocky, 0, _PREFIX))
                     .to_pylist() if index._has_singles(p)]
            if mixed:  # those prefixes are looked up id by id, as before runs
                kept = pc.invert(pc.is_in(pc.utf8_slice_codeunits(values, 0, _PREFIX),
                                          value_set=pa.array(mixed, pa.string())))
                form = pc.and_(form, kept)
                blocky = values.filter(form)
            new = blocky.filter(pc.invert(index._covered(blocky)))
            index.add_runs(runs_of(new))
            fresh = set(new.to_pylist())
            singles = values.filter(pc.invert(form)).to_pylist()
        taken = {row[0] for row in index._query(
            "SELECT id FROM seen WHERE id IN (SELECT value FROM json_each(?))", list(singles))}
        # Usually every id is new: insert them in SQL, without a Python step per row.
        loose = [i for i in dict.fromkeys(singles) if i not in taken]
        for _ in index._query("INSERT INTO seen (id) SELECT value FROM json_each(?)", loose):
            pass
        return fresh.union(loose)

    def new_bad(self, fingerprints: Sequence[str]) -> list[bool]:
        """Count a receipt of each rejected input; per input, True if it was never seen
        before (the first of its copies in `fingerprints`), so that it needs a bad row."""
        known = {row[0] for row in self._index._query(
            "SELECT fingerprint FROM bad_seen WHERE fingerprint IN "
            "(SELECT value FROM json_each(?))", list(dict.fromkeys(fingerprints)))}
        first = []
        for fingerprint in fingerprints:
            first.append(fingerprint not in known)
            known.add(fingerprint)
        self._index._db.executemany(
            "INSERT INTO bad_seen (fingerprint, receipts) VALUES (?, 1) "
            "ON CONFLICT (fingerprint) DO UPDATE SET receipts = receipts + 1",
            ((f,) for f in fingerprints))
        return first

    def savepoint(self) -> str:
        """Mark the claims made from here on, to `undo` them if their commit fails."""
        self._savepoints += 1
        name = f"claims_{self._savepoints}"
        self._index._db.execute(f"SAVEPOINT {name}")
        return name

    def undo(self, savepoint: str) -> None:
        """Give up every claim made since `savepoint` (later savepoints' included)."""
        self._index._db.execute(f"ROLLBACK TO {savepoint}")

    def done(self, table: str, version: int, blocks: Iterable[tuple[str, int]] = ()) -> None:
        """`table` is committed up to `version`, with these blocks of assigned ids."""
        db = self._index._db
        db.executemany("INSERT INTO blocks (prefix, size) VALUES (?, ?) ON CONFLICT (prefix)"
                       " DO UPDATE SET size = max(size, excluded.size)", blocks)
        db.execute("INSERT INTO covered (tbl, version) VALUES (?, ?) ON CONFLICT (tbl) "
                   "DO UPDATE SET version = max(version, excluded.version)", (table, version))

    def count(self, table: str, door: str, *, accepted: int = 0, rejected: int = 0,
              duplicates: int = 0) -> None:
        if accepted or rejected or duplicates:
            self._index._db.execute(
                "INSERT INTO counts (tbl, door, accepted, rejected, duplicates) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tbl, door) DO UPDATE SET "
                "accepted = accepted + excluded.accepted, "
                "rejected = rejected + excluded.rejected, "
                "duplicates = duplicates + excluded.duplicates",
                (table, door, accepted, rejected, duplicates))


def split_blocks(ids: Sequence[str]) -> tuple[list[str], list[tuple[str, int]]]:
    """Ids read back from the log: whole blocks (counters 0..n-1 all present) and the rest."""
    counters: dict[str, set[int]] = defaultdict(set)
    singles = []
    for event_id in ids:
        match = _BLOCK_ID.fullmatch(event_id)
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


def runs_of(ids: pa.Array) -> list[tuple[str, int, int]]:
    """Ids of block form as (prefix, start, stop) runs of consecutive counters."""
    if not len(ids):
        return []
    pairs = pa.table({"prefix": pc.utf8_slice_codeunits(ids, 0, _PREFIX),
                      "counter": pc.utf8_slice_codeunits(ids, _PREFIX).cast(pa.int64())})
    pairs = pairs.group_by(["prefix", "counter"]).aggregate([]).sort_by(
        [("prefix", "ascending"), ("counter", "ascending")])
    runs: list[tuple[str, int, int]] = []
    for prefix, counter in zip(pairs.column("prefix").to_pylist(),
                               pairs.column("counter").to_pylist(), strict=True):
        if runs and runs[-1][0] == prefix and runs[-1][2] == counter:
            runs[-1] = (prefix, runs[-1][1], counter + 1)
        else:
            runs.append((prefix, counter, counter + 1))
    return runs


def _merged(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping runs as disjoint ones, in order (so a bisection finds the one)."""
    out: list[tuple[int, int]] = []
    for start, stop in sorted(runs):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((start, stop))
    return out


def _in_runs(runs: list[tuple[int, int]] | None, counter: int) -> bool:
    if not runs:
        return False
    at = bisect.bisect_right(runs, (counter, _NO_END)) - 1
    return at >= 0 and runs[at][0] <= counter < runs[at][1]


_NO_END = 2**63
