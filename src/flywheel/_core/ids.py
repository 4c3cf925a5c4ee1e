"""Identifiers: random, lowercase hex in the UUID layout, made in bulk for speed."""

from __future__ import annotations

import os
import uuid

_NAMESPACE = uuid.UUID("6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")


def new_ids(count: int) -> list[str]:
    """`count` random version-4 UUID strings.

    One `os.urandom` call and string slicing is ~10x faster than `uuid.uuid4()` per id,
    which matters at hundreds of thousands of events per second.
    """
    if count <= 0:
        return []
    raw = bytearray(os.urandom(16 * count))
    for offset in range(0, 16 * count, 16):
        raw[offset + 6] = (raw[offset + 6] & 0x0F) | 0x40  # version 4
        raw[offset + 8] = (raw[offset + 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return [
        f"{text[i:i + 8]}-{text[i + 8:i + 12]}-{text[i + 12:i + 16]}-"
        f"{text[i + 16:i + 20]}-{text[i + 20:i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def new_id() -> str:
    return new_ids(1)[0]


def derived_id(*parts: str) -> str:
    """A stable id from stable parts (same parts, same id): makes retries idempotent."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))
