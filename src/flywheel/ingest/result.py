"""What an ingest call reports back.

Counts always add up: received = accepted + rejected + duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_LISTED_ERRORS = 10_000


@dataclass(frozen=True, slots=True)
class IngestError:
    index: int
    """Position of the input in the call (the request, the file or the iterable)."""
    reason: str
    """Machine-readable kind: not_json, bad_envelope, unknown_schema, schema_violation,
    too_large, unsupported_event."""
    message: str
    errors: tuple[dict[str, str], ...] = ()
    """Each violation as {path, rule, message}."""

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": f"{self.reason}: {self.message}",
                "kind": self.reason, "errors": list(self.errors)}


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: list[IngestError] = field(default_factory=list)
    errors_omitted: int = 0
    """Rejections beyond the first 10,000 are counted here, not listed (all are in bad rows)."""
    offsets: dict[str, int] = field(default_factory=dict)
    """For each log table written, the offset (Delta version) of the last commit."""

    @property
    def received(self) -> int:
        return self.accepted + self.rejected + self.duplicates

    def merge(self, other: IngestResult, index_shift: int = 0) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.duplicates += other.duplicates
        room = MAX_LISTED_ERRORS - len(self.errors)
        shifted = [IngestError(e.index + index_shift, e.reason, e.message, e.errors)
                   for e in other.errors[:max(room, 0)]]
        self.errors.extend(shifted)
        self.errors_omitted += other.errors_omitted + max(len(other.errors) - max(room, 0), 0)
        for table, offset in other.offsets.items():
            self.offsets[table] = max(offset, self.offsets.get(table, -1))

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected,
                "duplicates": self.duplicates, "errors": [e.as_dict() for e in self.errors],
                "errors_omitted": self.errors_omitted, "offsets": self.offsets}
