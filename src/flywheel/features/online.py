"""Serving features: materialise the latest values into the online store, read them back.

Materialisation takes, per entity, the row the offline store would answer at the moment
of materialising (the same latest-by-time rule and tie-break), within the view's TTL. It
is incremental: while the source table only grew by appends, only the rows added since
the last materialisation are read. Reads take many entities across several views in one
round trip; an unknown entity, or a value past its TTL, gives nulls and is flagged.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from flywheel._core.clock import utc_now
from flywheel._core.errors import InputError
from flywheel._core.metadata.table_versions import TableVersions
from flywheel._core.online import OnlineRow, OnlineStore
from flywheel.features.definitions import FeatureView
from flywheel.tables.sql import duckdb_connection, quote_ident
from flywheel.transforms.store import DerivedTables

KEY_SEPARATOR = "\x1f"
Progress = Callable[[str, int, int], None]
"""Called with (view, rows written so far, rows to write)."""
_BATCH = 10_000


def entity_key(values: Sequence[Any]) -> str:
    """One online key from join-key values (the same text offline rows and requests make)."""
    return KEY_SEPARATOR.join("" if v is None else str(v) for v in values)


@dataclass(frozen=True, slots=True)
class MaterializeRun:
    view: str
    mode: str
    """full, incremental or skipped."""
    rows: int
    source_version: int | None
    seconds: float


def _latest_sql(view: FeatureView, now: dt.datetime) -> str:
    keys = ", ".join(quote_ident(k) for k in view.join_keys)
    ts = quote_ident(view.timestamp_column)
    order = [f"{ts} DESC"]
    order += [f"{quote_ident(view.created_column)} DESC NULLS LAST"] if view.created_column else []
    order += [f"{quote_ident(f)} DESC NULLS LAST" for f in view.feature_names]
    floor = "" if view.max_age is None else (
        f" AND {ts} >= TIMESTAMPTZ '{(now - view.max_age).isoformat()}'")
    columns = ", ".join(quote_ident(f) for f in view.feature_names)
    return (f"SELECT {keys}, CAST({ts} AS TIMESTAMPTZ) AS __ts, {columns} FROM __rows "
            f"WHERE {ts} IS NOT NULL AND {ts} <= TIMESTAMPTZ '{now.isoformat()}'{floor} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {', '.join(order)}) = 1")


def materialize(view: FeatureView, tables: DerivedTables, online: OnlineStore,
                metadata: TableVersions, *, full: bool = False,
                on_progress: Progress | None = None) -> MaterializeRun:
    started = time.perf_counter()
    version = tables.version(view.source)
    if version is None:
        return MaterializeRun(view.name, "skipped", 0, None, 0.0)
    cursor_name = f"materialize:{view.name}"
    cursor = json.loads(metadata.get_cursor(cursor_name) or "null")
    signature = repr((view.source, view.join_keys, view.timestamp_column, view.feature_names,
                      view.max_age, view.created_column))
    same = cursor is not None and cursor["signature"] == signature
    if not full and same and cursor["version"] == version:
        return MaterializeRun(view.name, "skipped", 0, version, time.perf_counter() - started)
    appended_only = same and all(
        r.mode == "incremental" for r in metadata.table_versions(view.source)
        if cursor["version"] < r.version <= version)
    handle = tables.handle(view.source)
    incremental = not full and appended_only
    now = utc_now()
    con = duckdb_connection()
    try:
        if incremental:
            changes = handle.changes(cursor["version"], version, offsets=False)
            con.register("__rows", changes if changes.num_rows else handle.schema().empty_table())
        else:
            online.drop(view.name)  # a rebuilt source may have lost entities
            con.register("__rows", handle.dataset(version))
        latest = con.sql(_latest_sql(view, now)).to_arrow_table()
    finally:
        con.close()
    written = _put(view, latest, online, on_progress)
    metadata.set_cursor(cursor_name, json.dumps({"version": version, "signature": signature}))
    return MaterializeRun(view.name, "incremental" if incremental else "full", written, version,
                          time.perf_counter() - started)


def _put(view: FeatureView, latest: pa.Table, online: OnlineStore,
         on_progress: Progress | None) -> int:
    written = done = 0
    if on_progress is not None:
        on_progress(view.name, 0, latest.num_rows)
    for batch in latest.to_batches(_BATCH):
        data = batch.to_pydict()
        keys = zip(*(data[k] for k in view.join_keys), strict=True)
        rows = [OnlineRow(entity_key(key), {f: data[f][i] for f in view.feature_names},
                          data["__ts"][i]) for i, key in enumerate(keys)]
        written += online.put(view.name, rows)
        done += len(rows)
        if on_progress is not None:
            on_progress(view.name, done, latest.num_rows)
    return written


@dataclass(frozen=True)
class OnlineFeatures:
    """Feature values for the requested entities, column by column."""

    columns: dict[str, list[Any]]
    found: dict[str, list[bool]]
    """Per view: whether each entity had a live value (False: unknown or past its TTL)."""

    def to_dict(self) -> dict[str, list[Any]]:
        return dict(self.columns)


@dataclass(frozen=True, slots=True)
class _ViewRead:
    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl: dt.timedelta | None


class OnlineReader:
    """A read plan compiled once per (features, entity keys): which views to ask, with which
    keys, and where each value goes. Serving repeats the same request shape, so everything
    that depends only on the shape is checked and prepared here, not on every call."""

    def __init__(self, plan: Mapping[str, Sequence[str]], views: Mapping[str, FeatureView],
                 entity_keys: Sequence[str]) -> None:
        if not entity_keys:
            raise InputError("no entities given", hint='pass entities={"user_id": ["u1"]}')
        taken = set(entity_keys)
        reads = []
        for name, features in plan.items():
            clash = taken.intersection(features)
            if clash:
                raise InputError(f"feature name(s) {', '.join(sorted(clash))} appear twice in "
                                 "the answer", hint="rename one of them in its view")
            taken.update(features)
            view = views[name]
            missing = [k for k in view.join_keys if k not in entity_keys]
            if missing:
                raise InputError(f"feature view {name} needs entity key(s) {', '.join(missing)}")
            reads.append(_ViewRead(name, view.join_keys, tuple(features), view.max_age))
        self._reads = reads

    def read(self, entities: Mapping[str, Sequence[Any]], online: OnlineStore) -> OnlineFeatures:
        count = _row_count(entities)
        requests = [(r.name, _keys(r.join_keys, entities, count)) for r in self._reads]
        answers = online.get(requests)  # one round trip for every view
        now = utc_now()
        columns: dict[str, list[Any]] = {k: list(v) for k, v in entities.items()}
        found: dict[str, list[bool]] = {}
        for read, values in zip(self._reads, answers, strict=True):
            oldest = None if read.ttl is None else now - read.ttl
            live = [v.values if v is not None and (oldest is None or v.event_time >= oldest)
                    else None for v in values]
            found[read.name] = [v is not None for v in live]
            for feature in read.features:
                columns[feature] = [None if v is None else v.get(feature) for v in live]
        return OnlineFeatures(columns, found)


def _row_count(entities: Mapping[str, Sequence[Any]]) -> int:
    lengths = {len(v) for v in entities.values()}
    if len(lengths) != 1:
        raise InputError("every entity key needs the same number of values")
    return lengths.pop()


def _keys(join_keys: tuple[str, ...], entities: Mapping[str, Sequence[Any]],
          count: int) -> list[str]:
    if len(join_keys) == 1:
        return ["" if v is None else str(v) for v in entities[join_keys[0]]]
    return [entity_key([entities[k][i] for k in join_keys]) for i in range(count)]

