"""Builders for transform tests: events with fixed ids and times, transform files, hashes."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flywheel.project import Project
from tests.helpers import PAGE_VIEW

LOG = "com.example/page_view"
"""The example schema's log table, as a transform input names it."""
BASE = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def at(seconds: int) -> str:
    """An RFC 3339 event_time `seconds` after BASE."""
    return (BASE + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(n: int, user: str, seconds: int, *, url: str | None = None,
          referrer: str | None = None) -> dict[str, Any]:
    """A page view with a client event_id (`e{n}`) and event_time, so two projects fed the
    same events hold the same rows (ingested_at aside, which no transform here reads)."""
    data: dict[str, Any] = {"user_id": user, "url": url or f"https://shop/{n}"}
    if referrer is not None:
        data["referrer"] = referrer
    return {"schema": PAGE_VIEW, "event_id": f"e{n}", "event_time": at(seconds), "data": data}


def sql_transform(root: Path, name: str, body: str, **header: str | Sequence[str]) -> Path:
    """Write transforms/NAME.sql; each keyword is a header line (a list: repeated lines)."""
    lines = []
    for key, value in header.items():
        for one in [value] if isinstance(value, str) else value:
            lines.append(f"-- {key}: {one}")
    path = root / "transforms" / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*lines, textwrap.dedent(body).strip(), ""]))
    return path


def py_transform(root: Path, filename: str, source: str) -> Path:
    path = root / "transforms" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def ingest_ok(project: Project, events: Iterable[dict[str, Any]]) -> None:
    batch = list(events)
    result = project.ingest(batch)
    assert (result.accepted, result.rejected) == (len(batch), 0), result


def hashes(project: Project, names: Iterable[str]) -> dict[str, str]:
    return {name: project.tables.content_hash(name) for name in names}


def rows(project: Project, name: str, version: int | None = None,
         order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A derived table's rows as dicts, sorted (by `order_by`, else by all values)."""
    found = project.tables.read(name, version).to_pylist()
    if order_by:
        return sorted(found, key=lambda r: tuple(str(r[c]) for c in order_by))
    return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def inputs_of(project: Project, table: str, version: int | None = None) -> dict[str, Any]:
    """The recorded inputs (alias -> kind, target, after, upto) of a table version."""
    records = project.metadata.table_versions(table)
    record = records[-1] if version is None else next(r for r in records
                                                       if r.version == version)
    found: dict[str, Any] = json.loads(record.inputs)
    return found


def log_head(project: Project) -> int:
    version = project.log_store.handle(project.log.table(LOG)).version()
    assert version is not None
    return version


def new_project(root: Path) -> Project:
    """Initialise a project at `root` (the example schema), apply it, and open it."""
    from flywheel.scaffold import init_project

    project = Project.open(init_project(root))
    project.apply()
    return project


CHAIN = ("views", "latest", "user_stats")
"""Run order of the chain `write_chain` writes."""


def write_chain(root: Path) -> None:
    """Three transforms, one of each kind:

    views       incremental, row-wise SQL over the log
    latest      incremental, keyed Python (one row per user, the latest view wins)
    user_stats  table, an aggregate SQL over both
    """
    sql_transform(root, "views", """
        select event_id, user_id, url, event_time,
               date_trunc('hour', event_time) as hour
        from pv
        """, inputs=f"pv={LOG}", materialized="incremental",
                  expect=["not_null(event_id, user_id)", "unique(event_id)"])
    py_transform(root, "latest.py", """
        import pyarrow as pa
        import pyarrow.compute as pc
        from flywheel.transforms import transform


        @transform(inputs=["views"], materialized="incremental", unique_key=["user_id"],
                   latest_by="event_time", expect=["unique(user_id)"])
        def latest(views: pa.Table) -> pa.Table:
            return pa.table({"user_id": views["user_id"], "url": views["url"],
                             "url_length": pc.utf8_length(views["url"]),
                             "event_time": views["event_time"]})
        """)
    sql_transform(root, "user_stats", """
        select v.user_id, count(*) as views, min(v.event_time) as first_seen,
               max(v.event_time) as last_seen, max(l.url) as last_url
        from views v join latest l using (user_id)
        group by v.user_id
        """, inputs="views, latest", expect="unique(user_id)")
