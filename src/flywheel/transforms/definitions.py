"""Transform definitions: SQL files with a short header, or decorated Python functions.

A SQL transform is a file `transforms/NAME.sql` whose leading comment lines are settings:

    -- inputs: carts=com.acme/add_to_cart, users
    -- materialized: incremental          (or table, the default)
    -- unique_key: user_id, day
    -- latest_by: event_time
    -- order_by: user_id, event_time      (rows written in this order: faster joins later)
    -- expect: not_null(user_id)
    -- expect: accepted_values(currency, EUR, USD)
    select ... from carts join users using (user_id)

An input names a log table (`vendor/name`, `vendor/name/v2` or an iglu: key) or another
derived table; in SQL it is a view called by its alias (`carts=`) or, by default, the
table's last name part (`add_to_cart`, `users`).
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel._core.hashing import canonical_json, sha256_text
from flywheel._core.text import read_text
from flywheel.transforms.errors import TransformDefinitionError
from flywheel.transforms.expectations import Expectation
from flywheel.transforms.queries import check_query

TABLE = "table"
INCREMENTAL = "incremental"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SETTING = re.compile(r"^--\s*([a-z_]+)\s*:\s*(.*)$")
_KNOWN = {"name", "inputs", "materialized", "unique_key", "latest_by", "order_by", "expect",
          "description"}


@dataclass(frozen=True, slots=True)
class InputRef:
    alias: str
    target: str
    """A log table (contains '/' or starts with iglu:) or a derived table's name."""

    @property
    def is_log(self) -> bool:
        return "/" in self.target or self.target.startswith("iglu:")


@dataclass(frozen=True, slots=True)
class TransformDef:
    name: str
    inputs: tuple[InputRef, ...]
    materialized: str = TABLE
    unique_key: tuple[str, ...] = ()
    latest_by: str | None = None
    expectations: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    """Columns the written rows are sorted by (each build's new files, that is): readers
    that join or filter on them (a point-in-time join on entity and time) go faster."""
    sql: str | None = None
    function: Callable[..., Any] | None = field(default=None, compare=False)
    source: str = ""
    """Where it is defined (a file path), for messages."""
    code: str = ""
    """The text its code hash is taken from."""

    @property
    def code_hash(self) -> str:
        settings = [self.name, [(i.alias, i.target) for i in self.inputs], self.materialized,
                    list(self.unique_key), self.latest_by, list(self.expectations)]
        if self.order_by:  # only when set, so tables written before it keep their hash
            settings.append(list(self.order_by))
        return sha256_text(canonical_json(settings) + "\n" + self.code)

    @property
    def is_incremental(self) -> bool:
        return self.materialized == INCREMENTAL


def default_alias(target: str) -> str:
    parts = [p for p in target.removeprefix("iglu:").split("/") if p]
    if len(parts) >= 3 and re.fullmatch(r"v\d+", parts[2]):
        return parts[1]
    if len(parts) >= 2:
        return parts[1]
    return parts[0] if parts else target


def parse_inputs(text: str | Sequence[str] | Mapping[str, str], where: str
                 ) -> tuple[InputRef, ...]:
    if isinstance(text, Mapping):
        items = [(str(a), str(t)) for a, t in text.items()]
    else:
        raw = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
        items = []
        for part in filter(None, raw):
            alias, sep, target = part.partition("=")
            items.append((alias.strip(), target.strip()) if sep else
                         (default_alias(part.strip()), part.strip()))
    refs = tuple(InputRef(alias, target) for alias, target in items)
    for ref in refs:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ref.alias):
            raise TransformDefinitionError(
                f"{where}: input alias '{ref.alias}' is not a SQL identifier",
                hint="name it: alias=vendor/name")
    aliases = [r.alias for r in refs]
    if len(set(aliases)) != len(aliases):
        raise TransformDefinitionError(f"{where}: two inputs share an alias",
                                       hint="give one of them another: alias=vendor/name")
    return refs


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def checked(definition: TransformDef) -> TransformDef:
    where = definition.source or definition.name
    if not _NAME.match(definition.name):
        raise TransformDefinitionError(
            f"{where}: '{definition.name}' is not a valid table name",
            hint="use lowercase letters, digits and underscores, starting with a letter")
    if definition.materialized not in (TABLE, INCREMENTAL):
        raise TransformDefinitionError(
            f"{where}: materialized must be 'table' or 'incremental', "
            f"not '{definition.materialized}'")
    if definition.latest_by and not definition.unique_key:
        raise TransformDefinitionError(f"{where}: latest_by needs a unique_key")
    if not definition.inputs:
        raise TransformDefinitionError(f"{where}: a transform needs at least one input",
                                       hint="add a header line: -- inputs: vendor/name")
    for text in definition.expectations:
        Expectation.parse(text, where)
    return definition


