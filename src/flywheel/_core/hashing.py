"""Content hashes: sha256 everywhere, hex encoded."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode())


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text and equal hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def token_digest(token: str) -> str:
    """What is stored of an access token: its sha256, never the token itself."""
    return sha256_text(token.strip())
