"""A Delta handle's change feed gives the table's rows as the table types them, and a
merge matches on key columns whatever their names."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from flywheel.tables.delta import COMMIT_VERSION, DeltaHandle
from tests.tables.support import SCHEMA, rows


def test_changes_are_the_tables_columns_and_the_commit_version(tmp_path: Path) -> None:
    handle = DeltaHandle(str(tmp_path / "t"))
    handle.create(SCHEMA)
    for i in range(3):
        handle.append(rows(i * 4, 4))
    changes = DeltaHandle(str(tmp_path / "t")).changes(1)
    assert changes.column_names == [*SCHEMA.names, COMMIT_VERSION]
    assert changes.schema.remove(len(SCHEMA)) == SCHEMA.remove_metadata()  # no view types
    assert sorted(changes.column(COMMIT_VERSION).to_pylist()) == [2] * 4 + [3] * 4
    assert sorted(changes.column("n").to_pylist()) == list(range(4, 12))


def test_changes_without_offsets_are_rows_of_the_table(tmp_path: Path) -> None:
    handle = DeltaHandle(str(tmp_path / "t"))
    handle.create(SCHEMA)
    handle.append(rows(0, 3))
    handle.append(rows(3, 3))
    plain = handle.changes(1, offsets=False)
    assert plain.schema == handle.schema()
    assert sorted(plain.column("n").to_pylist()) == [3, 4, 5]
    picked = handle.changes(0, columns=["n"], offsets=False)
    assert picked.column_names == ["n"] and picked.num_rows == 6
    assert handle.changes(2).num_rows == 0  # nothing after the head


def test_a_merge_matches_keys_with_any_name(tmp_path: Path) -> None:
    key = 'user "id"'
    handle = DeltaHandle(str(tmp_path / "d"), None, append_only=False)
    handle.overwrite(pa.table({key: ["a", "b"], "score": [1, 2]}))
    version = handle.merge(pa.table({key: ["b", "c"], "score": [20, 30]}), [key])
    assert version == 1
    merged = sorted(handle.read().to_pylist(), key=lambda r: r[key])
    assert merged == [{key: "a", "score": 1}, {key: "b", "score": 20},
                      {key: "c", "score": 30}]


def test_the_changes_of_a_merge_are_its_rows_as_committed(tmp_path: Path) -> None:
    """A merge's change feed also holds each updated row as it was: readers of `changes`
    (incremental transforms, materialisation) would take the stale value for a new row."""
    handle = DeltaHandle(str(tmp_path / "d"), None, append_only=False)
    handle.overwrite(pa.table({"k": ["a", "b"], "score": [1, 2]}))
    handle.merge(pa.table({"k": ["b", "c"], "score": [20, 30]}), ["k"])
    changed = sorted(handle.changes(0, offsets=False).to_pylist(), key=lambda r: r["k"])
    assert changed == [{"k": "b", "score": 20}, {"k": "c", "score": 30}]
