"""A schema's rules as column-wise checks, for files of rows (Parquet, CSV).

`compile_plan` turns a schema version whose rules apply property by property (top-level
scalar properties with any keywords, `required`, `additionalProperties`) into one `Rule`
per property. A rule checks a whole column at once: types, bounds, lengths and string
enums with Arrow compute; any other keyword (`pattern`, `format`, `multipleOf`, ...) by
running the property's own compiled validator once per distinct value. Like the msgspec
fast path, a rule only proves rows valid: a row it cannot prove goes to the row path,
which has the last word and writes the bad row.

Not expressible here, so the whole file takes the row path: object, array and mixed-type
properties (JSON-text columns), `$ref`, top-level keywords other than `properties`,
`required` and `additionalProperties` (`patternProperties`, `allOf`, `if`, ...), and
drafts newer than 7 (validated by the jsonschema library, whose formats differ).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.schemas.columns import Column, Kind
from flywheel.schemas.validation import DRAFT4, DRAFT7, effective_draft

_DRAFTS = {DRAFT4, DRAFT7, "http://json-schema.org/draft-06/schema#"}
_NEUTRAL = frozenset({"title", "description", "$schema", "$id", "id", "self", "default",
                      "examples", "$comment", "readOnly", "writeOnly", "definitions", "$defs"})
_TOP = frozenset({"type", "properties", "required", "additionalProperties"})
_VECTOR = frozenset({"type", "enum", "format", "minLength", "maxLength", "minimum", "maximum",
                     "exclusiveMinimum", "exclusiveMaximum"})
_INT64 = (-(2**63), 2**63 - 1)
_EXACT_FLOAT = 2**53
"""Arrow refuses a Python integer beyond this for a double column (it would round)."""
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "ge": pc.greater_equal, "gt": pc.greater, "le": pc.less_equal, "lt": pc.less}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One property: its log column and what a value must be."""

    name: str
    column: Column
    json_type: str
    """string, integer, number or boolean."""
    fmt: str | None
    bounds: tuple[tuple[str, int | float], ...]
    min_length: int | None
    max_length: int | None
    enum: frozenset[str] | None
    vector: bool
    """Are type, bounds, lengths and enum all there is (so Arrow decides alone)?"""
    exact: Callable[[Any], bool]
    """The property's compiled validator: does a (Python) value pass it?"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    rules: dict[str, Rule]
    required: frozenset[str]
    closed: bool


def compile_plan(document: dict[str, Any], columns: list[Column]) -> Plan | str:
    """The column-wise plan of a schema version, or why there is none (a short phrase)."""
    draft = effective_draft(document)
    if draft not in _DRAFTS:
        return f"schemas of {draft} are validated row by row"
    extra = set(document) - _TOP - _NEUTRAL
    if extra:
        return f"the keyword {sorted(extra)[0]} is checked row by row"
    if document.get("type", "object") != "object":
        return "the top level is not an object"
    additional = document.get("additionalProperties", True)
    properties = document.get("properties") or {}
    required = document.get("required") or []
    if additional not in (True, False) or not isinstance(properties, dict) or not (
            isinstance(required, list) and all(isinstance(r, str) for r in required)):
        return "additionalProperties, properties or required take a form checked row by row"
    by_name = {c.name: c for c in columns}
    rules: dict[str, Rule] = {}
    for name, sub in properties.items():
        rule = _rule(name, sub, by_name.get(name), draft)
        if isinstance(rule, str):
            return rule
        rules[name] = rule
    return Plan(rules=rules, required=frozenset(required), closed=additional is False)


def _rule(name: str, sub: Any, column: Column | None, draft: str) -> Rule | str:
    why = f"property {name} is checked row by row"
    if column is None or not isinstance(sub, dict) or "$ref" in str(sub):
        return why
    if column.kind is Kind.JSON or not (column.kind is not Kind.PLAIN or _scalar(column)):
        return why
    json_type = _json_type(sub)
    if json_type is None:
        return why
    try:
        exact = _compiled(sub, draft)
    except Exception:  # a fragment that does not compile on its own: let the row path judge
        return why
    bounds, vector = _bounds(sub, draft)
    enum = sub.get("enum")
    string_enum = enum is None or (isinstance(enum, list) and all(type(v) is str for v in enum))
    lengths = [sub.get(k) for k in ("minLength", "maxLength")]
    vector = (vector and string_enum and set(sub) - _NEUTRAL <= _VECTOR
              and all(v is None or type(v) is int for v in lengths)
              and sub.get("format") in (None, "date-time", "date"))
    return Rule(name=name, column=column, json_type=json_type, fmt=_format(column),
                bounds=bounds, min_length=lengths[0] if vector else None,
                max_length=lengths[1] if vector else None,
                enum=frozenset(enum) if vector and enum is not None else None,
                vector=vector, exact=exact)


def _scalar(column: Column) -> bool:
    kind = column.arrow_type
    return bool(pa.types.is_string(kind) or pa.types.is_int64(kind)
                or pa.types.is_float64(kind) or pa.types.is_boolean(kind))


def _format(column: Column) -> str | None:
    return {Kind.TIMESTAMP: "date-time", Kind.DATE: "date"}.get(column.kind)


def _json_type(sub: dict[str, Any]) -> str | None:
    declared = sub.get("type")
    if declared is None and isinstance(sub.get("enum"), list):
        return "string" if all(type(v) is str for v in sub["enum"]) else None
    found = {declared} if isinstance(declared, str) else set(declared or [])
    found.discard("null")
    if found == {"integer", "number"}:
        found = {"number"}
    if len(found) != 1:
        return None
    (kind,) = found
    return kind if kind in ("string", "integer", "number", "boolean") else None


def _bounds(sub: dict[str, Any], draft: str) -> tuple[tuple[tuple[str, int | float], ...], bool]:
    """(op, bound) pairs as fastjsonschema applies them, and whether they are plain."""
    found: list[tuple[str, int | float]] = []
    plain = True
    for keyword, op, strict_op in (("minimum", "ge", "gt"), ("maximum", "le", "lt")):
        exclusive = f"exclusive{keyword[0].upper()}{keyword[1:]}"
        value, flag = sub.get(keyword), sub.get(exclusive)
        if draft == DRAFT4:
            if flag not in (None, True, False):
                plain = False
            if value is not None:
                found.append((strict_op if flag is True else op, value))
            continue
        if value is not None:
            found.append((op, value))
        if flag is not None:
            found.append((strict_op, flag))
    for _, value in found:
        if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
            plain = False
    return tuple(found), plain


def _compiled(sub: dict[str, Any], draft: str) -> Callable[[Any], bool]:
    validate = fastjsonschema.compile({**sub, "$schema": draft}, use_default=False)

    def passes(value: Any) -> bool:
        try:
            validate(value)
        except Exception:  # JsonSchemaValueException, or an odd value's own error
            return False
        return True

    return passes


# Checks ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Checked:
    """One property's column: the rows proven valid (or null) and the values to store."""

    valid: pa.Array
    values: pa.Array


