"""Batch scoring: a registered model over many entity rows, with the features each row had
at its own time, from the same point-in-time join that built the model's training set.

The input (a derived table or a Parquet, CSV or NDJSON file) is read in chunks of
`chunk_size` rows; each chunk is joined to the model's feature service, scored, and written
out before the next is read, so memory follows the chunk size, not the input's. Every
chunk reads the feature tables at the versions the first one read: one run, one snapshot.
The output (a Parquet file, or a derived table) names the model and version in every row
and, for Parquet, in the file's metadata too.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from flywheel._core.errors import FlywheelError, InputError
from flywheel._core.metadata.table_versions import TableVersionRecord, TableVersions
from flywheel._core.text import first_line
from flywheel.features.store import FeatureStore
from flywheel.registry import LoadedModel, ModelRegistry
from flywheel.serving.batch_input import EntityInput, in_chunks, open_entities
from flywheel.serving.batch_output import OutputTarget, parse_output, write_parquet, write_table
from flywheel.serving.batch_scores import MODEL_COLUMNS, OUTPUT_COLUMNS, score
from flywheel.serving.scorer import Scorer
from flywheel.transforms.store import DerivedTables

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "METADATA_PREFIX",
    "PREDICT_MODE",
    "BatchPrediction",
    "BatchScoringError",
    "BatchSources",
    "Progress",
    "predict_batch",
]

DEFAULT_CHUNK_SIZE = 100_000
METADATA_PREFIX = "flywheel."
"""Keys of the Parquet file's metadata: flywheel.model, flywheel.model_version, ..."""
PREDICT_MODE = "predict"
"""The mode recorded for a derived table's version written by batch scoring."""

Progress = Callable[[int, int | None], None]
"""Called after each chunk with the rows scored so far and the total, when known."""


class BatchScoringError(FlywheelError):
    """The model could not score a chunk of the input; nothing was written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSources:
    """The stores batch scoring reads and writes."""

    registry: ModelRegistry
    features: FeatureStore
    tables: DerivedTables
    transforms: Callable[[], Sequence[str]]
    """The names of the project's derived tables (its transforms)."""
    versions: TableVersions
    """Where a derived table written here records its version and lineage."""


@dataclass(frozen=True, slots=True)
class BatchPrediction:
    """What a batch scoring run wrote and from what."""

    model: str
    version: int
    output: str
    rows: int
    chunks: int
    seconds: float
    input: str
    feature_service: str | None
    table_versions: dict[str, int] = field(default_factory=dict)
    """The version of every derived table read: the input's (if a table) and the
    feature views' sources."""
    table_version: int | None = None
    """The output table's new version, when the output is a derived table."""


def predict_batch(sources: BatchSources, *, model: str, input: str | Path,
                  output: str | Path, as_of: dt.datetime | str | None = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE,
                  timestamp_column: str = "event_timestamp",
                  with_features: bool = False,
                  on_progress: Progress | None = None) -> BatchPrediction:
    """Score every row of `input` (a derived table's name or a file) with `model`
    (`name`, `name@alias` or `name/version`) and write the scores to `output` (a .parquet
    path, or `table:NAME`). Each row needs the feature service's entity keys and
    `timestamp_column`, unless `as_of` gives one time for every row."""
    started = time.perf_counter()
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputError(f"chunk size {chunk_size!r} is not a positive number of rows")
    when = _instant(as_of) if as_of is not None else None
    loaded = sources.registry.load(model)
    service = loaded.version.signature.get("feature_service")
    transforms = list(sources.transforms())
    entities = open_entities(input, sources.tables, transforms)
    target = parse_output(output, transforms, entities.path)
    needed = _required_columns(sources.features, service, timestamp_column, when is None)
    _check_columns(entities, needed)
    run = _Run(sources.features, loaded, service, timestamp_column, when, with_features,
               dict(entities.tables))
    scored = run.chunks(entities, chunk_size, on_progress)
    first = next(scored, None)
    if first is None:  # no rows: score an empty chunk for the output's columns
        first = run.empty(entities.schema)
    schema = first.schema.with_metadata(_metadata(loaded, service, entities, run, when))
    rest = itertools.chain([first], (chunk.cast(schema) for chunk in scored))
    table_version = None
    if target.path is not None:
        rows = write_parquet(target.path, schema, rest)
    else:
        assert target.table is not None
        table_version, rows = write_table(sources.tables, target.table, schema, rest)
        _record_version(sources.versions, target, table_version, loaded, run, rows)
    return BatchPrediction(
        model=loaded.version.name, version=loaded.version.version, output=str(target),
        rows=rows, chunks=run.count, seconds=time.perf_counter() - started,
        input=entities.description, feature_service=service,
        table_versions=dict(run.pinned), table_version=table_version)


