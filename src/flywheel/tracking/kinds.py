"""Typed serialisation of run artifacts: each kind writes a value to one file and reads it
back. The kind is recorded with the artifact, so loading knows how to read it.

Bytes stay bytes; a file is kept as it is; a folder becomes a reproducible tar (the same
content gives the same sha256); Arrow, pandas and Polars tables become Parquet and come
back as the same kind of frame; JSON-able dicts and lists become canonical JSON; anything
else (a model) is pickled. Readers only ever see files the artifact store has verified
against their sha256.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel._core.errors import InputError
from flywheel._core.hashing import canonical_json


@dataclass(frozen=True, slots=True)
class Kind:
    """How one kind of value is stored: `dump(value, file)`; `load(file, dest)` where
    `dest` is where a file or folder kind puts what it restores."""

    name: str
    accepts: Callable[[Any], bool]
    dump: Callable[[Any, Path], None]
    load: Callable[[Path, Path], Any]


_KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> None:
    """Add a kind; kinds registered later are tried first when a value's kind is guessed."""
    _KINDS[kind.name] = kind


def get_kind(name: str) -> Kind:
    kind = _KINDS.get(name)
    if kind is None:
        raise InputError(f"unknown artifact kind '{name}'",
                         hint="one of: " + ", ".join(sorted(_KINDS)))
    return kind


def kind_of(value: Any) -> Kind:
    """The kind a value is stored as when none is named."""
    for kind in reversed(_KINDS.values()):
        if kind.accepts(value):
            return kind
    return _KINDS["pickle"]  # pragma: no cover - pickle accepts everything


def kind_names() -> list[str]:
    return sorted(_KINDS)


# Bytes, files, folders -------------------------------------------------------------
def _is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def _existing(value: Any, want_dir: bool) -> Path:
    path = Path(value)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder",
                         hint="pass bytes, or name another kind, to store other values")
    if path.is_dir() != want_dir:
        raise InputError(f"{path} is {'not ' if want_dir else ''}a folder")
    return path


def _dump_bytes(value: Any, file: Path) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InputError(f"a {type(value).__name__} is not bytes")
    file.write_bytes(bytes(value))


def _dump_file(value: Any, file: Path) -> None:
    shutil.copyfile(_existing(value, want_dir=False), file)


def _load_file(file: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, dest)
    return dest


def _dump_folder(value: Any, file: Path) -> None:
    folder = _existing(value, want_dir=True)
    with tarfile.open(file, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue  # links could point outside the folder; they are not its content
            info = tar.gettarinfo(path, arcname=path.relative_to(folder).as_posix())
            # Only names, modes and content: the same folder always makes the same bytes.
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.pax_headers = {}
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


def _load_folder(file: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(file) as tar:
        tar.extractall(dest, filter="data")
    return dest


# Tables ----------------------------------------------------------------------------
def _frame_of(root: str, name: str) -> Callable[[Any], bool]:
    def accepts(value: Any) -> bool:
        kind = type(value)
        return kind.__module__.partition(".")[0] == root and kind.__name__ == name
    return accepts


def _dump_table(value: Any, file: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = type(value).__module__.partition(".")[0]
    if root == "pandas":
        table = pa.Table.from_pandas(value)
    elif root == "polars":
        table = value.to_arrow()
    elif isinstance(value, pa.Table):
        table = value
    else:
        raise InputError(f"a {type(value).__name__} is not an Arrow, pandas or Polars table")
    pq.write_table(table, file)


def _read_table(file: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(file)


def _load_pandas(file: Path, dest: Path) -> Any:
    return _read_table(file).to_pandas()


def _load_polars(file: Path, dest: Path) -> Any:
    import polars as pl

    return pl.from_arrow(_read_table(file))


# JSON and pickle -------------------------------------------------------------------
def _jsonable(value: Any) -> bool:
    if not isinstance(value, dict | list):
        return False
    try:
        canonical_json(value)
    except (TypeError, ValueError):
        return False
    return True


def _dump_json(value: Any, file: Path) -> None:
    try:
        file.write_text(canonical_json(value), encoding="utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(f"value is not JSON: {exc}") from None


def _load_json(file: Path, dest: Path) -> Any:
    import json

    return json.loads(file.read_text(encoding="utf-8"))


def pickled(value: Any) -> bytes:
    """`value` pickled; a value that cannot be is an `InputError`, not a traceback."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InputError(f"a {type(value).__name__} cannot be pickled: {exc}",
                         hint="define its class at module level, importable when loading"
                         ) from None


def _dump_pickle(value: Any, file: Path) -> None:
    file.write_bytes(pickled(value))


def unpickled(data: bytes) -> Any:
    """The object in `data`, which the artifact store has verified against its sha256."""
    try:
        return pickle.loads(data)
    except ModuleNotFoundError as exc:
        raise InputError(f"cannot load a pickled object: module '{exc.name}' is not installed",
                         hint="install the package the object was made with") from None
    except (pickle.UnpicklingError, AttributeError, ImportError) as exc:
        raise InputError(f"cannot load a pickled object: {exc}",
                         hint="load it where the code that made it can be imported") from None


def _load_pickle(file: Path, dest: Path) -> Any:
    return unpickled(file.read_bytes())


for _kind in (
    Kind("pickle", lambda value: True, _dump_pickle, _load_pickle),
    Kind("json", _jsonable, _dump_json, _load_json),
    Kind("arrow", _frame_of("pyarrow", "Table"), _dump_table, lambda f, d: _read_table(f)),
    Kind("pandas", _frame_of("pandas", "DataFrame"), _dump_table, _load_pandas),
    Kind("polars", _frame_of("polars", "DataFrame"), _dump_table, _load_polars),
    Kind("folder", lambda v: _is_path(v) and Path(v).is_dir(), _dump_folder, _load_folder),
    Kind("file", lambda v: _is_path(v) and not Path(v).is_dir(), _dump_file, _load_file),
    Kind("bytes", lambda v: isinstance(v, bytes | bytearray | memoryview), _dump_bytes,
         lambda f, d: f.read_bytes()),
):
    register_kind(_kind)
