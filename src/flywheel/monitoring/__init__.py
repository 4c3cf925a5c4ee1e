"""Monitoring: quality rules, drift statistics, live performance, alerts and retraining.

Everything here reads the log and derived tables only, so that the whole monitoring
history is recomputed by replay, identically.
"""
