"""The column-wise file path against the row path: for random tables (nulls, values out
of range, wrong types, bad and future times, repeated and odd ids) both give the same
accepted rows, with the same stored values, and the same bad rows (reason, message, raw)."""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel._core.clock import utc_now_us
from flywheel.ingest import csv_rows, parquet_rows, tabular
from flywheel.ingest.columnar import compile_plan
from flywheel.ingest.layout import Layout
from flywheel.ingest.prepare import Limits, Prepared, Preparer
from flywheel.schemas.documents import SchemaDocument
from flywheel.schemas.keys import SchemaKey
from flywheel.schemas.registry import SchemaRegistry, VersionSpec

URI = "iglu:com.acme/row/jsonschema/1-0-0"
PREFIX = "0123abcd-0000-4000-8000-"
PROPERTIES: dict[str, Any] = {
    "user_id": {"type": "string", "maxLength": 6},
    "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
    "price": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 100.5},
    "currency": {"type": "string", "enum": ["EUR", "USD"]},
    "at": {"type": "string", "format": "date-time"},
    "day": {"type": "string", "format": "date"},
    "code": {"type": "string", "pattern": "^[a-c]+$"},
    "flag": {"type": "boolean"},
}
SCHEMAS = {
    "closed": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
               "properties": PROPERTIES, "required": ["user_id", "quantity"],
               "additionalProperties": False},
    "open": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
             "properties": PROPERTIES},
    "draft4": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
               "properties": {**PROPERTIES, "quantity": {
                   "type": "integer", "minimum": 1, "exclusiveMinimum": True,
                   "maximum": 9.5}},
               "required": ["quantity"]},
}
LIMITS = Limits(max_event_bytes=700, max_future_us=3600 * 1_000_000)


def _spec(name: str) -> VersionSpec:
    spec = SchemaRegistry([SchemaDocument(SchemaKey.parse(URI), SCHEMAS[name])]).get(URI)
    assert spec is not None
    return spec


def _plan(name: str, layout: Layout, text: bool) -> tabular.FilePlan:
    spec = _spec(name)
    checks = compile_plan(SCHEMAS[name], [c for c in spec.table.columns
                                          if c.name in spec.declared])
    assert not isinstance(checks, str), checks
    return tabular.FilePlan(spec=spec, plan=checks, layout=layout, limits=LIMITS, door="file",
                            id_prefix=PREFIX, text=text,
                            row_path=lambda id_for: Preparer(spec_lookup(spec), LIMITS,
                                                             id_for=id_for))


def spec_lookup(spec: VersionSpec) -> Any:
    return lambda uri: spec if uri == spec.uri else None


def _row_path(plan: tabular.FilePlan, events: list[Any], shift: int, now: int) -> Prepared:
    preparer = Preparer(spec_lookup(plan.spec), LIMITS,
                        id_for=lambda i: f"{PREFIX}{shift + i:012d}")
    return preparer.prepare(events, None, now, "file")


def _rows(prepared: Prepared) -> list[dict[str, Any]]:
    tables = list(prepared.tables.values())
    assert len(tables) <= 1
    rows = tables[0][1].to_pylist() if tables else []
    return [{k: ("NaN" if isinstance(v, float) and math.isnan(v) else v)
             for k, v in row.items()} for row in rows]


def _bad(prepared: Prepared) -> list[tuple[int, str, str, bytes]]:
    return sorted((b.index, b.reason, b.message, b.raw) for b in prepared.bad)


def _assert_same(plan: tabular.FilePlan, chunk: tabular.Chunk, events: Any) -> None:
    now = utc_now_us()
    columnar = tabular.prepare(plan, chunk, now, events)
    rows = _row_path(plan, events(list(range(chunk.rows))), chunk.shift, now)
    assert _rows(columnar) == _rows(rows)
    assert _bad(columnar) == _bad(rows)
    assert columnar.accepted_positions + len(columnar.bad) == chunk.rows


# Parquet -----------------------------------------------------------------------------------
NOW = dt.datetime.now(dt.UTC)
_times = st.one_of(
    st.none(),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                 timezones=st.just(dt.UTC)),
    st.just(NOW + dt.timedelta(days=3)),  # too far in the future
)
_time_texts = st.one_of(
    st.none(), st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02t03:04:05.1234567z",
                                "2026-01-02 03:04:05+01:00", "2026-01-02T03:04:05",
                                "2026-13-02T03:04:05Z", "yesterday", "2026-01-02T23:59:60Z",
                                "0001-01-01T00:00:00+01:00", ""]))
