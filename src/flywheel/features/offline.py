"""Point-in-time correct training sets, on DuckDB's ASOF join.

For each entity row and its timestamp, each view contributes its latest row for the same
key with a timestamp at or before it (never after: no leakage from the future), or nulls
when there is none or it is older than the view's TTL. Rows of one key and timestamp are
tied: the latest `created_column` wins, then the greatest feature values, so the answer
never depends on file order. Entity rows keep their order, duplicates included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pyarrow as pa

from flywheel._core.errors import InputError
from flywheel._core.hashing import sha256_text
from flywheel._core.text import first_line
from flywheel.features.definitions import FeatureDefinitionError, FeatureView
from flywheel.tables.sql import duckdb_connection, quote_ident
from flywheel.transforms.store import DerivedTables

if TYPE_CHECKING:
    import polars

ROW = "__flywheel_row"
AT = "__flywheel_at"
FRAME_NOTE = "a frame passed in memory: no table lineage"


@dataclass(frozen=True, slots=True)
class EntitySource:
    """Where the entity rows of a training set (keys, timestamps, labels) came from."""

    kind: Literal["table", "query", "frame"]
    text: str | None = None
    """The table's name, or the SQL query; None for a frame."""
    tables: dict[str, int] = field(default_factory=dict)
    """The version of each derived table the rows were read from ({} for a frame)."""

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind, "text": self.text,
                                 "tables": dict(self.tables)}
        if self.kind == "frame":
            found["note"] = FRAME_NOTE
        return found


@dataclass(frozen=True)
class HistoricalFeatures:
    """A training set: convert with to_arrow(), to_pandas() or to_polars()."""

    table: pa.Table
    table_versions: dict[str, int] = field(default_factory=dict)
    """The version of each table read, the entity table(s) too: rebuild the same set
    with them."""
    entities: EntitySource | None = None
    """Where the entity rows came from: a table, a query (and the tables it read), or a
    frame."""
    feature_service: str | None = None
    feature_tables: dict[str, int] | None = None
    """The versions of the feature views' source tables (default: `table_versions`)."""

    def lineage(self) -> dict[str, Any]:
        """What a run records of this training set (see `Run.log_training_set`)."""
        entities = self.entities.as_dict() if self.entities is not None else None
        features = self.feature_tables if self.feature_tables is not None else \
            self.table_versions
        return {"feature_service": self.feature_service, "entities": entities,
                "feature_tables": dict(features), "rows": self.table.num_rows}

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> Any:  # a pandas.DataFrame (pandas ships no type hints)
        return self.table.to_pandas()

    def to_polars(self) -> polars.DataFrame:
        import polars as pl

        frame = pl.from_arrow(self.table)
        assert isinstance(frame, pl.DataFrame)  # a table gives a frame, not a series
        return frame


def as_arrow(entity: Any) -> pa.Table:
    if isinstance(entity, pa.Table):
        return entity
    if hasattr(entity, "to_arrow"):  # Polars
        return pa.table(entity.to_arrow())
    if hasattr(entity, "columns") and hasattr(entity, "iloc"):  # pandas
        return pa.Table.from_pandas(entity, preserve_index=False)
    raise InputError(f"entity_df of type {type(entity).__name__} is not a frame",
                     hint="pass a pandas, Polars or Arrow frame, a table name or a SQL query")


def entity_rows(entity_df: Any, tables: DerivedTables, names: Sequence[str]
                ) -> tuple[pa.Table, EntitySource]:
    """The entity rows of `entity_df` (a frame, a derived table's name, or a SQL query over
    derived tables) and where they came from, each table read at one pinned version."""
    if not isinstance(entity_df, str):
        return as_arrow(entity_df), EntitySource("frame")
    if entity_df in names:
        version = tables.version(entity_df)
        if version is None:
            raise InputError(f"entity table '{entity_df}' has not been built yet",
                             hint="run `flywheel transform`")
        return tables.read(entity_df, version), EntitySource("table", entity_df,
                                                             {entity_df: version})
    built = {name: version for name in names
             if (version := tables.version(name)) is not None}
    con = duckdb_connection()  # a SQL query over the derived tables, by name
    try:
        for name, version in built.items():
            con.register(name, tables.handle(name).dataset(version))
        try:
            rows = con.sql(entity_df).to_arrow_table()
        except Exception as exc:
            raise FeatureDefinitionError(
                f"entity_df query failed: {first_line(exc, None)}",
                hint="a SQL query may read derived tables by name") from exc
        read = _tables_named(con, entity_df, built)
    finally:
        con.close()
    return rows, EntitySource("query", entity_df, {name: built[name] for name in read})


def _tables_named(con: Any, query: str, known: Mapping[str, int]) -> list[str]:
    """The derived tables `query` names, from DuckDB's parse tree (no binding needed).
    A CTE named like a derived table counts as reading it: lineage may say too much,
    never too little. Unparseable (it ran, so unlikely): every table it could have read."""
    ((tree,),) = con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()
    parsed = json.loads(tree)
    if parsed.get("error"):
        return sorted(known)
    found: set[str] = set()
    pending: list[Any] = [parsed]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
                found.add(node["table_name"].lower())
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return sorted(name for name in known if name.lower() in found)


class TieIndex(Protocol):
    """Remembers whether a table version has rows tied on (join keys, timestamp). Versions
    are immutable, so the answer never changes once known."""

    def get_cursor(self, name: str) -> str | None: ...

    def set_cursor(self, name: str, value: str) -> None: ...


def _not_null(view: FeatureView) -> str:
    return " AND ".join(f"{quote_ident(k)} IS NOT NULL"
                        for k in (*view.join_keys, view.timestamp_column))


