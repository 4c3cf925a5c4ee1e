"""Feature store: entities, feature views and services; point-in-time training sets."""

from flywheel.features.definitions import (
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    on_demand,
)

__all__ = ["Entity", "Feature", "FeatureService", "FeatureView", "OnDemandFeatureView", "on_demand"]