_day_texts = st.one_of(st.none(), st.sampled_from(["2026-01-02", "2026-02-30", "0000-01-01",
                                                   "26-1-2", "2026-01-02T00:00:00Z"]))
_ints = st.one_of(st.none(), st.integers(-3, 14), st.sampled_from([2**62, -(2**63)]))
_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, 100.5, 100.49, 5.0]))
_text = st.one_of(st.none(), st.text(alphabet="abcdE\u00e9\"\\\n", max_size=8))
_ids = st.one_of(st.none(), st.sampled_from(["a", "b", "", "x" * 4097, "dup"]))


def _column(draw: Any, kind: str, n: int) -> pa.Array:
    if kind == "int":
        return pa.array([draw(_ints) for _ in range(n)], pa.int64())
    if kind == "uint":
        values = [draw(st.one_of(st.none(), st.integers(0, 12),
                                 st.sampled_from([2**63, 2**64 - 1]))) for _ in range(n)]
        return pa.array(values, pa.uint64())
    if kind == "float":
        return pa.array([draw(_floats) for _ in range(n)], pa.float64())
    if kind == "text":
        return pa.array([draw(_text) for _ in range(n)], pa.string())
    if kind == "bool":
        return pa.array([draw(st.one_of(st.none(), st.booleans())) for _ in range(n)])
    if kind == "time":
        return pa.array([draw(_times) for _ in range(n)], pa.timestamp("us", tz="UTC"))
    if kind == "naive_ns":
        values = [draw(st.one_of(st.none(), st.integers(-(2**62), 2**62))) for _ in range(n)]
        return pa.array(values, pa.int64()).cast(pa.timestamp("ns"))
    if kind == "time_text":
        return pa.array([draw(_time_texts) for _ in range(n)], pa.string())
    if kind == "date":
        return pa.array([draw(st.one_of(st.none(), st.dates())) for _ in range(n)], pa.date32())
    if kind == "day_text":
        return pa.array([draw(_day_texts) for _ in range(n)], pa.string())
    if kind == "ids":
        return pa.array([draw(_ids) for _ in range(n)], pa.string())
    assert kind == "int_ids"
    return pa.array([draw(st.one_of(st.none(), st.integers(-2, 3))) for _ in range(n)])


_KINDS = {
    "user_id": ["text", "int"], "quantity": ["int", "uint", "float", "text"],
    "price": ["float", "int", "uint"], "currency": ["text", "bool"],
    "at": ["time", "naive_ns", "time_text", "date"], "day": ["date", "day_text", "time"],
    "code": ["text"], "flag": ["bool", "int"], "note": ["text", "int"],
    "ts": ["time", "time_text", "naive_ns"], "key": ["ids", "int_ids"],
}


@st.composite
def parquet_tables(draw: Any) -> pa.Table:
    n = draw(st.integers(0, 25))
    names = draw(st.lists(st.sampled_from(sorted(_KINDS)), unique=True, min_size=1))
    return pa.table({name: _column(draw, draw(st.sampled_from(_KINDS[name])), n)
                     for name in names}) if names else pa.table({})


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=parquet_tables(), schema=st.sampled_from(sorted(SCHEMAS)),
       shift=st.sampled_from([0, 10**6]))
def test_parquet_columnar_path_equals_row_path(table: pa.Table, schema: str,
                                               shift: int) -> None:
    names = table.column_names
    layout = Layout(time_column="ts" if "ts" in names else None,
                    id_column="key" if "key" in names else None,
                    declared=frozenset(PROPERTIES))
    plan = _plan(schema, layout, text=False)
    table = parquet_rows.normalise(table)
    chunk = tabular.Chunk(columns={c: table.column(c).combine_chunks() for c in names},
                          rows=table.num_rows, shift=shift)

    def events(positions: list[int]) -> list[Any]:
        picked = table.take(pa.array(positions, pa.int64()))
        return list(parquet_rows.table_events(picked, URI, layout))

    _assert_same(plan, chunk, events)


# CSV ---------------------------------------------------------------------------------------
_cells = st.one_of(
    st.just(""), st.sampled_from([" 7 ", "+3", "007", "4.0", "1e3", "1_0", "nan", "inf", "-0",
                                  "99999999999999999999", "true", "Yes", " n ", "maybe",
                                  "EUR", "usd", "abc", "2026-01-02T03:04:05Z", "2026-01-02",
                                  "2026-02-30", "٣", "12.5", "100.5", ".5", "x" * 120]),
    st.text(max_size=6))


