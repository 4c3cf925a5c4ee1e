"""The rows batch scoring reads: a derived table (at one pinned version) or a Parquet, CSV or
NDJSON file, streamed in batches so that memory follows the chunk size, not the input's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel._core.errors import InputError
from flywheel._core.text import first_line
from flywheel.ingest.inputs import Format, detect_format
from flywheel.transforms.store import DerivedTables

__all__ = ["EntityInput", "in_chunks", "open_entities"]

_READ_AHEAD = 1
"""Batches (and files) the scanner reads ahead: a little overlap of reading and scoring,
without holding more than a chunk or two of the input at once."""
_CSV_BLOCK = 4 << 20
"""Bytes of CSV (and NDJSON) text parsed at a time: batches of this size are re-cut to the
chunk size, so the block only bounds what the parser holds."""


@dataclass(frozen=True, slots=True)
class EntityInput:
    """Where the entity rows come from, their columns, and a scanner over them."""

    description: str
    """`table NAME@VERSION` or the file's path, for messages and the output's metadata."""
    schema: pa.Schema
    total_rows: int | None
    """Known for a table and a Parquet file (from metadata); None for CSV and NDJSON."""
    dataset: Any
    """A pyarrow dataset over the rows."""
    tables: dict[str, int] = field(default_factory=dict)
    """{table: version} when the rows are a derived table's."""
    path: Path | None = None

    def batches(self, size: int) -> Iterator[pa.RecordBatch]:
        """The rows in order, in record batches of at most `size` rows."""
        try:
            yield from self.dataset.to_batches(batch_size=size, batch_readahead=_READ_AHEAD,
                                               fragment_readahead=_READ_AHEAD)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"cannot read {self.description}: {first_line(exc)}",
                             hint="is every row of the same shape as the first ones?") from None


def open_entities(source: str | Path, tables: DerivedTables,
                  table_names: Sequence[str]) -> EntityInput:
    """A derived table's name (its newest version), else a file, by its extension."""
    text = str(source)
    if isinstance(source, str) and text in table_names:
        version = tables.version(text)
        if version is None:
            raise InputError(f"input table '{text}' has not been built yet",
                             hint="run `flywheel transform`")
        dataset = tables.handle(text).dataset(version)
        return EntityInput(f"table {text}@{version}", dataset.schema, dataset.count_rows(),
                           dataset, {text: version})
    path = Path(text)
    if not path.exists():
        known = ", ".join(table_names) or "none"
        raise InputError(f"no derived table or file named {text}",
                         hint=f"derived tables: {known}; files end in .parquet, .csv or "
                         ".ndjson")
    if path.is_dir():
        raise InputError(f"cannot read {text}: it is a folder, not a file")
    fmt = detect_format(text)
    dataset = _dataset(path, fmt)
    total = dataset.count_rows() if fmt is Format.PARQUET else None
    return EntityInput(str(path), dataset.schema, total, dataset, path=path.resolve())


def _dataset(path: Path, fmt: Format) -> Any:
    import pyarrow.csv as csv
    import pyarrow.dataset as ds
    import pyarrow.json as pajson

    if fmt is Format.CSV:
        chosen: Any = ds.CsvFileFormat(read_options=csv.ReadOptions(block_size=_CSV_BLOCK))
    elif fmt is Format.NDJSON:
        chosen = ds.JsonFileFormat(read_options=pajson.ReadOptions(block_size=_CSV_BLOCK))
    else:
        chosen = ds.ParquetFileFormat()
    try:
        return ds.dataset(str(path), format=chosen)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise InputError(f"cannot read {path} as {fmt.value}: {first_line(exc)}",
                         hint="pass a Parquet, CSV or NDJSON file of entity rows") from None


def in_chunks(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """The rows of `batches` re-cut into tables of exactly `size` rows (the last: fewer)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size).combine_chunks()
            rest = table.slice(size)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks()
