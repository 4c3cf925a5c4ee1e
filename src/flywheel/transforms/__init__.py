"""Transforms: derived tables rebuilt from the log, incrementally or from the beginning."""

from flywheel.transforms.definitions import transform

__all__ = ["transform"]
