"""Backends, one small module each, reached only through `flywheel._core.registry`."""
