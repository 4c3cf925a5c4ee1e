"""The one path of the ingestor, as the HTTP doors and the SDK take it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from flywheel.ingest.ingestor import INLINE_EVENTS
from flywheel.ingest.prepare import decode_json_items
from flywheel.project import Project
from tests.api.support import count_log_rows, opened_project
from tests.helpers import page_view


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with opened_project(tmp_path / "p") as project:
        yield project


def _raws(count: int, bad_at: int) -> list[bytes]:
    raws = [msgspec.json.encode(page_view(i, event_id=f"e{i}")) for i in range(count)]
    raws[bad_at] = b'{"schema": '
    return raws


@pytest.mark.parametrize("count", [3, INLINE_EVENTS + 1])
def test_a_request_is_decoded_and_prepared_in_one_place_and_stored_once(
        project: Project, count: int) -> None:
    seen: list[threading.Thread] = []

    def decode(raws: Sequence[bytes]) -> list[Any]:
        seen.append(threading.current_thread())
        return decode_json_items(raws)

    raws = _raws(count, bad_at=count - 2)

    async def send() -> tuple[Any, threading.Thread]:
        result = await project.ingestor.ingest_async(raws, door="http", decode=decode)
        return result, threading.current_thread()

    result, loop_thread = asyncio.run(send())
    assert (result.accepted, result.rejected, result.duplicates) == (count - 1, 1, 0)
    assert [e.index for e in result.errors] == [count - 2]
    assert (seen == [loop_thread]) is (count <= INLINE_EVENTS)  # large ones leave the loop
    assert project.log.bad_rows().column("raw").to_pylist() == [b'{"schema": ']
    again, _ = asyncio.run(send())
    assert (again.accepted, again.duplicates) == (0, count - 1)
    assert count_log_rows(project) == count - 1


def test_an_empty_request_stores_nothing(project: Project) -> None:
    result = asyncio.run(project.ingestor.ingest_async([], door="http"))
    assert result.received == 0
    assert count_log_rows(project) == 0


def test_sdk_chunks_report_progress_and_keep_positions(project: Project) -> None:
    events: list[Any] = [page_view(i) for i in range(10)]
    events[7] = {"schema": events[7]["schema"], "data": "not an object"}
    progress: list[int] = []
    result = project.ingestor.ingest(iter(events), chunk_size=3, on_progress=progress.append)
    assert progress == [3, 3, 3, 1]
    assert (result.accepted, result.rejected) == (9, 1)
    assert [e.index for e in result.errors] == [7]
    assert count_log_rows(project) == 9
