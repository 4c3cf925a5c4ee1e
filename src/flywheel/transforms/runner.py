"""Building derived tables: full rebuilds and incremental runs, gated by expectations.

A full build reads every input as of its newest offset. An incremental build reads only
the rows committed after the offsets its table's last version recorded (so late events,
old in time but new in the log, are never skipped), appends the output, or replaces rows
by `unique_key` keeping the latest by `latest_by`. Output goes to a candidate table in
DuckDB first; only a candidate that meets every expectation is published, in one Delta
commit, and recorded with the input offsets and code hash it came from.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel._core.errors import FlywheelError, InputError
from flywheel._core.metadata.table_versions import TableVersionRecord, TableVersions
from flywheel._core.text import first_line
from flywheel.log.store import LogStore
from flywheel.tables.delta import DeltaHandle
from flywheel.tables.sql import duckdb_connection, quote_ident
from flywheel.transforms.dag import TransformGraph
from flywheel.transforms.definitions import InputRef, TransformDef
from flywheel.transforms.expectations import Expectation, ExpectationFailed, check
from flywheel.transforms.store import DerivedTables

FULL = "full"
INCREMENTAL = "incremental"
SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class TransformRun:
    name: str
    mode: str
    version: int | None
    rows_in: int
    rows_out: int
    seconds: float
    note: str = ""


class TransformRunner:
    def __init__(self, *, graph: TransformGraph, log_store: LogStore, tables: DerivedTables,
                 versions: TableVersions, memory_limit: str = "2GB",
                 order_hints: Mapping[str, Sequence[str]] | None = None) -> None:
        self._graph = graph
        # Sort orders readers asked for (a feature view's entity and time), used by the
        # transforms that declare no order_by of their own.
        self._order_hints = dict(order_hints or {})
        self._log = log_store
        self._tables = tables
        self._metadata = versions
        self._memory_limit = memory_limit

    def run(self, names: Iterable[str] | None = None, *, full_refresh: bool = False,
            on_start: Callable[[str], None] | None = None,
            on_done: Callable[[TransformRun], None] | None = None) -> list[TransformRun]:
        """Build `names` (and what they read from), or every transform, in DAG order."""
        chosen = list(names or [])
        order = self._graph.upstream(chosen) if chosen else self._graph.order
        runs = []
        for name in order:
            if on_start is not None:
                on_start(name)
            # A named table is rebuilt alone; what it reads is only brought up to date.
            rebuild = full_refresh and (not chosen or name in chosen)
            run = self._run_one(self._graph.by_name[name], rebuild)
            runs.append(run)
            if on_done is not None:
                on_done(run)
        return runs

    # One transform ---------------------------------------------------------------------
    def _input_handle(self, ref: InputRef) -> DeltaHandle:
        if ref.is_log:
            return self._log.handle(self._graph.log_table(ref.target))
        return self._tables.handle(ref.target)

    def _run_one(self, t: TransformDef, full_refresh: bool) -> TransformRun:
        started = time.perf_counter()
        handles = {ref.alias: self._input_handle(ref) for ref in t.inputs}
        heads = {alias: _head(h) for alias, h in handles.items()}
        history = self._metadata.table_versions(t.name)
        last = history[-1] if history else None
        read_before = {a: v["upto"] for a, v in json.loads(last.inputs).items()} if last else {}
        output = self._tables.handle(t.name)
        same_code = last is not None and last.code_hash == t.code_hash and output.exists()
        if not full_refresh and same_code and read_before == heads:
            return TransformRun(t.name, SKIPPED, output.version(), 0, 0,
                                time.perf_counter() - started, "up to date")
        incremental = (t.is_incremental and same_code and not full_refresh
                       and not self._rewritten(t, read_before, heads))
        con = duckdb_connection(self._memory_limit)
        try:
            rows_in = self._register_inputs(con, t, handles, heads, read_before, incremental)
            if not incremental and output.can_publish_files():
                version, rows_out = self._build_in_place(con, t, output)
            else:
                con.execute(f"CREATE TEMP TABLE __candidate AS {self._output_query(con, t)}")
                if t.unique_key:
                    self._keep_latest(con, t, output if incremental else None)
                self._gate(con, t, output, incremental)
                version, rows_out = self._publish(con, t, output, incremental)
        finally:
            con.close()
        mode = INCREMENTAL if incremental else FULL
        inputs = {ref.alias: {"kind": "log" if ref.is_log else "table", "target": ref.target,
                              "after": read_before.get(ref.alias, -1) if incremental else -1,
                              "upto": heads[ref.alias]} for ref in t.inputs}
        self._metadata.add_table_version(TableVersionRecord(
            t.name, version, mode, t.code_hash, json.dumps(inputs, sort_keys=True),
            rows_in, rows_out))
        return TransformRun(t.name, mode, version, rows_in, rows_out,
                            time.perf_counter() - started)

    def _register_inputs(self, con: Any, t: TransformDef, handles: dict[str, DeltaHandle],
                         heads: dict[str, int], read_before: dict[str, int],
                         incremental: bool) -> int:
        rows_in = 0
        for ref in t.inputs:
            handle, head = handles[ref.alias], heads[ref.alias]
            if head < 0:
                raise_missing(t, ref)
            if incremental and self._streams(ref):
                changes = handle.changes(read_before.get(ref.alias, -1), head,
                                         offsets=False)
                data = changes if changes.num_rows else handle.schema().empty_table()
                rows_in += data.num_rows
                con.register(ref.alias, data)
            else:
                dataset = handle.dataset(head)
                rows_in += dataset.count_rows()
                con.register(ref.alias, dataset)
        return rows_in

    def _streams(self, ref: InputRef) -> bool:
        """Read as changes in an incremental run: the log and append-only derived tables.
        A `table` input is a snapshot, read whole."""
        return ref.is_log or self._graph.by_name[ref.target].is_incremental

    def _rewritten(self, t: TransformDef, read_before: dict[str, int],
                   heads: dict[str, int]) -> bool:
        """Whether a derived input got a version that is not an append since the last run
        (a full build: replay, --full-refresh, changed code, or any `table` rebuild); its
        change feed is then not new rows, so this transform must be rebuilt too."""
        for ref in t.inputs:
            if ref.is_log:
                continue
            after, upto = read_before.get(ref.alias, -1), heads[ref.alias]
            if any(after < r.version <= upto and r.mode != INCREMENTAL
                   for r in self._metadata.table_versions(ref.target)):
                return True
        return False

    def _output_query(self, con: Any, t: TransformDef) -> str:
        """The SQL that yields the transform's output (a Python transform runs here)."""
        if t.sql is not None:
            try:
                con.execute(f"EXPLAIN {t.sql}")  # a bad query fails here, with its message
            except Exception as exc:
                raise TransformFailed(t, f"its SQL failed: {first_line(exc, None)}") from exc
            return t.sql
        assert t.function is not None
        arguments = {ref.alias: _as_argument(con.sql(f"SELECT * FROM {ref.alias}")
                                             .to_arrow_table(), t.function, ref.alias)
                     for ref in t.inputs}
        try:
            result = t.function(**arguments)
        except Exception as exc:
            raise TransformFailed(t, f"the function raised {type(exc).__name__}: {exc}"
                                  ) from exc
        con.register("__result", _to_arrow(result, t))
        return "SELECT * FROM __result"

    def _build_in_place(self, con: Any, t: TransformDef,
                        output: DeltaHandle) -> tuple[int, int]:
        """Write, audit, publish: DuckDB writes the output's Parquet files inside the table
        folder in parallel; expectations run over those files; only then does one commit
        make them the table's content. Files of a refused version are deleted."""
        query = self._output_query(con, t)
        if t.unique_key and t.latest_by:
            query = f"SELECT * FROM ({query}) c QUALIFY {self._latest_rank(t)} = 1"
        query = self._sorted(con, query, t)
        folder = output.staging_folder()
        try:
            target = str(folder / "out").replace("'", "''")
            try:
                con.execute(f"COPY ({query}) TO '{target}' "
                            "(FORMAT PARQUET, PER_THREAD_OUTPUT true, COMPRESSION snappy)")
            except Exception as exc:
                raise TransformFailed(t, f"its SQL failed: {first_line(exc, None)}"
                                      ) from exc
            files = sorted(folder.rglob("*.parquet"))
            if not files:  # no rows: one empty file keeps the schema
                files = [folder / "empty.parquet"]
                pq.write_table(con.sql(f"SELECT * FROM ({query}) LIMIT 0").to_arrow_table(),
                               files[0])
            listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE TEMP VIEW __candidate AS SELECT * FROM read_parquet([{listed}])")
            self._gate(con, t, output, incremental=False)
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            return output.publish_files(files, pq.read_schema(files[0])), rows
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _sorted(self, con: Any, query: str, t: TransformDef) -> str:
        order = t.order_by
        if not order:
            hint = self._order_hints.get(t.name, ())
            # A hint is advice: it applies only if the output has those columns.
            if hint and set(hint) <= set(self._columns(con, query, t)):
                order = tuple(hint)
        if not order:
            return query
        return f"SELECT * FROM ({query}) s ORDER BY {', '.join(quote_ident(c) for c in order)}"

    def _columns(self, con: Any, query: str, t: TransformDef) -> list[str]:
        try:
            columns: list[str] = con.sql(f"SELECT * FROM ({query}) LIMIT 0").columns
        except Exception as exc:
            raise TransformFailed(t, f"its SQL failed: {first_line(exc, None)}") from exc
        return columns

    def _latest_rank(self, t: TransformDef) -> str:
        keys = ", ".join(quote_ident(k) for k in t.unique_key)
        return (f"row_number() OVER (PARTITION BY {keys} ORDER BY {quote_ident(str(t.latest_by))} "
                "DESC, CAST(c AS VARCHAR) DESC)")

    def _keep_latest(self, con: Any, t: TransformDef, existing: DeltaHandle | None) -> None:
        """One row per key. Without `latest_by` a repeated key is left for the `unique`
        expectation to refuse; with it, the latest row wins, ties broken by content, so a
        full build and any sequence of incremental ones agree."""
        keys = ", ".join(quote_ident(k) for k in t.unique_key)
        if not t.latest_by:
            if existing is not None and existing.exists():
                self._refuse_existing_keys(con, t, existing, keys)
            return
        if existing is not None and existing.exists():
            con.register("__existing", existing.dataset())
            con.execute(f"INSERT INTO __candidate BY NAME SELECT * FROM __existing "
                        f"WHERE ({keys}) IN (SELECT ({keys}) FROM __candidate)")
        con.execute("CREATE OR REPLACE TEMP TABLE __candidate AS SELECT * FROM __candidate c "
                    f"QUALIFY {self._latest_rank(t)} = 1")

    def _refuse_existing_keys(self, con: Any, t: TransformDef, existing: DeltaHandle,
                              keys: str) -> None:
        """Without `latest_by` nothing says which row of a key wins, so a key that is
        already in the table is refused, as a full build would refuse it."""
        con.register("__existing", existing.dataset())
        clash = con.sql(f"SELECT {keys} FROM __candidate WHERE ({keys}) IN "
                        f"(SELECT ({keys}) FROM __existing)").fetchall()
        if clash:
            raise ExpectationFailed(
                f"{t.name}: expectation unique({', '.join(t.unique_key)}) failed on "
                f"{len(clash)} row(s) already in the table, e.g. {clash[:3]}",
                hint="the new version was not published; set latest_by to keep the latest")

    def _gate(self, con: Any, t: TransformDef, output: DeltaHandle,
              incremental: bool) -> None:
        """Row-wise expectations judge the new rows; the others (unique, sql,
        row_count_change) the table as it would be after publishing."""
        texts = list(t.expectations)
        if t.unique_key and not t.latest_by:
            texts.append(f"unique({', '.join(t.unique_key)})")
        whole = "__candidate"
        if incremental and output.exists():
            con.register("__published", output.dataset())
            kept = "SELECT * FROM __published p"
            if t.unique_key:
                kept += " WHERE NOT EXISTS (SELECT 1 FROM __candidate c WHERE " + " AND ".join(
                    f"c.{quote_ident(k)} = p.{quote_ident(k)}" for k in t.unique_key) + ")"
            con.execute(f"CREATE OR REPLACE TEMP VIEW __next AS {kept} "
                        "UNION ALL BY NAME SELECT * FROM __candidate")
            whole = "__next"
        previous_rows = _rows(output)
        for text in texts:
            e = Expectation.parse(text, t.source)
            table = "__candidate" if e.kind in ("not_null", "accepted_values", "range") \
                else whole
            check(con, e, table, t.name, previous_rows)

    def _publish(self, con: Any, t: TransformDef, output: DeltaHandle,
                 incremental: bool) -> tuple[int, int]:
        rows = int(con.execute("SELECT count(*) FROM __candidate").fetchall()[0][0])
        if not incremental:
            reader = con.sql(self._sorted(con, "SELECT * FROM __candidate", t)).to_arrow_reader()
            return output.overwrite(reader), rows
        data = con.sql(self._sorted(con, "SELECT * FROM __candidate", t)).to_arrow_table()
        data = data.cast(_aligned(data.schema, output.schema()))
        if not rows:  # the inputs moved on: a version records the new offsets
            return output.append(data), 0
        if t.unique_key:
            return output.merge(data, list(t.unique_key)), rows
        return output.append(data), rows


