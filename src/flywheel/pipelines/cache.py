"""The step cache: outputs in the content-addressed artifact store, entries as refs.

A step's key is the sha256 of its code hash, its params, the digests of its inputs and
the table versions it read. Its output is stored once (typed: see `formats`), described
by a small JSON manifest, and `steps/<key>` points at that manifest. The digest a step
passes on is its output's content digest, not its key: when a re-run upstream step
produces the same bytes, everything downstream of it is still a cache hit.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flywheel._core.artifacts import ArtifactError, ArtifactStore
from flywheel._core.hashing import sha256_text
from flywheel.pipelines import formats

FORMAT = 1
"""Bump to invalidate every cache entry (a change in how outputs are stored)."""


@dataclass(frozen=True, slots=True)
class StoredOutput:
    """A stored step output: what it is, where its bytes are, and its manifest."""

    step: str
    kind: str
    digest: str
    """sha256 of the stored bytes: the identity of this output downstream."""
    size: int
    manifest: str = ""
    """sha256 of the manifest blob (the cache entry points at it)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> StoredOutput:
        return cls(str(value["step"]), str(value["kind"]), str(value["digest"]),
                   int(value["size"]), str(value.get("manifest", "")))


def step_key(code: str, params: Mapping[str, Any], inputs: Mapping[str, str],
             table_versions: Mapping[str, int]) -> str:
    """The cache key of one call of a step."""
    payload = {"format": FORMAT, "code": code, "params": params, "inputs": inputs,
               "tables": table_versions}
    # repr() for values JSON cannot hold: a default that is an object is keyed by its repr.
    return sha256_text(json.dumps(payload, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False, default=repr))


class StepCache:
    """Store and find step outputs."""

    def __init__(self, artifacts: ArtifactStore, scratch: Path) -> None:
        self.artifacts = artifacts
        self._scratch = scratch

    def lookup(self, key: str) -> StoredOutput | None:
        """The output stored under `key`, if its manifest and bytes are both there."""
        manifest = self.artifacts.get_ref(_ref(key))
        if manifest is None:
            return None
        try:
            found = StoredOutput.from_json(json.loads(self.artifacts.get_bytes(manifest)))
        except (ArtifactError, ValueError, KeyError):
            return None  # a damaged entry is a miss: the step runs and rewrites it
        if not self.artifacts.exists(found.digest):
            return None
        return StoredOutput(found.step, found.kind, found.digest, found.size, manifest)

    def store(self, step: str, value: Any) -> StoredOutput:
        """Serialise and store `value`; no cache entry (see `remember`)."""
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch) as folder:
            path = Path(folder) / "output"
            kind = formats.write(value, path)
            size = path.stat().st_size
            digest = self.artifacts.put_file(path)
        return StoredOutput(step, kind, digest, size)

    def remember(self, key: str, output: StoredOutput) -> StoredOutput:
        """Write the manifest of `output` and point the cache entry `key` at it."""
        body = {k: v for k, v in output.to_json().items() if k != "manifest"}
        manifest = self.artifacts.put_bytes(json.dumps({**body, "key": key},
                                                       sort_keys=True).encode())
        self.artifacts.set_ref(_ref(key), manifest)
        return StoredOutput(output.step, output.kind, output.digest, output.size, manifest)

    def load(self, output: StoredOutput) -> Any:
        """The value of a stored output, its bytes verified before they are read."""
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch) as folder:
            path = self.artifacts.fetch(output.digest, Path(folder) / "output")
            return formats.read(output.kind, path)


def _ref(key: str) -> str:
    return f"steps/{key}"