class _Run:
    """One scoring run: the join and the model, chunk after chunk, with the feature
    tables pinned at the versions the first chunk read."""

    def __init__(self, features: FeatureStore, loaded: LoadedModel, service: str | None,
                 timestamp_column: str, when: dt.datetime | None, with_features: bool,
                 pinned: dict[str, int]) -> None:
        self._features = features
        self._loaded = loaded
        self._scorer = Scorer(loaded=loaded)
        self._service = service
        self._timestamp_column = timestamp_column
        self._when = when
        self._with_features = with_features
        self.pinned = pinned
        self.count = 0

    def chunks(self, entities: EntityInput, size: int,
               on_progress: Progress | None) -> Iterator[pa.Table]:
        done = 0
        for chunk in in_chunks(entities.batches(size), size):
            scored = self.score(chunk)
            self.count += 1
            done += chunk.num_rows
            if on_progress is not None:
                on_progress(done, entities.total_rows)
            yield scored

    def score(self, chunk: pa.Table) -> pa.Table:
        if self._when is not None:
            chunk = _with_time(chunk, self._timestamp_column, self._when)
        if self._service is None:
            joined = chunk
        else:
            found = self._features.get_historical_features(
                chunk, feature_service=self._service, timestamp_column=self._timestamp_column,
                table_versions=self.pinned)
            self.pinned.update(found.table_versions)
            joined = found.table
        outputs = self._predict(joined)
        kept = joined if self._with_features else joined.select(chunk.column_names)
        version = self._loaded.version
        for name, values in outputs.items():
            kept = kept.append_column(name, values)
        count = kept.num_rows
        return (kept.append_column(MODEL_COLUMNS[0], pa.array([version.name] * count,
                                                               pa.string()))
                .append_column(MODEL_COLUMNS[1], pa.array([version.version] * count,
                                                          pa.int64())))

    def _predict(self, joined: pa.Table) -> dict[str, pa.Array]:
        try:
            return score(self._scorer, joined)
        except FlywheelError:
            raise
        except Exception as exc:
            uri = self._loaded.version.uri
            raise BatchScoringError(
                f"model {uri} failed on chunk {self.count + 1}: {first_line(exc)}",
                hint="rows with no feature value give nulls; a model that cannot take them "
                "needs them filled") from exc

    def empty(self, schema: pa.Schema) -> pa.Table:
        return self.score(schema.empty_table())


def _required_columns(features: FeatureStore, service: str | None, timestamp_column: str,
                      need_time: bool) -> list[str]:
    if service is None:
        return []
    registry = features.registry
    plan = registry.plan(service=service)
    keys = [k for view in plan.lookups for k in registry.views[view].join_keys]
    wanted = list(dict.fromkeys(keys))
    return [*wanted, timestamp_column] if need_time else wanted


def _check_columns(entities: EntityInput, needed: list[str]) -> None:
    present = set(entities.schema.names)
    missing = [c for c in needed if c not in present]
    if missing:
        raise InputError(f"{entities.description} lacks column(s) {', '.join(missing)}",
                         hint="each row needs the entity keys and a timestamp (or pass "
                         "--as-of TIME)")
    clash = sorted(present.intersection((*OUTPUT_COLUMNS, *MODEL_COLUMNS)))
    if clash:
        raise InputError(f"{entities.description} has column(s) {', '.join(clash)}, which "
                         "the scores are written to", hint="rename them in the input")


def _instant(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"cannot read the time {value!r}",
                             hint="an ISO 8601 time, e.g. 2026-03-01T00:00:00Z") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _with_time(chunk: pa.Table, column: str, when: dt.datetime) -> pa.Table:
    values = pa.array([when] * chunk.num_rows, pa.timestamp("us", tz="UTC"))
    if column in chunk.column_names:
        return chunk.set_column(chunk.column_names.index(column), column, values)
    return chunk.append_column(column, values)


def _metadata(loaded: LoadedModel, service: str | None, entities: EntityInput, run: _Run,
              when: dt.datetime | None) -> dict[str, str]:
    version = loaded.version
    found = {"model": version.name, "model_version": str(version.version),
             "model_sha256": version.artifact_sha256, "feature_service": service or "",
             "input": entities.description,
             "table_versions": json.dumps(run.pinned, sort_keys=True),
             "as_of": when.isoformat() if when is not None else ""}
    return {METADATA_PREFIX + key: value for key, value in found.items()}


def _record_version(versions: TableVersions, target: OutputTarget, table_version: int,
                    loaded: LoadedModel, run: _Run, rows: int) -> None:
    """The output table's version and what it was made from: the tables read, so that
    `flywheel lineage` traces the scores down to log offsets; the code is the model's."""
    assert target.table is not None
    inputs = {name: {"kind": "table", "target": name, "after": -1, "upto": version}
              for name, version in run.pinned.items()}
    versions.add_table_version(TableVersionRecord(
        target.table, table_version, PREDICT_MODE, loaded.version.artifact_sha256,
        json.dumps(inputs, sort_keys=True), rows, rows))
