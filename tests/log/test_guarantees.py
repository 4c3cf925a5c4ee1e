"""The log's promises under hostile input: ids with NUL, times the log cannot hold, a group
commit spanning tables, retried bad events, integers beyond 64 bits, and the accounting."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel._core.errors import LogUnavailableError
from flywheel.log.store import LogStore
from flywheel.log.writer import CommitRequest
from flywheel.project import Project
from flywheel.tables.delta import DeltaHandle
from tests.helpers import PAGE_VIEW, object_schema, page_view, write_schema

CART = "iglu:com.example/add_to_cart/jsonschema/1-0-0"
BIG = "iglu:com.example/big/jsonschema/1-0-0"


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_schema(project_dir, CART, object_schema(
        {"user_id": {"type": "string"}, "quantity": {"type": "integer"}}, ["user_id"]))
    write_schema(project_dir, BIG, object_schema({"n": {"type": "integer"},
                                                  "items": {"type": "array",
                                                            "items": {"type": "integer"}}}))
    with Project.open(project_dir) as project:
        project.apply()
        yield project


def cart(user: str, **envelope: Any) -> dict[str, Any]:
    return {"schema": CART, "data": {"user_id": user, "quantity": 1}, **envelope}


def ids(project: Project, table: str) -> list[str]:
    return project.log.read(table, columns=["event_id"]).column("event_id").to_pylist()


def test_an_id_with_nul_does_not_shadow_its_prefix(project: Project) -> None:
    first = project.ingest([page_view(1, event_id="a\x00b"), page_view(2, event_id="\x01x")])
    assert (first.accepted, first.duplicates) == (2, 0)
    second = project.ingest([page_view(3, event_id="a"), page_view(4, event_id="x"),
                             page_view(5, event_id="\x01"), page_view(6, event_id="a\x00b")])
    assert (second.accepted, second.duplicates) == (3, 1)
    assert sorted(ids(project, "com.example/page_view")) == sorted(
        ["a\x00b", "\x01x", "a", "x", "\x01"])


def test_a_time_the_log_cannot_hold_is_a_bad_row_and_the_rest_commits(project: Project) -> None:
    """The case that once failed the commit after another table had committed: now the
    time is refused before anything commits, and the answer is what was stored."""
    request = [cart("u1"), cart("u2", event_id="pc-1"),
               page_view(1, event_time="0001-01-01T01:00:00+08:21")]
    result = project.ingest(request)
    assert (result.accepted, result.rejected) == (2, 1)
    assert result.errors[0].index == 2 and "outside the years 0001 to 9999" in (
        result.errors[0].message)
    assert project.ingest(request[1:]).duplicates == 1  # a retry stores nothing twice
    assert Counter(ids(project, "com.example/add_to_cart")) == Counter(
        {"pc-1": 1, ids(project, "com.example/add_to_cart")[0]: 1})


def _group(project: Project, *batches: list[dict[str, Any]]) -> list[Any]:
    """Submit `batches` so that they share one group commit; the futures' outcomes."""
    ingestor = project.ingestor
    writer = ingestor._writer
    gate = threading.Event()
    real = writer._next_group

    def held() -> Any:
        assert gate.wait(10)
        return real()

    writer._next_group = held  # type: ignore[method-assign]
    try:
        pendings = [ingestor.begin_raw([b"{}"] * len(batch), batch, door="sdk")
                    for batch in batches]
        # Put the requests in the queue before the writer takes the first one.
        gate.set()
        outcomes: list[Any] = []
        for pending in pendings:
            try:
                outcomes.append(pending.finish())
            except LogUnavailableError as exc:
                outcomes.append(exc)
        return outcomes
    finally:
        writer._next_group = real  # type: ignore[method-assign]


