"""`project.tokens`: the bearer tokens and publishable keys the HTTP doors accept.

Tokens are secrets: only their sha256 is stored, and each is shown once, at creation.
Publishable keys are public (they ship in web pages and apps) and open only the tracker
doors, for their app ids, origins and rate.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence

from flywheel._core.errors import InputError
from flywheel._core.hashing import token_digest
from flywheel._core.metadata.tokens import PUBLISHABLE, TokenRecord, TokenStore
from flywheel.ingest.keys import check_app_id, new_key, normalise_origin

__all__ = ["SCOPES", "Tokens"]

SCOPES = ("ingest", "read", "predict", "feedback", "admin")
"""What a bearer token may allow; `admin` allows everything."""
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Tokens:
    """Create, list and revoke tokens and keys; running servers see a change within a
    second, in every worker."""

    def __init__(self, *, store: TokenStore) -> None:
        self._store = store

    def create(self, name: str, *, scopes: Iterable[str]) -> str:
        """A new bearer token with `scopes`; returns the token (it is not stored)."""
        chosen = tuple(sorted(set(scopes)))
        if not chosen:
            raise InputError("a token needs at least one scope",
                             hint="one of " + "|".join(SCOPES))
        unknown = [s for s in chosen if s not in SCOPES]
        if unknown:
            raise InputError(f"unknown scope {', '.join(unknown)}",
                             hint="one of " + "|".join(SCOPES))
        token = secrets.token_urlsafe(32)
        self._store.add_token(TokenRecord(_checked(name), token_digest(token), chosen))
        return token

    def create_key(self, name: str, *, app_ids: Sequence[str], origins: Sequence[str] = (),
                   rate: float | None = None) -> TokenRecord:
        """A new publishable key for `app_ids`, from `origins` (none: apps only), at most
        `rate` events per second per server process; the record carries the key."""
        if not app_ids:
            raise InputError("a publishable key needs at least one --app-id",
                             hint="the tracker's appId, e.g. --app-id shop")
        key = new_key()
        record = TokenRecord(
            _checked(name), token_digest(key), (), kind=PUBLISHABLE,
            app_ids=tuple(dict.fromkeys(check_app_id(a) for a in app_ids)),
            origins=tuple(dict.fromkeys(normalise_origin(o) for o in origins)),
            rate=rate, key=key)
        self._store.add_token(record)
        return record

    def list(self) -> list[TokenRecord]:
        """Every token and key, by name."""
        return self._store.list_tokens()

    def revoke(self, name: str) -> bool:
        """Delete a token or key; whether there was one of that name."""
        return self._store.delete_token(name)


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(f"token name {name!r} is not allowed",
                         hint="use 1-64 letters, digits, '.', '_' or '-'")
    return name
