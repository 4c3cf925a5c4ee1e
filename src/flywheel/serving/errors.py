"""What a caller of a deployment can get wrong, each a one-line `InputError` with its status."""

from __future__ import annotations

from collections.abc import Sequence

from flywheel._core.errors import InputError

__all__ = [
    "BadPredictRequestError",
    "DeploymentSpecError",
    "MissingEntitiesError",
    "UnknownDeploymentError",
    "UnknownPredictionError",
]


class DeploymentSpecError(InputError):
    """A `deployments/NAME.yaml` that cannot be served: one line naming the file and why."""


class UnknownDeploymentError(InputError):
    http_status = 404


class BadPredictRequestError(InputError):
    """A predict request that cannot be scored as sent (shape, types, missing columns)."""


class MissingEntitiesError(InputError):
    """Entities the online store does not know, refused by a deployment without defaults."""

    http_status = 422

    def __init__(self, deployment: str, missing: Sequence[str]) -> None:
        self.deployment = deployment
        self.missing = list(missing)
        shown = ", ".join(self.missing[:20]) + (" …" if len(self.missing) > 20 else "")
        super().__init__(f"deployment {deployment}: no features online for {shown}",
                         hint="materialise them, or declare `defaults` in the deployment "
                         "to score missing entities with")


class UnknownPredictionError(InputError):
    """Feedback for a prediction_id the log has never seen."""

    http_status = 404
