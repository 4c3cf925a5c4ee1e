"""Where batch scores go: a Parquet file, written chunk by chunk and renamed into place only
once complete, or a derived table, published in one commit. Either way a failed run leaves
nothing half written."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from flywheel._core.errors import InputError
from flywheel.transforms.store import DerivedTables

__all__ = ["TABLE_PREFIX", "OutputTarget", "parse_output", "write_parquet", "write_table"]

TABLE_PREFIX = "table:"
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class OutputTarget:
    """A Parquet file (`path`) or a derived table (`table`)."""

    path: Path | None = None
    table: str | None = None

    def __str__(self) -> str:
        return f"{TABLE_PREFIX}{self.table}" if self.table is not None else str(self.path)


def parse_output(text: str | Path, transforms: Sequence[str],
                 input_path: Path | None) -> OutputTarget:
    """`table:NAME` (a derived table no transform builds) or a file path whose folder
    exists and which is not the input."""
    raw = str(text)
    if isinstance(text, str) and raw.startswith(TABLE_PREFIX):
        name = raw.removeprefix(TABLE_PREFIX)
        if not _TABLE_NAME.match(name):
            raise InputError(f"'{name}' is not a valid table name",
                             hint="lowercase letters, digits and underscores, starting "
                             "with a letter")
        if name in transforms:
            raise InputError(f"table '{name}' is built by a transform",
                             hint="write batch scores to a table of their own")
        return OutputTarget(table=name)
    path = Path(raw)
    if path.is_dir():
        raise InputError(f"cannot write {raw}: it is a folder", hint="name a .parquet file")
    if not path.parent.is_dir():
        raise InputError(f"cannot write {raw}: no folder {path.parent}")
    if input_path is not None and path.resolve() == input_path:
        raise InputError(f"{raw} is the input; write the scores to another file")
    return OutputTarget(path=path)


def write_parquet(path: Path, schema: pa.Schema, chunks: Iterable[pa.Table]) -> int:
    """Write `chunks` (each of `schema`) as one row group each, under a temporary name
    renamed to `path` once complete; rows written."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        rows = _write(partial, schema, chunks)
        partial.replace(path)  # readers see no file or the whole file
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return rows


def _write(path: Path, schema: pa.Schema, chunks: Iterable[pa.Table]) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for chunk in chunks:
            writer.write_table(chunk, row_group_size=max(chunk.num_rows, 1))
            rows += chunk.num_rows
    return rows


def write_table(tables: DerivedTables, name: str, schema: pa.Schema,
                chunks: Iterable[pa.Table]) -> tuple[int, int]:
    """Replace table `name`'s content with `chunks` in one commit; returns the new version
    and the rows written. The rows go to a Parquet file first, chunk by chunk (the Delta
    writer cannot pull them from code that reads Delta tables itself): inside a local
    table's folder, published as it is, else in a temporary folder, then streamed in."""
    handle = tables.handle(name)
    if handle.can_publish_files():
        folder = handle.staging_folder()
        try:
            rows = _write(folder / "scores.parquet", schema, chunks)
            return handle.publish_files([folder / "scores.parquet"], schema), rows
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="flywheel-scores-") as scratch:
        path = Path(scratch) / "scores.parquet"
        rows = _write(path, schema, chunks)
        reader = pq.ParquetFile(path)
        batches = pa.RecordBatchReader.from_batches(reader.schema_arrow, reader.iter_batches())
        return handle.overwrite(batches), rows
