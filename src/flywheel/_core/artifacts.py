"""Artifacts: immutable files addressed by their sha256, over a thin blob backend.

Backends only keep bytes under keys (a local folder now; object storage behind the same
interface). Hashing, de-duplication, verification and immutability live here, once: a
blob is stored under the hash of its content, so storing it twice costs nothing, and
every read is verified against that hash before anyone deserialises it.
Refs are the one mutable thing: small named pointers to a digest (a cache entry, say).
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from flywheel._core.errors import FlywheelError

_CHUNK = 1 << 20
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_REF = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class ArtifactError(FlywheelError):
    """An artifact is missing, or its bytes do not match its digest."""

    http_status = 404


class BlobBackend(Protocol):
    """Bytes under keys. Keys are `/`-separated paths; a blob, once written, is not changed."""

    url: str

    def put(self, key: str, data: IO[bytes]) -> None:
        """Store what `data` reads under `key` atomically (a reader never sees part of it);
        if `key` exists already it is left as it is."""

    def open(self, key: str) -> BinaryIO:
        """Read the blob under `key`; raises FileNotFoundError when there is none."""

    def exists(self, key: str) -> bool: ...

    def write_ref(self, key: str, value: str) -> None:
        """Set a small mutable text value under `key`, atomically (last writer wins)."""

    def read_ref(self, key: str) -> str | None: ...


def _check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise ArtifactError(f"'{digest}' is not a sha256 digest (64 lowercase hex digits)")
    return digest


def _blob_key(digest: str) -> str:
    return f"sha256/{digest[:2]}/{digest[2:]}"


def _ref_key(name: str) -> str:
    if not _REF.match(name) or ".." in name.split("/"):
        raise ArtifactError(f"'{name}' is not a ref name (letters, digits, _ . - and /)")
    return f"refs/{name}"


class ArtifactStore:
    """Content-addressed artifacts: put bytes or files, get them back verified."""

    def __init__(self, backend: BlobBackend) -> None:
        self.backend = backend

    @property
    def url(self) -> str:
        return self.backend.url

    def put_bytes(self, data: bytes) -> str:
        """Store `data`; returns its sha256 (hex)."""
        digest = hashlib.sha256(data).hexdigest()
        self.backend.put(_blob_key(digest), io.BytesIO(data))
        return digest

    def put_file(self, source: Path) -> str:
        """Store the file at `source` (streamed, any size); returns its sha256 (hex)."""
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
            handle.seek(0)
            self.backend.put(_blob_key(digest.hexdigest()), handle)
        return digest.hexdigest()

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of `digest`, verified against it."""
        with self._open(digest) as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise self._corrupt(digest)
        return data

    def fetch(self, digest: str, dest: Path) -> Path:
        """Copy the blob to `dest`, verifying it on the way; `dest` appears only if it is
        intact."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        check = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as out, \
                self._open(digest) as handle:
            while chunk := handle.read(_CHUNK):
                check.update(chunk)
                out.write(chunk)
        tmp = Path(out.name)
        if check.hexdigest() != digest:
            tmp.unlink(missing_ok=True)
            raise self._corrupt(digest)
        tmp.replace(dest)
        return dest

    def exists(self, digest: str) -> bool:
        return self.backend.exists(_blob_key(_check_digest(digest)))

    def set_ref(self, name: str, digest: str) -> None:
        """Point the ref `name` at a stored blob."""
        if not self.exists(digest):
            raise ArtifactError(f"cannot point ref {name} at {digest[:12]}: no such artifact")
        self.backend.write_ref(_ref_key(name), digest)

    def get_ref(self, name: str) -> str | None:
        return self.backend.read_ref(_ref_key(name))

    def _open(self, digest: str) -> BinaryIO:
        try:
            return self.backend.open(_blob_key(_check_digest(digest)))
        except FileNotFoundError:
            raise ArtifactError(f"no artifact {digest[:12]} in {self.url}",
                                hint="it was never stored here, or was removed") from None

    def _corrupt(self, digest: str) -> ArtifactError:
        return ArtifactError(f"artifact {digest[:12]} in {self.url} does not match its "
                             "sha256: refusing to load it", hint="store it again from its source")
