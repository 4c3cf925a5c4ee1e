"""Lineage: each derived-table version back to the table versions and log offsets it read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from flywheel._core.errors import InputError
from flywheel._core.metadata.table_versions import TableVersions


@dataclass(frozen=True, slots=True)
class LineageNode:
    name: str
    kind: str
    """table (a derived table version) or log (a range of log offsets)."""
    version: int | None = None
    after: int | None = None
    upto: int | None = None
    mode: str | None = None
    code_hash: str | None = None
    inputs: list[LineageNode] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "log":
            first = 0 if self.after is None or self.after < 0 else self.after + 1
            span = (f"offsets {first}..{self.upto}" if self.upto is not None and
                    first <= self.upto else f"nothing after offset {self.upto}")
            return f"log {self.name} ({span})"
        code = (self.code_hash or "")[:12]
        return f"table {self.name} v{self.version} ({self.mode}, code {code})"


def lineage(metadata: TableVersions, table: str, version: int | None = None) -> LineageNode:
    versions = metadata.table_versions(table)
    if not versions:
        raise InputError(f"no recorded versions of table '{table}'",
                         hint="build it with `flywheel transform`")
    record = versions[-1] if version is None else next(
        (v for v in versions if v.version == version), None)
    if record is None:
        raise InputError(f"table '{table}' has no recorded version {version}")
    children = []
    inputs = json.loads(record.inputs)
    for spec in (inputs[alias] for alias in sorted(inputs)):
        if spec["kind"] == "log":
            children.append(LineageNode(spec["target"], "log", after=spec["after"],
                                        upto=spec["upto"]))
        else:
            children.append(lineage(metadata, spec["target"], spec["upto"]))
    if record.mode == "incremental":
        # An incremental version is the previous one plus what it read: trace both.
        earlier = [v for v in versions if v.version < record.version]
        if earlier:
            children.insert(0, lineage(metadata, table, earlier[-1].version))
    return LineageNode(table, "table", record.version, mode=record.mode,
                       code_hash=record.code_hash, inputs=children)