def check_typed(rule: Rule, column: pa.Array, plain: Callable[[Any], Any]) -> Checked:
    """A normalised Parquet column against `rule`. `plain` makes the Python value the row
    path validates from an Arrow one."""
    present = pc.is_valid(column)
    converted = _convert(rule, column)
    if converted is None:
        return Checked(pc.invert(present), pa.nulls(len(column), rule.column.arrow_type))
    values, ok = converted
    if rule.vector:
        ok = pc.and_(ok, _vector(rule, column))
    if not rule.vector or (rule.fmt is not None and not pa.types.is_timestamp(column.type)
                           and not pa.types.is_date(column.type)):
        ok = pc.and_(ok, _exact(column, lambda v: rule.exact(plain(v))))
    return Checked(pc.or_(pc.invert(present), pc.fill_null(ok, False)), values)


def _convert(rule: Rule, column: pa.Array) -> tuple[pa.Array, pa.Array] | None:
    """The log values of a column whose type matches the rule, and the rows whose value
    converts as the row path would; None when the types do not match."""
    kind, target = column.type, rule.column.arrow_type
    everywhere = pa.array([True] * len(column), pa.bool_())
    if rule.json_type == "string":
        if rule.fmt == "date-time" and pa.types.is_timestamp(kind):
            return column, everywhere
        if rule.fmt == "date" and pa.types.is_date(kind):
            return column.cast(pa.date32()), everywhere
        if not pa.types.is_string(kind):
            return None
        if rule.fmt is None:
            return column, everywhere
        from flywheel.ingest import times

        parsed, problems = times.parse(column, target)
        return parsed, _unflag(len(column), [i for i, _ in problems])
    if rule.json_type == "boolean":
        return (column, everywhere) if pa.types.is_boolean(kind) else None
    if pa.types.is_integer(kind):
        fits = everywhere
        if pa.types.is_uint64(kind):
            fits = pc.less_equal(column, pa.scalar(_INT64[1], pa.uint64()))
        if rule.json_type == "number" and kind.bit_width > 32:
            bound = pa.scalar(_EXACT_FLOAT, pa.uint64() if pa.types.is_uint64(kind) else kind)
            magnitude = column if pa.types.is_unsigned_integer(kind) else pc.abs(column)
            fits = pc.and_(fits, pc.less_equal(magnitude, bound))
        return column.cast(target, safe=False), fits
    if rule.json_type == "number" and (pa.types.is_float32(kind) or pa.types.is_float64(kind)):
        return column.cast(target), everywhere
    return None


