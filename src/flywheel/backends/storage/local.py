"""Blobs in a local folder: written to a temporary file, fsynced, then renamed into place."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, BinaryIO

from flywheel._core.errors import BackendError, ConfigError

_PREFIX = "file://"
_CHUNK = 1 << 20


def folder_of(url: str) -> Path:
    """The folder of `file:///abs/path` or a plain path."""
    path = url[len(_PREFIX):] if url.startswith(_PREFIX) else url
    if not path or "://" in path:
        raise ConfigError(f"artifact store URL {url!r} is not a folder or file:///path")
    return Path(path).absolute()


class LocalBlobBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.root = folder_of(url)

    def put(self, key: str, data: IO[bytes]) -> None:
        target = self.root / key
        if target.exists():
            return  # content-addressed: the same key holds the same bytes
        self._write(target, data)

    def open(self, key: str) -> BinaryIO:
        return (self.root / key).open("rb")

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def write_ref(self, key: str, value: str) -> None:
        self._write(self.root / key, io.BytesIO(value.encode()))

    def read_ref(self, key: str) -> str | None:
        try:
            return (self.root / key).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _write(self, target: Path, source: IO[bytes]) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-",
                                             delete=False) as tmp:
                shutil.copyfileobj(source, tmp, _CHUNK)
                tmp.flush()
                os.fsync(tmp.fileno())
            Path(tmp.name).replace(target)  # atomic: readers see all of it or nothing
        except OSError as exc:
            raise BackendError(f"cannot write artifact {target}: {exc.strerror}") from exc
