"""Typed serialisation of step outputs, in the kinds of experiment tracking.

Arrow, pandas and Polars frames are stored as Parquet (pandas with its index and dtypes
in the file's metadata) and read back as the same kind of frame; everything else is
pickled, so a value comes back exactly as the step returned it (JSON would turn tuples
into lists and int keys into text). The kind names are tracking's, so a step output
recorded as a run artifact loads with `project.runs.load_artifact`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.tracking.kinds import get_kind

ARROW, PANDAS, POLARS, PICKLE = "arrow", "pandas", "polars", "pickle"
_FRAMES = {("pyarrow", "Table"): ARROW, ("pandas", "DataFrame"): PANDAS,
           ("polars", "DataFrame"): POLARS}


def kind_of(value: Any) -> str:
    """What a value is stored as; decided by its type's module, without importing any."""
    kind = type(value)
    return _FRAMES.get((kind.__module__.partition(".")[0], kind.__name__), PICKLE)


def write(value: Any, path: Path) -> str:
    """Write `value` to `path`; returns its kind."""
    name = kind_of(value)
    if name == PICKLE:
        get_kind(name).dump(value, path)
    else:
        _write_table(value, name, path)
    return name


def _write_table(value: Any, kind: str, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = (pa.Table.from_pandas(value) if kind == PANDAS
             else value.to_arrow() if kind == POLARS else value)
    # Dictionary encoding pays off for repeated text; for numbers it mostly fails after
    # trying (high cardinality), which doubles the time a large numeric table takes.
    text = [f.name for f in table.schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_binary(f.type) or pa.types.is_dictionary(f.type)]
    pq.write_table(table, path, use_dictionary=text)


def read(kind: str, path: Path) -> Any:
    """The value stored as `kind` in the (verified) file at `path`."""
    return get_kind(kind).load(path, path.with_suffix(".restored"))
