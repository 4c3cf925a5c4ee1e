"""The YAML run spec: which pipeline, its params, its training data, resources, executor.

    pipeline: pipelines/train.py:pipeline      # a file (or dotted module) : attribute
    params: {learning_rate: 0.1, epochs: 20}
    training_data:
      feature_service: purchase
      entities: select user_id, day_end as event_timestamp from user_daily
      start: 2026-01-01                        # optional: entity rows in [start, end)
      end: 2026-03-01
    resources:
      model: {cpus: 2, memory: 4GB}
    executor: process                          # or inprocess (the default)

Strict: an unknown key is an error that names its path.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from flywheel._core.text import read_yaml
from flywheel.pipelines.errors import PipelineError
from flywheel.pipelines.steps import Resources
from flywheel.tables.sql import quote_ident

EXECUTORS = ("inprocess", "process")
TRAINING_SET = "training_set"
"""The name under which steps receive the training data."""
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingData(_Strict):
    feature_service: str = Field(min_length=1)
    entities: str = Field(min_length=1)
    """A derived table's name, or a SQL query over derived tables (DuckDB dialect)
    returning the join keys and `timestamp_column`."""
    start: dt.datetime | dt.date | None = None
    end: dt.datetime | dt.date | None = None
    timestamp_column: str = Field(default="event_timestamp", pattern=_TABLE.pattern)

    def entity_query(self) -> str:
        """`entities`, as a table name or a query, restricted to [start, end) if given."""
        text = self.entities.strip().rstrip(";")
        if self.start is None and self.end is None:
            return text
        source = quote_ident(text) if _TABLE.match(text) else f"({text})"
        column = quote_ident(self.timestamp_column)
        where = [f"{column} {op} TIMESTAMPTZ '{_instant(when).isoformat()}'"
                 for op, when in ((">=", self.start), ("<", self.end)) if when is not None]
        return f"SELECT * FROM {source} AS __entities WHERE {' AND '.join(where)}"


def _instant(when: dt.datetime | dt.date) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class ResourcesSpec(_Strict):
    cpus: float = Field(default=1.0, gt=0)
    memory: int | str | None = None
    """Bytes, or a size such as 512MB or 4GiB."""
    gpus: int = Field(default=0, ge=0)

    def resources(self) -> Resources:
        return Resources.of(self.model_dump())


class RunSpec(_Strict):
    pipeline: str = Field(pattern=r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_]*$")
    """`pipelines/train.py:pipeline` or `package.module:pipeline`."""
    name: str | None = None
    """The run's name (default: the pipeline's)."""
    params: dict[str, JsonValue] = {}
    training_data: TrainingData | None = None
    resources: dict[str, ResourcesSpec] = {}
    executor: Literal["inprocess", "process"] = "inprocess"
    tags: dict[str, str] = {}

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not _TABLE.match(k)]
        if bad:
            raise ValueError(f"param name '{bad[0]}' is not a Python identifier")
        return value

    @field_validator("training_data")
    @classmethod
    def _range(cls, value: TrainingData | None) -> TrainingData | None:
        if value and value.start and value.end and _instant(value.start) >= _instant(value.end):
            raise ValueError("start must be before end")
        return value


def parse_spec(raw: Any, where: str) -> RunSpec:
    """A validated spec from parsed YAML; an error names the key path."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{where}: a run spec is a mapping (pipeline:, params:, ...)",
                            hint="start with `pipeline: pipelines/train.py:pipeline`")
    try:
        return RunSpec.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(f"{where}: {describe(exc)}") from None


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    if len(loc) > 1 and loc[-1] in ("datetime", "date"):  # the members of `start`'s union
        where = ".".join(str(part) for part in loc[:-1])
        given = repr(first["input"])
        given = given if len(given) <= 60 else given[:59] + "…"
        return f"{where}: {given} is not a date (YYYY-MM-DD) or a time (ISO 8601)"
    where = ".".join(str(part) for part in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"unknown key {where}"
    if first["type"] == "missing":
        return f"{where} is missing"
    if first["type"] == "string_pattern_mismatch" and where == "pipeline":
        return "pipeline must be FILE_OR_MODULE:ATTRIBUTE, e.g. pipelines/train.py:pipeline"
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def load_spec(path: Path) -> RunSpec:
    """Read and validate a run spec file."""

    try:
        raw = read_yaml(path, PipelineError)
    except FileNotFoundError:
        raise PipelineError(f"no run spec at {path}") from None
    except IsADirectoryError as exc:
        raise PipelineError(f"{path}: cannot be read as a YAML file ({exc})") from None
    return parse_spec(raw, str(path))
