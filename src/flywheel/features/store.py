"""`project.features`: the feature store's entry points."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel.features.definitions import (
    FeatureDefinitionError,
    FeatureRegistry,
    load_definitions,
)
from flywheel.features.offline import HistoricalFeatures, as_arrow, historical_features
from flywheel.transforms.store import DerivedTables, duckdb_connection


class FeatureStore:
    def __init__(self, definitions: Path, tables: DerivedTables,
                 table_names: Callable[[], Sequence[str]]) -> None:
        self._path = definitions
        self._tables = tables
        self._table_names = table_names
        self._registry: FeatureRegistry | None = None

    @property
    def registry(self) -> FeatureRegistry:
        if self._registry is None:
            self._registry = load_definitions(self._path)
        return self._registry

    def check(self, transforms: Sequence[str]) -> FeatureRegistry:
        """Every view's source is a derived table; once built, it has the view's columns."""
        registry = load_definitions(self._path)
        for view in registry.views.values():
            if view.source not in transforms:
                raise FeatureDefinitionError(
                    f"feature view {view.name}: source '{view.source}' is not a transform",
                    hint="a feature view reads a derived table, built by a transform")
            if self._tables.version(view.source) is None:
                continue
            columns = set(self._tables.handle(view.source).schema().names)
            wanted = {*view.join_keys, view.timestamp_column, *view.features}
            missing = sorted(wanted - columns)
            if missing:
                raise FeatureDefinitionError(
                    f"feature view {view.name}: table {view.source} has no column(s) "
                    f"{', '.join(missing)}", hint=f"it has: {', '.join(sorted(columns))}")
        self._registry = registry
        return registry

    def get_historical_features(self, entity_df: Any, *, features: Sequence[str] | None = None,
                                feature_service: str | None = None,
                                timestamp_column: str = "event_timestamp",
                                ) -> HistoricalFeatures:
        """For every entity row, each feature's latest value at or before the row's
        timestamp (within the view's TTL), else null."""
        plan = self.registry.resolve(features, feature_service)
        entity = self._entities(entity_df)
        return historical_features(entity, plan, self.registry.views, self._tables,
                                   timestamp_column)

    def _entities(self, entity_df: Any) -> pa.Table:
        if not isinstance(entity_df, str):
            return as_arrow(entity_df)
        names = list(self._table_names())
        if entity_df in names:
            return self._tables.read(entity_df)
        con = duckdb_connection()  # a SQL query over the derived tables, by name
        try:
            for name in names:
                if self._tables.version(name) is not None:
                    con.register(name, self._tables.handle(name).dataset())
            return con.sql(entity_df).to_arrow_table()
        except Exception as exc:
            raise FeatureDefinitionError(
                f"entity_df query failed: {str(exc).splitlines()[0]}",
                hint="a SQL query may read derived tables by name") from exc
        finally:
            con.close()