class TransformFailed(FlywheelError):
    """A transform's code failed; nothing was published."""

    def __init__(self, t: TransformDef, why: str) -> None:
        super().__init__(f"transform {t.name} ({t.source}): {why}",
                         hint="nothing was published")


def raise_missing(t: TransformDef, ref: InputRef) -> None:
    raise InputError(f"transform {t.name}: input {ref.target} has no table yet",
                     hint="ingest events (or build the upstream transform) first")


def _rows(handle: DeltaHandle) -> int | None:
    stats = handle.stats() if handle.exists() else None
    return stats.rows if stats else None


def _head(handle: DeltaHandle) -> int:
    version = handle.version() if handle.exists() else None
    return -1 if version is None else version


def _aligned(data: pa.Schema, table: pa.Schema) -> pa.Schema:
    """`data`'s columns with the types the table already has (DuckDB may narrow them)."""
    return pa.schema([table.field(f.name) if f.name in table.names else f for f in data])


def _as_argument(table: pa.Table, function: Callable[..., Any], alias: str) -> Any:
    annotation = str(getattr(function, "__annotations__", {}).get(alias, ""))
    if "polars" in annotation or annotation.startswith("pl."):
        import polars as pl

        return pl.from_arrow(table)
    return table


def _to_arrow(result: Any, t: TransformDef) -> pa.Table:
    if isinstance(result, pa.Table):
        return result
    if hasattr(result, "to_arrow"):
        converted = result.to_arrow()
        if isinstance(converted, pa.Table):
            return converted
    raise TransformFailed(t, f"it returned {type(result).__name__}; return an Arrow table or "
                             "a Polars DataFrame")