def _unflag(length: int, positions: list[int]) -> pa.Array:
    flags = [True] * length
    for i in positions:
        flags[i] = False
    return pa.array(flags, pa.bool_())


def _vector(rule: Rule, column: pa.Array) -> pa.Array:
    ok = pa.array([True] * len(column), pa.bool_())
    if rule.json_type == "string" and pa.types.is_string(column.type):
        if rule.enum is not None:
            ok = pc.and_(ok, pc.is_in(column, value_set=pa.array(sorted(rule.enum), pa.string())))
        length = pc.utf8_length(column) if rule.min_length or rule.max_length else None
        if rule.min_length is not None:
            ok = pc.and_(ok, pc.greater_equal(length, rule.min_length))
        if rule.max_length is not None:
            ok = pc.and_(ok, pc.less_equal(length, rule.max_length))
        return ok
    if rule.json_type == "string" and (rule.enum is not None or rule.min_length is not None
                                       or rule.max_length is not None):
        return pa.array([False] * len(column), pa.bool_())  # lengths of the text form: exact
    for op, bound in rule.bounds:
        ok = pc.and_(ok, _compare(column, op, bound))
    return ok


def _compare(column: pa.Array, op: str, bound: int | float) -> pa.Array:
    """`value op bound` as Python compares an int or float with an int or float: exactly."""
    if pa.types.is_integer(column.type):
        values = column.cast(pa.int64(), safe=False)
        if type(bound) is float:
            bound = math.ceil(bound) if op in ("ge", "lt") else math.floor(bound)
        if not _INT64[0] <= bound <= _INT64[1]:
            above = bound > 0  # every int64 is below the bound, or every one above
            truth = (op in ("le", "lt")) == above
            return pa.array([truth] * len(column), pa.bool_())
        return _OPS[op](values, pa.scalar(bound, pa.int64()))
    if type(bound) is int and float(bound) != bound:
        return pa.array([False] * len(column), pa.bool_())  # not exact as a double: row path
    return _OPS[op](column.cast(pa.float64()), pa.scalar(float(bound), pa.float64()))


def _exact(column: pa.Array, passes: Callable[[Any], bool]) -> pa.Array:
    """Run `passes` once per distinct value of the column; the rows of the values that pass."""
    distinct = pc.unique(column).drop_null()
    flags = pa.array([passes(v) for v in distinct.to_pylist()], pa.bool_())
    return pc.is_in(column, value_set=distinct.filter(flags))


def check_text(rule: Rule, column: pa.Array, parse: Callable[[str], Any] | None) -> Checked:
    """A CSV column (text, null for an empty cell) against `rule`: each distinct cell is read
    and validated once, by the row path's own cell parser and the property's validator."""
    encoded = pc.dictionary_encode(column)
    cells = encoded.dictionary.to_pylist()
    parsed = [parse(c) if parse is not None else c for c in cells]
    passes = [rule.exact(v) for v in parsed]
    values, stored = _text_values(rule.column, [v if ok else None for v, ok in
                                                zip(parsed, passes, strict=True)])
    valid_cells = pa.array([ok and good for ok, good in zip(passes, stored, strict=True)],
                           pa.bool_())
    indices = encoded.indices
    present = pc.is_valid(column)
    valid = pc.fill_null(pc.take(valid_cells, indices), False)
    return Checked(pc.or_(pc.invert(present), valid), pc.take(values, indices))


def _text_values(column: Column, values: list[Any]) -> tuple[pa.Array, list[bool]]:
    """The log values of validated cell values, and which of them the log can hold."""
    if column.kind in (Kind.TIMESTAMP, Kind.DATE):
        from flywheel.ingest import times

        text = pa.array([v if type(v) is str else None for v in values], pa.string())
        parsed, problems = times.parse(text, column.arrow_type)
        bad = {i for i, _ in problems}
        return parsed, [i not in bad for i in range(len(values))]
    try:
        return pa.array(values, column.arrow_type), [True] * len(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    stored: list[Any] = []
    fits: list[bool] = []
    for value in values:
        try:
            pa.array([value], column.arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            stored.append(None)
            fits.append(False)
        else:
            stored.append(value)
            fits.append(True)
    return pa.array(stored, column.arrow_type), fits


__all__ = ["Checked", "Plan", "Rule", "check_text", "check_typed", "compile_plan"]
