"""Quality gates: expectations a transform's output must meet before it is published.

    not_null(col, ...)              accepted_values(col, a, b, ...)
    unique(col, ...)                range(col, min, max)        (either bound may be empty)
    row_count_change(min, max)      the new row count over the previous one
    sql(select ... from this ...)   must return no rows; `this` is the candidate output
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flywheel._core.errors import FlywheelError
from flywheel._core.text import first_line
from flywheel.tables.sql import quote_ident
from flywheel.transforms.errors import TransformDefinitionError
from flywheel.transforms.queries import check_query

_FORM = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.DOTALL)
_KINDS = {"not_null", "unique", "accepted_values", "range", "row_count_change", "sql"}
EXAMPLES = 3


class ExpectationFailed(FlywheelError):
    """A candidate version broke an expectation; it was not published."""


@dataclass(frozen=True, slots=True)
class Expectation:
    kind: str
    args: tuple[str, ...]
    text: str

    @classmethod
    def parse(cls, text: str, where: str) -> Expectation:
        match = _FORM.match(text)
        if match is None or match.group(1) not in _KINDS:
            raise TransformDefinitionError(
                f"{where}: cannot read expectation '{text}'",
                hint="one of: " + ", ".join(sorted(f"{k}(...)" for k in _KINDS)))
        kind, body = match.group(1), match.group(2).strip()
        args = (body,) if kind == "sql" else tuple(a.strip() for a in body.split(","))
        if kind != "sql" and (not args or not args[0]):
            raise TransformDefinitionError(f"{where}: {kind}(...) needs arguments")
        _check_arguments(kind, args, f"{where}: expectation {text.strip()}")
        return cls(kind, args, text.strip())


_SIGNATURES = {"range": "range(column, min, max), either bound may be empty",
               "row_count_change": "row_count_change(min, max), ratios to the previous build",
               "accepted_values": "accepted_values(column, value, ...)"}


def _check_arguments(kind: str, args: tuple[str, ...], where: str) -> None:
    """Refuse what would fail (or pass vacuously) only when the transform runs."""
    usage = _SIGNATURES.get(kind)
    if kind == "range":
        if len(args) != 3 or not (args[1] or args[2]):
            raise TransformDefinitionError(f"{where}: needs a column and at least one bound",
                                           hint=usage)
        _numbers(args[1:], where, usage)
    elif kind == "row_count_change":
        if len(args) > 2 or not any(args):
            raise TransformDefinitionError(f"{where}: needs a minimum and/or a maximum",
                                           hint=usage)
        _numbers(args, where, usage)
    elif kind == "accepted_values" and len(args) < 2:
        raise TransformDefinitionError(f"{where}: needs a column and at least one value",
                                       hint=usage)
    elif kind == "sql":
        check_query(args[0], where)
    elif kind in ("not_null", "unique") and not all(args):
        raise TransformDefinitionError(f"{where}: an empty column name",
                                       hint=f"{kind}(column, ...)")


def _numbers(values: tuple[str, ...], where: str, usage: str | None) -> None:
    for value in values:
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            raise TransformDefinitionError(f"{where}: '{value}' is not a number",
                                           hint=usage) from None
        if number != number:  # NaN compares false with everything: the gate would pass
            raise TransformDefinitionError(f"{where}: a bound cannot be NaN", hint=usage)
        if number in (float("inf"), float("-inf")):  # and SQL has no literal for it
            raise TransformDefinitionError(f"{where}: '{value}' is not a finite number; "
                                           "leave the bound empty for none", hint=usage)


def _literal(value: str) -> str:
    return "'" + value.strip().strip("'\"").replace("'", "''") + "'"


def _violations_sql(e: Expectation, table: str) -> str | None:
    if e.kind == "not_null":
        return f"SELECT * FROM {table} WHERE " + " OR ".join(
            f"{quote_ident(c)} IS NULL" for c in e.args)
    if e.kind == "unique":
        keys = ", ".join(quote_ident(c) for c in e.args)
        return (f"SELECT {keys}, count(*) AS copies FROM {table} GROUP BY {keys} "
                "HAVING count(*) > 1")
    if e.kind == "accepted_values":
        column, values = e.args[0], ", ".join(_literal(v) for v in e.args[1:])
        return (f"SELECT * FROM {table} WHERE {quote_ident(column)} IS NOT NULL AND "
                f"CAST({quote_ident(column)} AS VARCHAR) NOT IN ({values})")
    if e.kind == "range":
        column, low, high = (*e.args, "", "")[:3]
        tests = ([f"{quote_ident(column)} < {float(low)}"] if low else []) + (
            [f"{quote_ident(column)} > {float(high)}"] if high else [])
        return f"SELECT * FROM {table} WHERE " + (" OR ".join(tests) or "false")
    if e.kind == "sql":
        return f"SELECT * FROM ({e.args[0]})"
    return None


def check(con: Any, e: Expectation, table: str, transform: str,
          previous_rows: int | None) -> None:
    """Raise `ExpectationFailed` (with counts and examples) when `e` does not hold."""
    if e.kind == "row_count_change":
        low, high = float(e.args[0] or 0), float((*e.args, "inf")[1] or "inf")
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        if previous_rows and not low <= rows / previous_rows <= high:
            raise ExpectationFailed(
                f"{transform}: expectation {e.text} failed: {rows} rows after "
                f"{previous_rows} (x{rows / previous_rows:.2f}, allowed x{low:g}..x{high:g})",
                hint="the new version was not published")
        return
    query = _violations_sql(e, table)
    assert query is not None
    con.execute(f"CREATE OR REPLACE TEMP VIEW this AS SELECT * FROM {table}")
    try:
        count = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
        if not count:
            return
        examples = con.execute(f"SELECT * FROM ({query}) LIMIT {EXAMPLES}").fetchall()
        columns = [d[0] for d in con.description]
    except Exception as exc:
        if isinstance(exc, ExpectationFailed):
            raise
        raise ExpectationFailed(f"{transform}: expectation {e.text} could not run: "
                                f"{first_line(exc, None)}") from exc
    shown = "; ".join(str(dict(zip(columns, row, strict=True))) for row in examples)
    raise ExpectationFailed(
        f"{transform}: expectation {e.text} failed on {count} row(s), e.g. {shown}",
        hint="the new version was not published; fix the data or the transform")