def _has_ties(con: Any, i: int, view: FeatureView) -> bool:
    columns = ", ".join(quote_ident(k) for k in (*view.join_keys, view.timestamp_column))
    ((tied,),) = con.sql(f"SELECT count(*) > count(DISTINCT ({columns})) FROM __source{i} "
                         f"WHERE {_not_null(view)}").fetchall()
    return bool(tied)


def _view_sql(i: int, view: FeatureView, features: list[str], ties: bool) -> str:
    keys = ", ".join(quote_ident(k) for k in view.join_keys)
    ts = quote_ident(view.timestamp_column)
    columns = ", ".join(quote_ident(f) for f in features)
    select = (f"SELECT {keys}, CAST({ts} AS TIMESTAMPTZ) AS __ts, {columns} FROM __source{i} "
              f"WHERE {_not_null(view)}")
    if not ties:
        # Every (key, time) is unique: the ASOF join's pick is the only row, no window needed.
        return select
    order = [f"{quote_ident(view.created_column)} DESC NULLS LAST"] if view.created_column else []
    order += [f"{quote_ident(f)} DESC NULLS LAST" for f in features]
    return (f"{select} QUALIFY row_number() OVER (PARTITION BY {keys}, {ts} "
            f"ORDER BY {', '.join(order)}) = 1")


def _ties(con: Any, i: int, view: FeatureView, version: int, index: TieIndex | None) -> bool:
    """Whether the view's source version has tied rows: asked of DuckDB once per version
    (a pass over the table, cheaper than the tie-break window it can save), then kept."""
    name = (f"ties:{view.source}@{version}:"
            f"{sha256_text(repr((view.join_keys, view.timestamp_column)))[:16]}")
    known = index.get_cursor(name) if index is not None else None
    if known is not None:
        return known == "1"
    tied = _has_ties(con, i, view)
    if index is not None:
        index.set_cursor(name, "1" if tied else "0")
    return tied


def _check_columns(view: FeatureView, features: list[str], columns: list[str]) -> None:
    """A view whose table lost (or never had) a column it names: say which, in its terms
    (`flywheel apply` checks this too, but the files may have changed since)."""
    missing = sorted({*view.join_keys, view.timestamp_column, *features} - set(columns))
    if missing:
        raise FeatureDefinitionError(
            f"feature view {view.name}: table {view.source} has no column(s) "
            f"{', '.join(missing)}", hint=f"it has: {', '.join(sorted(columns))}")


def historical_features(entity: pa.Table, plan: dict[str, list[str]],
                        views: dict[str, FeatureView], tables: DerivedTables,
                        timestamp_column: str = "event_timestamp",
                        ties: TieIndex | None = None,
                        pinned: Mapping[str, int] | None = None) -> HistoricalFeatures:
    """Join `plan` ({view: [features]}) onto the `entity` rows, point in time. A table in
    `pinned` is read at that version (the one its entity rows came from), others at
    their latest."""
    missing = [k for v in plan for k in (*views[v].join_keys, timestamp_column)
               if k not in entity.column_names]
    if missing:
        raise InputError(f"entity_df lacks column(s) {', '.join(sorted(set(missing)))}",
                         hint=f"it needs the join keys and '{timestamp_column}'")
    taken = set(entity.column_names)
    for features in plan.values():
        clash = taken.intersection(features)
        if clash:
            raise FeatureDefinitionError(f"feature name(s) {', '.join(sorted(clash))} "
                                         "appear twice in the result",
                                         hint="rename one of them in its view")
        taken.update(features)
    con = duckdb_connection()
    versions: dict[str, int] = {}
    try:
        con.register("__entity_in", entity.append_column(ROW, pa.array(range(entity.num_rows),
                                                                          pa.int64())))
        joins, selected = [], []
        for i, (name, features) in enumerate(plan.items()):
            view = views[name]
            version = (pinned or {}).get(view.source)
            if version is None:
                version = tables.version(view.source)
            if version is None:
                raise InputError(f"feature view {name}: its source table {view.source} has "
                                 "not been built", hint="run `flywheel transform`")
            versions[view.source] = version
            dataset = tables.handle(view.source).dataset(version)
            _check_columns(view, features, dataset.schema.names)
            con.register(f"__source{i}", dataset)
            tied = _ties(con, i, view, version, ties)
            con.execute(f"CREATE TEMP VIEW __view{i} AS {_view_sql(i, view, features, tied)}")
            on = " AND ".join(f"e.{quote_ident(k)} = v{i}.{quote_ident(k)}" for k in view.join_keys)
            joins.append(f"ASOF LEFT JOIN __view{i} v{i} ON {on} AND e.{AT} >= v{i}.__ts")
            fresh = "TRUE" if view.max_age is None else (
                f"v{i}.__ts >= e.{AT} - INTERVAL '{int(view.max_age.total_seconds() * 1e6)} "
                "microseconds'")
            selected += [f"CASE WHEN {fresh} THEN v{i}.{quote_ident(f)} END AS {quote_ident(f)}"
                         for f in features]
        query = (f"SELECT e.* EXCLUDE ({ROW}, {AT}), {', '.join(selected)} FROM "
                 f"(SELECT *, CAST({quote_ident(timestamp_column)} AS TIMESTAMPTZ) AS {AT} "
                 f"FROM __entity_in) e {' '.join(joins)} ORDER BY e.{ROW}")
        try:
            table = con.sql(query).to_arrow_table()
        except Exception as exc:
            raise InputError(f"cannot join features: {first_line(exc, None)}",
                             hint="check that join key types match the source tables") from exc
    finally:
        con.close()
    return HistoricalFeatures(table, versions)
