"""The fast local append commit writes what Delta readers (delta-rs) read back exactly."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pyarrow as pa

from flywheel.log import compaction, local_commit
from flywheel.log.compaction import TARGET_FILE_BYTES, CompactionResult, compact
from flywheel.log.lock import FileLock
from flywheel.log.tables import DeltaHandle

SCHEMA = pa.schema([("n", pa.int64()), ("tags", pa.list_(pa.string())),
                    ("at", pa.timestamp("us", tz="UTC")), ("event_date", pa.date32())])


def rows(start: int, count: int, day: int = 1) -> pa.Table:
    return pa.table({
        "n": pa.array(range(start, start + count), pa.int64()),
        "tags": pa.array([["a", str(i)] for i in range(count)], pa.list_(pa.string())),
        "at": pa.array([dt.datetime(2026, 1, day, tzinfo=dt.UTC)] * count,
                       pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([dt.date(2026, 1, day + i % 2) for i in range(count)],
                               pa.date32()),
    }, schema=SCHEMA)


def test_appends_read_back_through_delta(tmp_path: Path) -> None:
    handle = DeltaHandle(str(tmp_path / "t"))
    handle.create(SCHEMA)
    versions = [handle.append(rows(i * 10, 10)) for i in range(3)]
    assert versions == [1, 2, 3]
    fresh = DeltaHandle(str(tmp_path / "t"))  # a reader that saw none of it happen
    assert fresh.version() == 3
    assert sorted(fresh.read().column("n").to_pylist()) == list(range(30))
    by_n = sorted(fresh.read(version=1).to_pylist(), key=lambda r: r["n"])
    assert by_n == rows(0, 10).to_pylist()  # every type comes back as written
    changes = fresh.changes(1)
    assert sorted(changes.column("n").to_pylist()) == list(range(10, 30))
    assert set(changes.column("_commit_version").to_pylist()) == {2, 3}
    stats = fresh.stats()
    assert stats is not None and stats.rows == 30 and stats.files == 6  # 2 days x 3 commits


def test_a_taken_version_is_skipped_not_overwritten(tmp_path: Path) -> None:
    handle = DeltaHandle(str(tmp_path / "t"))
    handle.create(SCHEMA)
    base = tmp_path / "t"
    taken = local_commit.append(base, "event_date", rows(0, 5), head=0)  # someone else
    assert taken == 1
    assert handle.append(rows(100, 5)) == 2  # this handle still believed the head was 0
    assert sorted(DeltaHandle(str(base)).read().column("n").to_pylist()) == [
        0, 1, 2, 3, 4, 100, 101, 102, 103, 104]


def test_appends_and_compactions_side_by_side_lose_nothing(tmp_path: Path) -> None:
    """Two compactors (each with its own lock object, as two processes would have) race
    appends: every compaction either commits or steps aside, rows stay exactly once."""
    handle = DeltaHandle(str(tmp_path / "t"))
    handle.create(SCHEMA)
    writer_lock = FileLock(tmp_path / "log.lock")
    stop = threading.Event()
    results: list[CompactionResult] = []
    errors: list[BaseException] = []

    def compactor() -> None:
        own_lock = FileLock(tmp_path / "compact.lock")
        try:
            while not stop.is_set():
                results.append(compact(DeltaHandle(str(tmp_path / "t")), writer_lock,
                                       own_lock, wait=False))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=compactor) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(60):
            with writer_lock:
                handle.append(rows(i * 3, 3))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors
    assert any(r.version is not None for r in results), "no compaction ever committed"
    final = compact(DeltaHandle(str(tmp_path / "t")), writer_lock,
                    FileLock(tmp_path / "compact.lock"))
    assert final.skipped is None or final.skipped == "nothing to do"
    fresh = DeltaHandle(str(tmp_path / "t"))
    values = fresh.read().column("n").to_pylist()
    assert sorted(values) == list(range(180))
    stats = fresh.stats()
    assert stats is not None and stats.files == 2  # one file per day after the last run
    # A reader from offset 0 sees each row once: compactions are not new data.
    assert sorted(fresh.changes(0).column("n").to_pylist()) == list(range(180))


def test_a_compaction_whose_files_were_removed_meanwhile_steps_aside(tmp_path: Path) -> None:
    handle = DeltaHandle(str(tmp_path / "t"))
    handle.create(SCHEMA)
    for i in range(4):
        handle.append(rows(i * 3, 3))
    writer_lock = FileLock(tmp_path / "log.lock")
    stale = handle.fresh_table()  # planned before another compaction commits
    assert compact(handle, writer_lock, FileLock(tmp_path / "a.lock")).version == 5
    result = compaction._compact_local(handle, stale, writer_lock, TARGET_FILE_BYTES)
    assert result.skipped == "conflict" and result.version is None
    assert sorted(DeltaHandle(str(tmp_path / "t")).read().column("n").to_pylist()) == list(
        range(12))
    names = {p.name for p in (tmp_path / "t").rglob("part-*.parquet")}
    live = {Path(u).name for u in DeltaHandle(str(tmp_path / "t")).fresh_table().file_uris()}
    assert len(names - live) == 8  # the 8 small files; the loser's merged files are gone