def test_a_request_that_cannot_commit_fails_alone(project: Project,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = DeltaHandle.stage

    def stage(self: DeltaHandle, data: Any, **kwargs: Any) -> Any:
        if "poison" in data.column("user_id").to_pylist():
            raise OSError(5, "Input/output error")
        return real(self, data, **kwargs)

    monkeypatch.setattr(DeltaHandle, "stage", stage)
    groups: list[int] = []
    real_commit = project.log_store.commit_group

    def commit_group(tables: Any, bad_rows: Any = None) -> Any:
        groups.append(sum(t.num_rows for _, t in tables.values()))
        return real_commit(tables, bad_rows)

    monkeypatch.setattr(project.log_store, "commit_group", commit_group)
    good, bad, other = _group(project, [page_view(1, event_id="g1")],
                              [cart("poison", event_id="p1"), page_view(2, event_id="p2")],
                              [cart("u3", event_id="g3")])
    assert groups == [4, 1, 2, 1]  # the group failed, then each request alone
    assert good.accepted == 1 and other.accepted == 1
    assert isinstance(bad, LogUnavailableError)
    assert "nothing in this request was stored" in bad.one_line()
    assert sorted(ids(project, "com.example/page_view")) == ["g1"]  # p2 was not stored
    monkeypatch.undo()
    retry = project.ingest([cart("poison", event_id="p1"), page_view(2, event_id="p2")])
    assert (retry.accepted, retry.duplicates) == (2, 0)  # the claims were given up


def test_a_commit_that_breaks_between_tables_says_what_was_stored(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    real = DeltaHandle.publish
    calls: list[str] = []

    def publish(self: DeltaHandle, staged: Any) -> int:
        calls.append(self.uri)
        if "page_view" in self.uri:
            raise OSError(28, "No space left on device")
        return real(self, staged)

    monkeypatch.setattr(DeltaHandle, "publish", publish)
    with pytest.raises(LogUnavailableError) as caught:
        project.ingest([cart("u1", event_id="c1"), page_view(1, event_id="v1")])
    line = caught.value.one_line()
    assert "could not commit com.example/page_view/v1" in line
    assert "com.example/add_to_cart/v1 were stored" in line
    assert "retry" in line
    assert ids(project, "com.example/add_to_cart") == ["c1"]
    monkeypatch.undo()
    retry = project.ingest([cart("u1", event_id="c1"), page_view(1, event_id="v1")])
    assert (retry.accepted, retry.duplicates) == (1, 1)
    assert ids(project, "com.example/page_view") == ["v1"]


def test_nothing_stored_is_only_said_when_true(project: Project,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def publish(self: DeltaHandle, staged: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DeltaHandle, "publish", publish)
    with pytest.raises(LogUnavailableError, match="nothing in this request was stored"):
        project.ingest([cart("u1", event_id="c1"), page_view(1, event_id="v1"),
                        {"schema": PAGE_VIEW, "data": {}}])
    monkeypatch.undo()
    assert project.log.bad_rows().num_rows == 0
    assert [r for r in project.log.receipts() if r.received] == []
    staged = list((project.root / "data" / "log").rglob("part-*.parquet"))
    assert staged == []  # the files written for the failed commit were removed


def test_a_retried_invalid_event_is_one_bad_row_with_its_receipts(project: Project) -> None:
    invalid = {"schema": PAGE_VIEW, "data": {"user_id": 7}, "event_id": "bad-1"}
    for _ in range(3):
        result = project.ingest([invalid, page_view(1, event_id="ok-1")])
        assert result.rejected == 1  # every answer still names the problem
    project.ingest([{"schema": PAGE_VIEW, "data": {"user_id": 8}, "event_id": "bad-2"}])
    bad = project.log.bad_rows()
    assert bad.num_rows == 2
    assert sorted(bad.column("receipts").to_pylist()) == [1, 3]
    [row] = [r for r in project.log.receipts() if r.table == "com.example/page_view/v1"]
    assert (row.door, row.accepted, row.rejected, row.duplicates) == ("sdk", 1, 4, 2)
    assert row.received == 7


def test_integers_beyond_64_bits_are_bad_rows_that_say_so(project: Project) -> None:
    result = project.ingest([{"schema": BIG, "data": {"n": 2**70}},
                             {"schema": BIG, "data": {"items": [1, -(2**64)]}},
                             {"schema": BIG, "data": {"n": 2**63 - 1}}])
    assert (result.accepted, result.rejected) == (1, 2)
    first, second = result.errors
    assert first.message.startswith(f"$.n: {2**70} is beyond the 64-bit integers")
    assert second.message.startswith("$.items[1]: ")
    assert "PyLong" not in first.message and "C long" not in first.message


def test_counts_add_up_per_table_and_door_and_survive_a_lost_index_update(
        project: Project) -> None:
    project.ingest([page_view(1, event_id="a"), page_view(2, event_id="a"), "not an event"])
    project.ingest([cart("u1")], door="push")
    store: LogStore = project.log_store
    # A commit the index never heard of (a process killed between the two):
    spec = project.schemas.current.table(project.log.table("com.example/page_view"))
    assert spec is not None
    row = project.log.read("com.example/page_view").to_pylist()[0]
    import pyarrow as pa

    store.handle(spec.ref).append(pa.Table.from_pylist([{**row, "event_id": "late"}],
                                                       schema=spec.arrow_schema))
    counts = {(r.table, r.door): (r.accepted, r.rejected, r.duplicates)
              for r in project.log.receipts()}
    assert counts == {("com.example/page_view/v1", "sdk"): (2, 0, 1),
                      ("com.example/add_to_cart/v1", "push"): (1, 0, 0),
                      ("(no known schema)", "sdk"): (0, 1, 0)}


def test_a_commit_request_of_only_duplicates_is_counted(project: Project) -> None:
    project.ingest([page_view(1, event_id="d")])
    outcome = project.ingestor._writer.write(CommitRequest(tables={}))
    assert outcome.stored == 0
    assert project.ingest([page_view(1, event_id="d")]).duplicates == 1
    [row] = project.log.receipts()
    assert (row.accepted, row.duplicates) == (1, 1)


def test_a_future_limit_beyond_the_log_s_clock_is_a_config_error(project_dir: Path) -> None:
    from flywheel._core.errors import ConfigError
    from flywheel.config import load_config

    config = project_dir / "flywheel.yaml"
    text = config.read_text()
    assert "max_future_seconds: 86400" in text
    config.write_text(text.replace("max_future_seconds: 86400",
                                   "max_future_seconds: 10000000000000"))
    with pytest.raises(ConfigError, match=r"ingest\.max_future_seconds"):
        load_config(project_dir)


def test_a_compaction_keeps_the_index_covering_the_table(project: Project) -> None:
    """A compaction adds no events, so the next append need not read anything back."""
    for n in range(5):
        project.ingest([page_view(n, event_id=f"c{n}")])
    project.log.compact()
    store = project.log_store
    ref = project.log.table("com.example/page_view")
    head = store.handle(ref).version()
    assert head is not None and store.index.covered(str(ref)) == head
    assert project.ingest([page_view(9, event_id="c1")]).duplicates == 1