def parse_sql(path: Path) -> TransformDef:
    text = read_text(path, TransformDefinitionError)
    if "\0" in text:  # DuckDB would take it in a name, and fail only when it runs
        row = text.count("\n", 0, text.index("\0")) + 1
        raise TransformDefinitionError(f"{path}:{row}: holds a NUL byte",
                                       hint="is it a binary file?")
    settings: dict[str, list[str]] = {}
    body_lines: list[str] = []
    numbers: list[int] = []  # the file's line number of each body line
    in_header = True
    for number, line in enumerate(text.splitlines(), start=1):
        match = _SETTING.match(line.strip()) if in_header else None
        if match and match.group(1) not in _KNOWN:
            # A typo such as `-- expects:` would silently drop a quality gate.
            close = difflib.get_close_matches(match.group(1), sorted(_KNOWN), n=1)
            raise TransformDefinitionError(
                f"{path}: unknown header key '{match.group(1)}'"
                + (f" (did you mean '{close[0]}'?)" if close else ""),
                hint="known keys: " + ", ".join(sorted(_KNOWN))
                + "; a comment line must not start with 'word:'")
        if match:
            settings.setdefault(match.group(1), []).append(match.group(2).strip())
            continue
        if in_header and line.strip() and not line.strip().startswith("--"):
            in_header = False
        body_lines.append(line)
        numbers.append(number)
    sql = "\n".join(body_lines).strip().rstrip(";").strip()
    if not sql:
        raise TransformDefinitionError(f"{path}: no SQL after the header")
    blank = next(i for i, line in enumerate(body_lines) if line.strip())
    check_query(sql, str(path), numbers[blank:])
    one = {k: v[-1] for k, v in settings.items()}
    return checked(TransformDef(
        name=one.get("name", path.stem),
        inputs=parse_inputs(one.get("inputs", ""), str(path)),
        materialized=one.get("materialized", TABLE),
        unique_key=_split_list(one.get("unique_key", "")),
        latest_by=one.get("latest_by") or None,
        order_by=_split_list(one.get("order_by", "")),
        expectations=tuple(settings.get("expect", [])),
        sql=sql, source=str(path), code=sql,
    ))


_DECORATED: list[TransformDef] = []


def transform(*, inputs: Sequence[str] | Mapping[str, str], name: str | None = None,
              materialized: str = TABLE, unique_key: Sequence[str] = (),
              latest_by: str | None = None, expect: Sequence[str] = (),
              order_by: Sequence[str] = (),
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a Python transform. The function takes its inputs as keyword arguments
    (Arrow tables, or Polars frames when annotated so) and returns Arrow or Polars data."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        where = f"{inspect.getsourcefile(function)}:{function.__name__}"
        # The whole module: a helper or constant beside the function is part of its logic.
        try:
            code = Path(inspect.getsourcefile(function) or "").read_text()
        except OSError:
            code = function.__qualname__
        definition = checked(TransformDef(
            name=name or function.__name__, inputs=parse_inputs(inputs, where),
            materialized=materialized, unique_key=tuple(unique_key), latest_by=latest_by,
            expectations=tuple(expect), order_by=tuple(order_by), function=function,
            source=where, code=code))
        _DECORATED.append(definition)
        function.__flywheel_transform__ = definition  # type: ignore[attr-defined]
        return function

    return register


def collect_decorated() -> list[TransformDef]:
    """Take the definitions registered by `@transform` since the last call."""
    found = list(_DECORATED)
    _DECORATED.clear()
    return found
