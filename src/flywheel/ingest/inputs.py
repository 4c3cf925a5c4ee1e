"""What the file readers share: format detection, opening an input, and the ids of a file's rows.

Only the standard library is imported at module level (the CLI imports this module to build
its options).
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO

from flywheel._core.errors import InputError
from flywheel._core.ids import derived_id

STDIN = "-"

Advance = Callable[[int], None]
"""Progress callback: the position reached so far (bytes for NDJSON and CSV, rows for Parquet)."""


class Format(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"
    PARQUET = "parquet"


_SUFFIXES = {".ndjson": Format.NDJSON, ".jsonl": Format.NDJSON, ".json": Format.NDJSON,
             ".csv": Format.CSV, ".parquet": Format.PARQUET, ".pq": Format.PARQUET}


def detect_format(source: str, forced: Format | None = None) -> Format:
    """`forced`, else from the extension; standard input is NDJSON unless told otherwise."""
    if forced is not None:
        return forced
    if source == STDIN:
        return Format.NDJSON
    found = _SUFFIXES.get(Path(source).suffix.lower())
    if found is None:
        raise InputError(f"cannot tell the format of {source} from its extension",
                         hint="pass --format ndjson, csv or parquet")
    return found


@contextmanager
def open_input(source: str) -> Iterator[IO[bytes]]:
    """The file (or standard input for `-`) as bytes; a file that cannot be opened is an
    `InputError`."""
    if source == STDIN:
        yield sys.stdin.buffer
        return
    try:
        stream = Path(source).open("rb")  # noqa: SIM115 - closed below, after the yield
    except FileNotFoundError:
        raise InputError(f"cannot read {source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {source}: it is a folder, not a file") from None
    except PermissionError:
        raise InputError(f"cannot read {source}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def input_size(stream: IO[bytes]) -> int | None:
    """Bytes in `stream` when it is a regular file (for a progress bar), else None."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    import stat

    return info.st_size if stat.S_ISREG(info.st_mode) else None


def id_prefix(source: str) -> str | None:
    """The prefix of the ids of events a file gives without one: stable for the same file
    (path, size and modification time), so that sending the file again stores nothing
    twice. Standard input has no identity: its events get ids from the log.

    An id is the prefix and the row's position in 12 digits, the form of the log's own
    id blocks, so that the id index keeps a run of positions in one row, not one per id."""
    if source == STDIN:
        return None
    path = Path(source).resolve()
    stat = path.stat()
    digest = hashlib.sha256(f"file|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    variant = "89ab"[int(digest[16], 16) & 3]
    return f"{digest[0:8]}-{digest[8:12]}-4{digest[13:16]}-{variant}{digest[17:20]}-"


def stable_ids(source: str) -> Callable[[int], str] | None:
    """The id of the event at each position of a file (see `id_prefix`)."""
    prefix = id_prefix(source)
    if prefix is None:
        return None
    return lambda position: f"{prefix}{position:012d}"


LEGACY_PROBE = 64
"""How many positions `legacy_ids` probes: a file sent before either had ids of its own in
all of its first rows, or holds a derived id among them."""


def legacy_ids(source: str) -> Callable[[int], str] | None:
    """The ids an earlier release derived for a file's rows without one: a uuid5 of the
    file's identity (path, size, modification time) and the row's position. A file whose
    rows the log already holds under these ids keeps them when it is sent again, so that
    nothing it holds is stored twice."""
    if source == STDIN:
        return None
    path = Path(source).resolve()
    stat = path.stat()
    identity = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    return lambda position: derived_id("file", identity, str(position))
