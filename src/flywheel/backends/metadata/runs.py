"""Run storage in SQL: runs, params, metrics, tags, artifacts and inputs.

Reads of many runs take a fixed number of queries, whatever the number of runs: one per
table, chunked under the bound-parameter limit. Params, artifacts and inputs are fixed once
recorded: the check runs in the writing transaction, so two writers cannot both win.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa

from flywheel._core.errors import FlywheelError
from flywheel._core.metadata.runs import (
    MetricPoint,
    RunArtifactRecord,
    RunDetails,
    RunFilter,
    RunQuery,
    RunRecord,
    RunStatus,
)
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import CHUNK, Insert, Row, SqlCapability

_OPS: dict[str, Callable[[Any, Any], sa.ColumnElement[bool]]] = {
    "=": lambda column, value: column == value,
    "!=": lambda column, value: column != value,
    "<": lambda column, value: column < value,
    "<=": lambda column, value: column <= value,
    ">": lambda column, value: column > value,
    ">=": lambda column, value: column >= value,
}


class SqlRunStorage(SqlCapability):
    def add_run(self, record: RunRecord, tags: Mapping[str, str] | None = None) -> None:
        with self._db.transaction(write=True) as conn:
            row = {"id": record.id, "name": record.name, "parent_id": record.parent_id,
                   "status": record.status, "started_at": record.started_at,
                   "ended_at": record.ended_at, "environment": record.environment,
                   "git_commit": record.git_commit, "git_dirty": record.git_dirty}
            statement = self._db.insert(tables.runs).on_conflict_do_nothing()
            if conn.execute(statement.returning(tables.runs.c.id), row).first() is None:
                raise FlywheelError(f"run {record.id} is already recorded")
            _set_tags(conn, self._db.insert, record.id, tags or {})

    def end_run(self, run_id: str, status: RunStatus, ended_at: dt.datetime) -> None:
        with self._db.transaction(write=True) as conn:
            runs = tables.runs
            statement = (sa.update(runs).where(runs.c.id == run_id)
                         .values(status=status, ended_at=ended_at))
            if conn.execute(statement).rowcount == 0:
                raise _no_run(run_id)

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        with self._db.transaction() as conn:
            found: dict[str, RunRecord] = {}
            for chunk in _chunks(list(dict.fromkeys(run_ids))):
                query = sa.select(tables.runs).where(tables.runs.c.id.in_(chunk))
                found.update((row.id, _run_record(row)) for row in conn.execute(query))
            return [found[run_id] for run_id in run_ids if run_id in found]

    def find_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        with self._db.transaction() as conn:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = (sa.select(tables.runs.c.id)
                     .where(tables.runs.c.id.like(escaped + "%", escape="\\"))
                     .order_by(tables.runs.c.id).limit(limit))
            return list(conn.execute(query).scalars())

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        with self._db.transaction(write=True) as conn:
            if not params:
                return
            table = tables.run_params
            rows = [{"run_id": run_id, "key": key, "value": params[key]} for key in sorted(params)]
            conn.execute(self._db.insert(table).on_conflict_do_nothing(), rows)
            query = sa.select(table.c.key, table.c.value).where(
                table.c.run_id == run_id, table.c.key.in_(list(params)))
            for key, value in conn.execute(query):
                if value != params[key]:
                    raise FlywheelError(
                        f"param '{key}' of run {run_id} was logged as '{value}', "
                        f"now '{params[key]}'",
                        hint="params are fixed once logged: start another run to change them")

    def log_metrics(self, points: Sequence[MetricPoint]) -> None:
        with self._db.transaction(write=True) as conn:
            if not points:
                return
            _append_points(conn, points)
            latest: dict[tuple[str, str], MetricPoint] = {}
            for point in points:
                key = (point.run_id, point.key)
                seen = latest.get(key)
                if seen is None or (point.step, point.timestamp) >= (seen.step, seen.timestamp):
                    latest[key] = point
            table = tables.run_latest_metrics
            statement = self._db.insert(table)
            newer = sa.or_(statement.excluded.step > table.c.step,
                           sa.and_(statement.excluded.step == table.c.step,
                                   statement.excluded.timestamp >= table.c.timestamp))
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.run_id, table.c.key],
                set_={"value": statement.excluded.value, "step": statement.excluded.step,
                      "timestamp": statement.excluded.timestamp},
                where=newer)
            # Sorted, so concurrent PostgreSQL writers lock rows in one order and cannot deadlock.
            conn.execute(statement, [_metric_row(latest[key]) for key in sorted(latest)])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        with self._db.transaction(write=True) as conn:
            _set_tags(conn, self._db.insert, run_id, tags)

    def add_run_artifacts(self, records: Sequence[RunArtifactRecord]) -> None:
        with self._db.transaction(write=True) as conn:
            if not records:
                return
            table = tables.run_artifacts
            rows = [{"run_id": r.run_id, "name": r.name, "sha256": r.sha256, "kind": r.kind,
                     "size": r.size} for r in sorted(records, key=lambda r: (r.run_id, r.name))]
            conn.execute(self._db.insert(table).on_conflict_do_nothing(), rows)
            for record in records:
                query = sa.select(table.c.sha256).where(table.c.run_id == record.run_id,
                                                        table.c.name == record.name)
                if conn.execute(query).scalar() != record.sha256:
                    raise FlywheelError(f"run {record.run_id} already has an artifact "
                                        f"'{record.name}' with other content",
                                        hint="log it under another name")

    def add_run_inputs(self, run_id: str, table_versions: Mapping[str, int]) -> None:
        with self._db.transaction(write=True) as conn:
            if not table_versions:
                return
            table = tables.run_inputs
            rows = [{"run_id": run_id, "table_name": name, "version": table_versions[name]}
                    for name in sorted(table_versions)]
            conn.execute(self._db.insert(table).on_conflict_do_nothing(), rows)
            query = sa.select(table.c.table_name, table.c.version).where(
                table.c.run_id == run_id, table.c.table_name.in_(list(table_versions)))
            for name, version in conn.execute(query):
                if version != table_versions[name]:
                    raise FlywheelError(f"run {run_id} read table '{name}' at version {version} "
                                        f"already, not {table_versions[name]}")

    def run_details(self, run_ids: Sequence[str]) -> dict[str, RunDetails]:
        with self._db.transaction() as conn:
            details = {run_id: RunDetails() for run_id in run_ids}
            for chunk in _chunks(list(details)):
                for row in _rows(conn, tables.run_params, chunk):
                    details[row.run_id].params[row.key] = row.value
                for row in _rows(conn, tables.run_tags, chunk):
                    details[row.run_id].tags[row.key] = row.value
                for row in _rows(conn, tables.run_latest_metrics, chunk):
                    details[row.run_id].metrics[row.key] = _metric_point(row)
                for row in _rows(conn, tables.run_artifacts, chunk):
                    details[row.run_id].artifacts[row.name] = RunArtifactRecord(
                        row.run_id, row.name, row.sha256, row.kind, row.size)
                for row in _rows(conn, tables.run_inputs, chunk):
                    details[row.run_id].inputs[row.table_name] = row.version
            return details

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        with self._db.transaction() as conn:
            table = tables.run_metrics
            query = (sa.select(table).where(table.c.run_id == run_id, table.c.key == key)
                     .order_by(table.c.step, table.c.timestamp))
            return [_metric_point(row) for row in conn.execute(query)]

    def search_runs(self, query: RunQuery) -> list[RunRecord]:
        with self._db.transaction() as conn:
            runs = tables.runs
            statement = sa.select(runs)
            if query.name is not None:
                statement = statement.where(runs.c.name == query.name)
            if query.status is not None:
                statement = statement.where(runs.c.status == query.status)
            if query.parent_id is not None:
                statement = statement.where(runs.c.parent_id == query.parent_id)
            if query.top_level:
                statement = statement.where(runs.c.parent_id.is_(None))
            for condition in query.filters:
                statement = statement.where(_exists(condition))
            order: list[sa.ColumnElement[Any]] = []
            if query.order_by is not None:
                latest = tables.run_latest_metrics.alias("ordering")
                statement = statement.outerjoin(
                    latest, sa.and_(latest.c.run_id == runs.c.id, latest.c.key == query.order_by))
                # NaN is stored as NULL, so runs whose value is NaN sort with those without one.
                value = latest.c.value.desc() if query.descending else latest.c.value.asc()
                order.append(value.nulls_last())
            order += [runs.c.started_at.desc(), runs.c.id]
            statement = statement.order_by(*order).limit(query.limit)
            return [_run_record(row) for row in conn.execute(statement)]


def _set_tags(conn: sa.Connection, insert: Callable[[sa.Table], Insert], run_id: str,
              tags: Mapping[str, str]) -> None:
    if not tags:
        return
    statement = insert(tables.run_tags)
    statement = statement.on_conflict_do_update(
        index_elements=[tables.run_tags.c.run_id, tables.run_tags.c.key],
        set_={"value": statement.excluded.value})
    conn.execute(statement, [{"run_id": run_id, "key": k, "value": tags[k]} for k in sorted(tags)])


def _exists(condition: RunFilter) -> sa.Exists:
    table = {"params": tables.run_params, "tags": tables.run_tags,
             "metrics": tables.run_latest_metrics}[condition.field]
    value = float(condition.value) if condition.field == "metrics" else str(condition.value)
    return sa.exists().where(table.c.run_id == tables.runs.c.id, table.c.key == condition.key,
                             _OPS[condition.op](table.c.value, value))


def _append_points(conn: sa.Connection, points: Sequence[MetricPoint]) -> None:
    """One executemany on the driver: SQLAlchemy's per-row parameter processing would
    cost more than the database's work. Timestamps, few per batch, are converted once."""
    dialect = conn.dialect
    table = tables.run_metrics
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {quote(table.name)} "
           f"({', '.join(quote(column.name) for column in table.columns)}) "
           f"VALUES ({', '.join([mark] * len(table.columns))})")
    timestamp = table.c.timestamp.type
    processor = timestamp.dialect_impl(dialect).bind_processor(dialect)
    convert: Callable[[Any], Any] = processor if processor is not None else (lambda v: v)
    stamps: dict[Any, Any] = {}
    rows = []
    for p in points:
        stamp = stamps.get(p.timestamp)
        if stamp is None:
            stamp = stamps[p.timestamp] = convert(p.timestamp)
        rows.append((p.run_id, p.key, None if p.value != p.value else p.value, p.step, stamp))
    conn.exec_driver_sql(sql, rows)


def _rows(conn: sa.Connection, table: sa.Table, run_ids: list[str]) -> Iterator[Row]:
    return iter(conn.execute(sa.select(table).where(table.c.run_id.in_(run_ids))))


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _metric_row(point: MetricPoint) -> dict[str, Any]:
    value = None if math.isnan(point.value) else point.value
    return {"run_id": point.run_id, "key": point.key, "value": value, "step": point.step,
            "timestamp": point.timestamp}


def _metric_point(row: Row) -> MetricPoint:
    value = math.nan if row.value is None else float(row.value)
    return MetricPoint(row.run_id, row.key, value, row.step, row.timestamp)


def _run_record(row: Row) -> RunRecord:
    return RunRecord(id=row.id, name=row.name, status=cast(RunStatus, row.status),
                     started_at=row.started_at, ended_at=row.ended_at,
                     parent_id=row.parent_id, environment=row.environment,
                     git_commit=row.git_commit, git_dirty=row.git_dirty)


def _no_run(run_id: str) -> FlywheelError:
    return FlywheelError(f"no run {run_id}", hint="see `flywheel runs list`")

