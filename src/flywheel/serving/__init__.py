"""Models in production, free of HTTP: deployments, routing policies, micro-batching, the
prediction log and batch scoring. The HTTP routes that expose them live in `flywheel.api`."""
