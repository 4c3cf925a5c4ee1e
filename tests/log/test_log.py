"""The log: atomic commits as offsets, compaction, crash recovery of the id index."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from flywheel.log.dedupe import block_ids, new_block_prefix, split_blocks
from flywheel.project import Project
from flywheel.schemas.keys import LogTableRef
from tests.helpers import page_view

PAGE_VIEWS = LogTableRef("com.example", "page_view", 1)


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    with Project.open(project_dir) as project:
        project.apply()
        yield project


def test_each_commit_is_an_offset_that_can_be_read_back(project: Project) -> None:
    offsets = [project.ingest([page_view(i) for i in range(n * 10, n * 10 + 10)])
               .offsets["com.example/page_view/v1"] for n in range(3)]
    assert offsets == [1, 2, 3]  # offset 0 is the table's creation by `apply`
    assert [project.log.read("com.example/page_view", as_of=o).num_rows for o in offsets] == [
        10, 20, 30]
    changes = project.log_store.handle(PAGE_VIEWS).changes(1, 3)
    assert sorted(set(changes.column("_commit_version").to_pylist())) == [2, 3]
    assert changes.num_rows == 20


def test_compaction_keeps_content_and_offsets(project: Project) -> None:
    for n in range(6):
        project.ingest([page_view(n * 5 + i) for i in range(5)])
    handle = project.log_store.handle(PAGE_VIEWS)
    before = {o: _ids(project.log.read("com.example/page_view", as_of=o)) for o in range(7)}
    files_before = handle.stats().files  # type: ignore[union-attr]
    project.log.compact()
    assert handle.stats().files < files_before  # type: ignore[union-attr]
    after = {o: _ids(project.log.read("com.example/page_view", as_of=o)) for o in range(7)}
    assert after == before
    assert _ids(project.log.read("com.example/page_view")) == before[6]
    # A reader resuming from an offset sees no rows twice: compaction is not new data.
    assert handle.changes(6).num_rows == 0


def test_the_index_catches_up_with_commits_it_missed(project: Project) -> None:
    """A process killed between its log commit and its index update must not let a resend
    store the same events twice."""
    store = project.log_store
    handle = store.handle(PAGE_VIEWS)
    spec = project.schemas.current.table(PAGE_VIEWS)
    assert spec is not None
    project.ingest([page_view(0, event_id="first")])
    sneaky = project.log.read("com.example/page_view").to_pylist()[0]
    rows = [{**sneaky, "event_id": f"missed-{i}"} for i in range(3)]
    handle.append(pa.Table.from_pylist(rows, schema=spec.arrow_schema))  # index not told
    result = project.ingest([page_view(i, event_id=f"missed-{i}") for i in range(3)]
                            + [page_view(9, event_id="first")])
    assert (result.accepted, result.duplicates) == (0, 4)


def test_concurrent_callers_share_commits(project: Project) -> None:
    results = []

    def send(n: int) -> None:
        results.append(project.ingest([page_view(n * 100 + i, event_id=f"{n}-{i}")
                                       for i in range(100)]))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.accepted for r in results) == 1_600
    assert project.log.read("com.example/page_view").num_rows == 1_600
    head = project.log_store.handle(PAGE_VIEWS).version()
    assert head is not None and head < 16  # fewer commits than requests: group commit


def _ingest_in_process(project_dir: str, start: int) -> int:
    with Project.open(project_dir) as project:
        ids = [page_view(i, event_id=f"shared-{i}") for i in range(start, start + 300)]
        return project.ingest(ids).accepted


@pytest.mark.slow
def test_two_processes_never_store_an_id_twice(project: Project) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        accepted = pool.starmap(_ingest_in_process, [(str(project.root), 0),
                                                     (str(project.root), 150)])
    assert sum(accepted) == 450
    ids = project.log.read("com.example/page_view").column("event_id").to_pylist()
    assert len(ids) == len(set(ids)) == 450


def test_id_blocks_are_valid_uuids_and_partial_blocks_are_kept_one_by_one() -> None:
    prefix = new_block_prefix()
    ids = block_ids(prefix, 3).to_pylist()
    assert ids == [f"{prefix}00000000000{i}" for i in range(3)]
    singles, blocks = split_blocks([*ids, f"{prefix}000000000007"[:-1] + "9"])
    assert blocks == []  # 0,1,2,9 is not a whole block: each id stands alone
    assert sorted(singles) == sorted([*ids, f"{prefix}000000000009"])
    singles, blocks = split_blocks([*ids, "client-id"])
    assert (singles, blocks) == (["client-id"], [(prefix, 3)])


def _ids(table: pa.Table) -> list[str]:
    return sorted(table.column("event_id").to_pylist())


def test_small_files_are_compacted_automatically(project_dir: Path) -> None:
    config = project_dir / "flywheel.yaml"
    config.write_text(config.read_text().replace("ingest:\n", "ingest:\n  compact_min_files: 3\n"))
    with Project.open(project_dir) as project:
        project.apply()
        for n in range(7):
            project.ingest([page_view(n)])
        expected = _ids(project.log.read("com.example/page_view"))
    with Project.open(project_dir) as project:  # closing waited for the compactor
        handle = project.log_store.handle(PAGE_VIEWS)
        assert handle.stats().files < 7  # type: ignore[union-attr]
        assert _ids(project.log.read("com.example/page_view")) == expected
        history = [h["operation"] for h in handle._open().history()]
        assert "OPTIMIZE" in history
