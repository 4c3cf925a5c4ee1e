"""The fast local append commit writes what Delta readers (delta-rs) read back exactly."""

from __future__ import annotations

from pathlib import Path

from flywheel.tables import local_commit
from flywheel.tables.delta import DeltaHandle
from tests.tables.support import SCHEMA, rows


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
