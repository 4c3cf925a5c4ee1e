"""Typed serialisation of step outputs: tables as Parquet, anything else pickled.

Arrow, pandas and Polars frames are written as Parquet (pandas with its index and dtypes
in the file's metadata) and read back as the same kind of frame; models and other
objects are pickled. Bytes are only ever deserialised after the artifact store has
verified them against their sha256.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

ARROW, PANDAS, POLARS, PICKLE = "arrow", "pandas", "polars", "pickle"
KINDS = (ARROW, PANDAS, POLARS, PICKLE)


def kind_of(value: Any) -> str:
    """What a value is stored as; decided by its type's module, without importing any."""
    kind = type(value)
    root = kind.__module__.partition(".")[0]
    if root == "pyarrow" and kind.__name__ == "Table":
        return ARROW
    if root == "pandas" and kind.__name__ == "DataFrame":
        return PANDAS
    if root == "polars" and kind.__name__ == "DataFrame":
        return POLARS
    return PICKLE


def write(value: Any, path: Path) -> str:
    """Write `value` to `path`; returns its kind."""
    kind = kind_of(value)
    if kind == PICKLE:
        with path.open("wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return kind
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == PANDAS:
        table = pa.Table.from_pandas(value)
    elif kind == POLARS:
        table = value.to_arrow()
    else:
        table = value
    pq.write_table(table, path)
    return kind


def read(kind: str, data: bytes) -> Any:
    """The value stored as `kind` in (verified) `data`."""
    if kind == PICKLE:
        return pickle.loads(data)  # verified against its sha256 before this
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    if kind == PANDAS:
        return table.to_pandas()
    if kind == POLARS:
        import polars as pl

        return pl.from_arrow(table)
    return table
