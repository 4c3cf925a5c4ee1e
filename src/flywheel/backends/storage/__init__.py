"""Blob storage for artifacts: bytes under keys (local folder; object storage later)."""
