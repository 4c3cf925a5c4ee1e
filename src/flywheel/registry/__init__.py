"""The model registry: model versions, aliases with an audit trail, packaging and loading."""