@st.composite
def csv_inputs(draw: Any) -> tuple[list[str], list[list[str]]]:
    header = draw(st.lists(st.sampled_from([*PROPERTIES, "note", "ts", "key"]), unique=True,
                           min_size=1))
    rows = draw(st.lists(st.lists(_cells, min_size=max(len(header) - 1, 0),
                                  max_size=len(header) + 1), max_size=20))
    return header, [row for row in rows if row]


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv=csv_inputs(), schema=st.sampled_from(sorted(SCHEMAS)))
def test_csv_columnar_path_equals_row_path(csv: tuple[list[str], list[list[str]]],
                                           schema: str) -> None:
    header, rows = csv
    layout = Layout(time_column="ts" if "ts" in header else None,
                    id_column="key" if "key" in header else None,
                    declared=frozenset(PROPERTIES))
    plan = _plan(schema, layout, text=True)
    chunk = tabular._text_chunk(header, rows, 0)
    parsers = csv_rows.cell_parsers(plan.spec)

    def events(positions: list[int]) -> list[Any]:
        return [csv_rows.csv_event(header, rows[i], parsers, URI, layout) for i in positions]

    _assert_same(plan, chunk, events)


def test_cells_that_are_not_utf8_go_to_the_row_path() -> None:
    records = csv_rows.CsvRecords(io.BytesIO(b"user_id,quantity\nab,3\n\xff\xfe,4\n"))
    layout = Layout(time_column=None, id_column=None, declared=frozenset(PROPERTIES))
    plan = _plan("closed", layout, text=True)
    ((chunk, events),) = list(tabular.csv_chunks(plan, records, 100))
    prepared = tabular.prepare(plan, chunk, utc_now_us(), events)
    assert prepared.accepted_positions == 1
    # As on the row path: the escaped bytes make the event unencodable as JSON.
    assert [(b.index, b.reason) for b in prepared.bad] == [(1, "not_json")]


def _never(id_for: Any) -> Preparer:
    raise AssertionError("the row path was asked to judge a row the checks should prove")


@pytest.mark.parametrize("text", [False, True])
def test_valid_rows_never_reach_the_row_path(text: bool) -> None:
    layout = Layout(time_column="ts", id_column=None, declared=frozenset(PROPERTIES))
    plan = _plan("closed", layout, text=text)
    plan = tabular.FilePlan(**{**{f: getattr(plan, f) for f in plan.__slots__},
                               "row_path": _never})
    n = 1000
    values: dict[str, list[Any]] = {
        "user_id": [f"u{i % 99}" for i in range(n)], "quantity": [1 + i % 10 for i in range(n)],
        "price": [i * 0.1 for i in range(n)], "currency": ["EUR", "USD"] * (n // 2),
        "at": [NOW - dt.timedelta(seconds=i) for i in range(n)],
        "day": [dt.date(2026, 1, 1 + i % 28) for i in range(n)],
        "code": ["abc"[: 1 + i % 3] for i in range(n)], "flag": [i % 2 == 0 for i in range(n)],
        "ts": [NOW - dt.timedelta(minutes=i) for i in range(n)]}
    if text:
        header = list(values)
        rows = [[_cell(values[c][i]) for c in header] for i in range(n)]
        chunk = tabular._text_chunk(header, rows, 0)
    else:
        table = parquet_rows.normalise(pa.table(values))
        chunk = tabular.Chunk(columns={c: table.column(c).combine_chunks() for c in values},
                              rows=n, shift=0)
    prepared = tabular.prepare(plan, chunk, utc_now_us(), lambda positions: [])
    assert prepared.accepted_positions == n and not prepared.bad
    ((_, stored),) = prepared.tables.values()
    assert stored.column("quantity").to_pylist() == values["quantity"]
    assert stored.column("event_id").to_pylist()[:2] == [f"{PREFIX}{0:012d}", f"{PREFIX}{1:012d}"]


def _cell(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize(("document", "why"), [
    ({"type": "object", "properties": {"a": {"type": "object"}}}, "property a"),
    ({"type": "object", "properties": {"a": {"$ref": "#/definitions/x"}},
      "definitions": {"x": {"type": "string"}}}, "property a"),
    ({"type": "object", "properties": {"a": {"type": ["string", "integer"]}}}, "property a"),
    ({"type": "object", "properties": {}, "patternProperties": {"^x": {}}},
     "patternProperties"),
    ({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}, "2020-12"),
])
def test_what_the_columnar_path_leaves_to_the_row_path(document: dict[str, Any],
                                                       why: str) -> None:
    key = SchemaKey.parse(URI)
    spec = SchemaRegistry([SchemaDocument(key, document)]).get(URI)
    assert spec is not None
    found = compile_plan(document, list(spec.table.columns))
    assert isinstance(found, str) and why in found
