"""What a deployment answers: one `PredictionRow` per requested row, in a `PredictionBatch`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MemberState", "PredictionBatch", "PredictionRow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberState:
    """A member as it serves now: the model version its URI points at, what it reads and
    what it answers."""

    name: str
    uri: str
    model: str
    version: int
    inputs: list[str]
    outputs: list[str]
    feature_service: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionRow:
    prediction_id: str
    member: str
    """The member that answered; `weighted` or `stacking` for an ensemble's answer."""
    model: str
    version: int
    """The answering model's version; 0 for a weighted average (its members say theirs)."""
    outputs: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    """Feature views with no live value for this row's entity (scored with defaults)."""
    entity_key: str | None = None
    entity_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"prediction_id": self.prediction_id, "member": self.member,
                "model": self.model, "version": self.version, "outputs": self.outputs,
                "missing": list(self.missing)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionBatch:
    deployment: str
    rows: list[PredictionRow]

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of `POST /v1/models/{deployment}/predict`."""
        return {"deployment": self.deployment,
                "predictions": [row.to_dict() for row in self.rows]}
