"""Which member answers a row, for the policies that pick one: canary (a fixed share to
the challenger, sticky per entity) and, in `bandit`, the bandit's choice.

Stickiness uses a stable hash of the deployment's name and the entity id (BLAKE2b), not
Python's `hash()`, which differs between processes: every worker and every restart sends
one entity to the same member.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

__all__ = ["canary_members", "stable_fraction"]

_SCALE = float(1 << 64)


def stable_fraction(salt: str, key: str) -> float:
    """A number in [0, 1) fixed by (salt, key), evenly spread over keys."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8,
                             key=salt.encode("utf-8")[:64]).digest()
    return int.from_bytes(digest, "big") / _SCALE


def canary_members(deployment: str, share: float, entity_ids: Sequence[str | None]) -> list[int]:
    """0 (the champion) or 1 (the challenger) per row; rows without an entity id are
    drawn at random with the same share."""
    return [int((random.random() if entity is None
                 else stable_fraction(deployment, entity)) < share)
            for entity in entity_ids]
