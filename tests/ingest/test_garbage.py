"""Garbage through the SDK: never a crash, every input accounted for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.project import Project
from tests.helpers import PAGE_VIEW

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12,
)
odd_python = st.sampled_from([b"bytes", {1, 2}, object(), dt.date(2026, 1, 1), float("nan"),
                              2**80, -(2**70)])
texts = st.text(max_size=30)
near_valid = st.fixed_dictionaries(
    {"schema": st.sampled_from([PAGE_VIEW, "iglu:com.example/page_view/jsonschema/1-0-1",
                                "iglu:bad", "", 7]),
     "data": st.fixed_dictionaries({"user_id": texts | json_values, "url": texts | odd_python},
                                   optional={"referrer": json_values, "extra": texts})
     | json_values},
    optional={"event_id": texts | json_values,
              "event_time": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01", "yesterday",
                                             "2026-13-01T00:00:00Z", "9999-01-01T00:00:00Z"])
              | json_values,
              "surprise": json_values},
)
events = st.lists(json_values | near_valid | odd_python, max_size=25)


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    with Project.open(project_dir) as project:
        project.apply()
        yield project


def _stored(project: Project) -> int:
    handle = project.log_store.handle(project.log.table("com.example/page_view"))
    stats = handle.stats()
    return stats.rows if stats else 0


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=events)
def test_garbage_never_crashes_and_is_accounted_for(project: Project, batch: list[Any]) -> None:
    stored_before, receipts_before = _stored(project), _bad_receipts(project)
    result = project.ingest(batch)
    assert result.received == len(batch)
    assert len(result.errors) == result.rejected
    assert all(e.reason and e.message for e in result.errors)
    assert _stored(project) - stored_before == result.accepted
    # Every rejected input is kept: a new bad row, or one more receipt of a known one.
    assert _bad_receipts(project) - receipts_before == result.rejected


def _bad_receipts(project: Project) -> int:
    receipts: int = sum(project.log.bad_rows().column("receipts").to_pylist())
    return receipts


def test_a_flood_of_bad_rows_raises_the_alarm(project: Project) -> None:
    project.ingest([{"schema": PAGE_VIEW, "data": {}} for _ in range(200)])
    assert project.alarm.fired and project.alarm.fired[0].rejected == 200
