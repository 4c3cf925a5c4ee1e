"""`project.features`: the feature store's entry points."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel._core.errors import InputError
from flywheel._core.metadata.table_versions import TableVersions
from flywheel._core.online import OnlineRow, OnlineStore
from flywheel.features.definitions import FeatureDefinitionError, FeatureRegistry, Plan
from flywheel.features.loading import DEFINITIONS_FILE, load_definitions
from flywheel.features.offline import HistoricalFeatures, entity_rows, historical_features
from flywheel.features.online import (
    MaterializeRun,
    OnlineFeatures,
    OnlineReader,
    Progress,
    entity_key,
    materialize,
)
from flywheel.features.yaml_file import YAML_FILE
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.result import IngestResult
from flywheel.transforms.store import DerivedTables

_log = logging.getLogger("flywheel.features")

_MAX_READERS = 1_024


class FeatureStore:
    """`project.features`: definitions from `definitions.py` and `features.yaml`, training
    sets, materialisation and online reads."""

    def __init__(self, *, folder: Path, tables: DerivedTables,
                 transform_names: Callable[[], Sequence[str]], versions: TableVersions,
                 online: OnlineStore, ingestor: Ingestor) -> None:
        self._folder = folder
        """Holds definitions.py and features.yaml."""
        self._tables = tables
        self._transform_names = transform_names
        """The project's transforms, in run order: the tables an `entity_df` may name."""
        self._versions = versions
        self._online = online
        self._ingestor = ingestor
        self._registry: FeatureRegistry | None = None
        # Compiled online reads by request shape; tied to the registry they were made from.
        self._readers: dict[tuple[Any, ...], tuple[Plan, OnlineReader]] = {}
        self._reload_every: float | None = None
        self._next_check = 0.0
        self._stamp: tuple[tuple[int, int] | None, ...] = ()

    def materialize(self, views: Sequence[str] | None = None, *, full: bool = False,
                    on_progress: Progress | None = None) -> list[MaterializeRun]:
        """Write each view's latest values (within its TTL) to the online store, reading
        only what its source table gained since the last time, while it only grew."""
        registry = self.registry
        names = list(views) if views else sorted(registry.views)
        unknown = [n for n in names if n not in registry.views]
        if unknown:
            raise FeatureDefinitionError(f"no feature view named {', '.join(unknown)}",
                                         hint="`flywheel features list` shows them")
        return [materialize(registry.views[n], self._tables, self._online, self._versions,
                            full=full, on_progress=on_progress) for n in names]

    def get_online_features(self, *, entities: Mapping[str, Sequence[Any]],
                            features: Sequence[str] | None = None,
                            feature_service: str | None = None,
                            request_data: Mapping[str, Sequence[Any]] | None = None,
                            ) -> OnlineFeatures:
        """The latest values for `entities` ({join key: [values]}), every view in one
        round trip to the online store; unknown entities give nulls, flagged in `found`."""
        if self._reload_every is not None and time.monotonic() >= self._next_check:
            self._reload_if_changed()
        plan, reader = self._reader(features, feature_service, entities)
        _check_request_data(request_data, entities)
        result = reader.read(entities, self._online)
        if not plan.on_demand:
            return result
        columns = {**result.columns, **{k: list(v) for k, v in (request_data or {}).items()}}
        columns = self._with_on_demand(plan, columns, list(entities))
        return OnlineFeatures(columns, result.found)

    def push(self, view: str, rows: Sequence[Mapping[str, Any]], *, schema: str) -> IngestResult:
        """Update the online store at once and append the rows to the log as events of
        `schema` (the view's source transform reads that log table, so offline agrees).
        Rows the log rejects are not pushed online; the result says why."""
        target = self.registry.views.get(view)
        if target is None:
            raise FeatureDefinitionError(f"no feature view named '{view}'")
        ts = target.timestamp_column
        events = [{"schema": schema, "event_time": row[ts],
                   "data": {k: v for k, v in row.items() if k != ts}} for row in rows]
        result = self._ingestor.ingest(events, door="push")
        rejected = {e.index for e in result.errors}
        accepted = [row for i, row in enumerate(rows) if i not in rejected]
        online_rows = [OnlineRow(entity_key([row[k] for k in target.join_keys]),
                                 {f: row.get(f) for f in target.feature_names}, _when(row[ts]))
                       for row in accepted]
        self._online.put(view, online_rows)
        return result

    def _reader(self, features: Sequence[str] | None, service: str | None,
                entities: Mapping[str, Sequence[Any]]) -> tuple[Plan, OnlineReader]:
        shape = (None if features is None else tuple(features), service, tuple(entities))
        cached = self._readers.get(shape)
        if cached is None:
            registry = self.registry
            plan = registry.plan(features, service)
            cached = (plan, OnlineReader(plan.lookups, registry.views, list(entities)))
            if len(self._readers) >= _MAX_READERS:
                self._readers.clear()  # shapes come from callers: keep the cache bounded
            self._readers[shape] = cached
        return cached

    @property
    def registry(self) -> FeatureRegistry:
        if self._registry is None:
            stamp = self._file_stamp()  # before loading: an edit meanwhile is seen later
            self._set_registry(load_definitions(self._folder), stamp)
        assert self._registry is not None
        return self._registry

    def _set_registry(self, registry: FeatureRegistry, stamp: tuple[Any, ...]) -> None:
        self._readers = {}
        self._registry = registry
        self._stamp = stamp

    def reload_on_change(self, every_seconds: float = 1.0) -> None:
        """Pick up edited definition files in a long-running process (a server): at most
        every `every_seconds`, reads see the new definitions. A file that no longer loads
        is logged, and the definitions loaded last keep serving."""
        self._reload_every = every_seconds

    def _reload_if_changed(self) -> None:
        assert self._reload_every is not None
        self._next_check = time.monotonic() + self._reload_every
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        try:
            self._set_registry(load_definitions(self._folder), stamp)
        except FeatureDefinitionError as exc:
            self._stamp = stamp  # report a broken file once, not on every check
            _log.warning("feature definitions not reloaded, still serving the previous "
                         "ones: %s", exc.one_line())

    def _file_stamp(self) -> tuple[tuple[int, int] | None, ...]:
        stamps: list[tuple[int, int] | None] = []
        for name in (DEFINITIONS_FILE, YAML_FILE):
            try:
                info = (self._folder / name).stat()
            except OSError:
                stamps.append(None)
                continue
            stamps.append((info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def sort_orders(self) -> dict[str, list[str]]:
        """How each view's source table is best written: by entity, then time, so that
        point-in-time joins read it (nearly) in order. A table that feeds views of other
        keys is left to the transform's own order_by."""
        try:  # read afresh: definitions may have changed since this store loaded them
            views = list(load_definitions(self._folder).views.values())
        except FeatureDefinitionError:
            return {}  # broken definitions fail `apply` and reads, not building tables
        orders: dict[str, list[str]] = {}
        clashing: set[str] = set()
        for view in views:
            order = [*view.join_keys, view.timestamp_column]
            if orders.setdefault(view.source, order) != order:
                clashing.add(view.source)
        return {table: order for table, order in orders.items() if table not in clashing}

    def check(self, transforms: Sequence[str]) -> FeatureRegistry:
        """Every view's source is a derived table; once built, it has the view's columns."""
        stamp = self._file_stamp()
        registry = load_definitions(self._folder)
        for view in registry.views.values():
            if view.source not in transforms:
                raise FeatureDefinitionError(
                    f"feature view {view.name}: source '{view.source}' is not a transform",
                    hint="a feature view reads a derived table, built by a transform")
            if self._tables.version(view.source) is None:
                continue
            schema = self._tables.handle(view.source).schema()
            wanted = {*view.join_keys, view.timestamp_column, *view.feature_names}
            missing = sorted(wanted - set(schema.names))
            if missing:
                raise FeatureDefinitionError(
                    f"feature view {view.name}: table {view.source} has no column(s) "
                    f"{', '.join(missing)}", hint=f"it has: {', '.join(sorted(schema.names))}")
            for feature in view.specs:
                column = schema.field(feature.name).type
                if not feature.accepts(column):
                    raise FeatureDefinitionError(
                        f"feature view {view.name}: feature {feature.name} is declared "
                        f"{feature.dtype}, but column {feature.name} of table {view.source} "
                        f"is {column}", hint="fix the declared type or the transform")
        self._set_registry(registry, stamp)
        return registry

    def get_historical_features(self, entity_df: Any, *, features: Sequence[str] | None = None,
                                feature_service: str | None = None,
                                timestamp_column: str = "event_timestamp",
                                table_versions: Mapping[str, int] | None = None,
                                ) -> HistoricalFeatures:
        """For every entity row, each feature's latest value at or before the row's
        timestamp (within the view's TTL), else null. A table in `table_versions` is read
        at that version (a batch read in parts reads one snapshot), others at their newest."""
        plan = self.registry.plan(features, feature_service)
        entity, source = entity_rows(entity_df, self._tables, list(self._transform_names()))
        result = historical_features(entity, plan.lookups, self.registry.views, self._tables,
                                     timestamp_column, ties=self._versions,
                                     pinned={**(table_versions or {}), **source.tables})
        table = result.table
        if plan.on_demand:
            table = pa.table(self._with_on_demand(plan, table.to_pydict(), entity.column_names))
        return HistoricalFeatures(table, {**source.tables, **result.table_versions},
                                  entities=source, feature_service=feature_service,
                                  feature_tables=result.table_versions)

    def _with_on_demand(self, plan: Plan, columns: dict[str, list[Any]],
                        keep: Sequence[str]) -> dict[str, list[Any]]:
        """Run the on-demand views over the looked-up columns and request fields, row by
        row, then drop the looked-up columns that only fed them."""
        count = len(next(iter(columns.values()), []))
        for name, outputs in plan.on_demand.items():
            odv = self.registry.on_demand[name]
            inputs = [r.partition(":")[2] for r in odv.sources] + list(odv.request)
            missing = [i for i in inputs if i not in columns]
            if missing:
                raise InputError(f"on-demand view {name} needs {', '.join(missing)}",
                                 hint="request fields come as entity_df columns offline and "
                                 "as request_data online")
            rows = [{i: columns[i][n] for i in inputs} for n in range(count)]
            computed = odv.apply(rows)
            for feature in outputs:
                columns[feature] = computed[feature]
        shown = set(keep) | set(plan.shown) | {f for fs in plan.on_demand.values() for f in fs}
        return {k: v for k, v in columns.items() if k in shown}


def _check_request_data(request_data: Mapping[str, Sequence[Any]] | None,
                        entities: Mapping[str, Sequence[Any]]) -> None:
    """One request value per entity, for each request field."""
    if not request_data:
        return
    count = len(next(iter(entities.values()), []))
    uneven = {k: len(v) for k, v in request_data.items() if len(v) != count}
    if uneven:
        shown = ", ".join(f"{k} x{n}" for k, n in uneven.items())
        raise InputError(f"request_data needs one value per entity ({count}); got {shown}")


def _when(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
