"""Compaction beside appends: every compaction commits or steps aside, rows stay once."""

from __future__ import annotations

import threading
from pathlib import Path

from flywheel.log import compaction
from flywheel.log.compaction import TARGET_FILE_BYTES, CompactionResult, compact
from flywheel.log.lock import FileLock
from flywheel.tables.delta import DeltaHandle
from tests.tables.support import SCHEMA, rows


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
