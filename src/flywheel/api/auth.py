"""Bearer tokens with scopes, checked by a FastAPI dependency.

Only the sha256 of a token is stored (metadata `tokens`). Lookups are cached for a short
while so that ingestion does not wait on the metadata store per request; a deleted token
therefore keeps working for up to `ttl` seconds (`TOKEN_TTL`, one, by default) in each
server process, and a new one may be refused for up to `negative_ttl` seconds after a
failed attempt with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio.to_thread
from fastapi import Security
from fastapi.params import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flywheel._core.errors import AuthError
from flywheel._core.hashing import token_digest
from flywheel._core.metadata.tokens import BEARER, PUBLISHABLE, TokenRecord
from flywheel.ingest.access import SCOPES

__all__ = ["ADMIN", "TOKEN_TTL", "ForbiddenError", "Lookup", "PublishableKeys",
           "TokenAuth", "TokenCache", "bearer_secret", "has_scope"]

ADMIN = "admin"
_CREATE_HINT = "create one with `flywheel token create NAME --scope ingest`"

Lookup = Callable[[str], TokenRecord | None]
_BEARER = Security(HTTPBearer(auto_error=False, description="A Flywheel token "
                              "(`flywheel token create NAME --scope ingest`)"))
# Module level: FastAPI resolves the (string) annotations below in this module's globals.


class ForbiddenError(AuthError):
    """A valid token without the scope the route needs."""

    http_status = 403


TOKEN_TTL = 1.0
"""Seconds a token lookup is cached in each server process: a revoked token is refused
everywhere within this (a lookup a second per token and process costs nothing)."""


def bearer_secret(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, as FastAPI's `HTTPBearer`
    reads it (None for no header, another scheme, or no token)."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        return None
    return secret


def has_scope(record: TokenRecord, scope: str) -> bool:
    """`admin` implies every scope; a publishable key has none (it is public)."""
    return record.kind == BEARER and (scope in record.scopes or ADMIN in record.scopes)


class TokenCache:
    """sha256 -> token record (or None: unknown), kept `ttl` seconds (`negative_ttl` for
    unknown ones). Bounded: when full, expired entries go, then everything."""

    def __init__(self, lookup: Lookup, *, ttl: float = TOKEN_TTL, negative_ttl: float = TOKEN_TTL,
                 max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, TokenRecord | None]] = {}
        self._lock = threading.Lock()

    def cached(self, digest: str) -> tuple[bool, TokenRecord | None]:
        """(found, record) without querying the store."""
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def get(self, digest: str) -> TokenRecord | None:
        """The record, from the cache or else the store (blocking)."""
        found, record = self.cached(digest)
        if found:
            return record
        record = self._lookup(digest)
        now = self._clock()
        expires = now + (self._ttl if record is not None else self._negative_ttl)
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
            self._entries[digest] = (expires, record)
        return record


async def _find(cache: TokenCache, secret: str) -> TokenRecord | None:
    """The record of a token or key, from the cache or else the store (in a thread)."""
    digest = token_digest(secret)
    found, record = cache.cached(digest)
    if not found:
        record = await anyio.to_thread.run_sync(cache.get, digest)
    return record


class PublishableKeys:
    """Resolves the publishable key of a `/k/<key>/` route through the token cache, so a
    revoked key is refused within the cache's ttl, as a revoked token is."""

    def __init__(self, cache: TokenCache) -> None:
        self._cache = cache

    async def __call__(self, key: str) -> TokenRecord | None:
        if not key.strip():
            return None
        record = await _find(self._cache, key)
        # A bearer token pasted into a URL is not a key: it is refused as unknown.
        return record if record is not None and record.kind == PUBLISHABLE else None


class TokenAuth:
    """Makes the per-route token checks; with `lookup=None` (loopback) there are none."""

    def __init__(self, lookup: Lookup | TokenCache | None, *, ttl: float = TOKEN_TTL) -> None:
        self.enabled = lookup is not None
        if isinstance(lookup, TokenCache) or lookup is None:
            self._cache = lookup
        else:
            self._cache = TokenCache(lookup, ttl=ttl)

    def require(self, scope: str) -> list[Depends]:
        """Dependencies for a route that needs `scope` (empty when auth is off)."""
        check = self.checker(scope)
        if check is None:
            return []

        async def check_token(
            credentials: Annotated[HTTPAuthorizationCredentials | None, _BEARER],
        ) -> TokenRecord:
            return await check(None if credentials is None else credentials.credentials)

        return [Security(check_token)]

    def checker(self, scope: str) -> Callable[[str | None], Awaitable[TokenRecord]] | None:
        """The check of a bearer token (the secret, None when none was sent) for `scope`,
        raising a 401 or 403; None when auth is off. For routes that read their headers
        themselves, as the predict fast path does."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
        cache = self._cache
        if cache is None:
            return None

        async def check(secret: str | None) -> TokenRecord:
            if secret is None or not secret.strip():
                raise AuthError("missing bearer token",
                                hint=f"send `Authorization: Bearer <token>`; {_CREATE_HINT}")
            record = await _find(cache, secret)
            if record is None:
                raise AuthError("invalid token", hint=_CREATE_HINT)
            if record.kind != BEARER:
                raise ForbiddenError(
                    f"'{record.name}' is a publishable key, not a token: it opens only the "
                    "tracker doors under /k/<key>/",
                    hint=f"send a token with the '{scope}' scope instead")
            if not has_scope(record, scope):
                raise ForbiddenError(
                    f"token '{record.name}' lacks the '{scope}' scope",
                    hint=f"create a token with `flywheel token create NAME --scope {scope}`")
            return record

        return check
