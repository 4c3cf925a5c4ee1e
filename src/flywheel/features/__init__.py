"""Feature store: entities, feature views and services; point-in-time training sets."""

from flywheel.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    on_demand,
)

__all__ = ["Entity", "FeatureService", "FeatureView", "OnDemandFeatureView", "on_demand"]
