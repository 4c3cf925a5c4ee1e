"""The immutable event log: Delta tables per schema MAJOR, group commit, dedupe, bad rows."""
