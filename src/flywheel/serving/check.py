"""A deployment spec against the registry and the feature definitions: the models and
aliases it names exist, a stacking meta-model reads the members' outputs, defaults name
features the members read. One line per problem, naming the file."""

from __future__ import annotations

from flywheel._core.errors import FlywheelError
from flywheel.features.definitions import FeatureRegistry
from flywheel.registry import ModelRegistry, ModelUri
from flywheel.serving.errors import DeploymentSpecError
from flywheel.serving.scorer import Scorer
from flywheel.serving.spec import DeploymentSpec

__all__ = ["check_spec"]


def check_spec(spec: DeploymentSpec, registry: ModelRegistry,
               features: FeatureRegistry | None) -> None:
    """Raise a `DeploymentSpecError` for the first thing in `spec` that cannot be served."""
    scorers = {m.name: _scorer(spec, registry, m.model, f"member {m.name}")
               for m in spec.members}
    for name, scorer in scorers.items():
        service = scorer.feature_service
        if service is not None and features is not None and service not in features.services:
            raise DeploymentSpecError(f"{spec.source}: member {name} reads feature service "
                                      f"{service}, which the project does not declare")
    if spec.policy == "weighted":
        kinds = {s.is_classifier for s in scorers.values()}
        classes = {tuple(s.classes or ()) for s in scorers.values()}
        if len(kinds) > 1 or len(classes) > 1:
            raise DeploymentSpecError(f"{spec.source}: weighted members must all be "
                                      "regressors, or classifiers of the same classes")
    if spec.meta_model is not None:
        meta = _scorer(spec, registry, spec.meta_model, "meta_model")
        offered = [f"{name}.{output}" for name, s in scorers.items() for output in s.outputs]
        strange = [c for c in meta.columns if c not in offered]
        if strange:
            raise DeploymentSpecError(
                f"{spec.source}: the meta-model {spec.meta_model} reads "
                f"{', '.join(strange)}, which are not the members' outputs",
                hint=f"its inputs must be among {', '.join(offered)}")
    read = {c for s in scorers.values() for c in s.columns}
    unread = sorted(k for k in spec.defaults if k not in read)
    if unread:
        raise DeploymentSpecError(f"{spec.source}: defaults name {', '.join(unread)}, which "
                                  "no member reads")


def _scorer(spec: DeploymentSpec, registry: ModelRegistry, uri: ModelUri,
            what: str) -> Scorer:
    try:
        return Scorer(loaded=registry.load(uri))
    except FlywheelError as exc:
        raise DeploymentSpecError(f"{spec.source}: {what}: {exc.message}",
                                  hint=exc.hint) from None
