"""Pipelines: DAGs of plain typed steps, cached by code, inputs and params."""
