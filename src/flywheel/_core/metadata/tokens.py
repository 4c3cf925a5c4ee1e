"""The token store: bearer tokens and publishable keys, by the sha256 of their secret."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

BEARER = "bearer"
PUBLISHABLE = "publishable"
TOKEN_KINDS = (BEARER, PUBLISHABLE)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A bearer token (a secret, with scopes) or a publishable key (public, shipped in web
    pages and apps: it opens only the tracker doors, for its app ids, origins and rate)."""

    name: str
    sha256: str
    scopes: tuple[str, ...]
    created_at: dt.datetime | None = None
    kind: str = BEARER
    app_ids: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    rate: float | None = None
    """Events per second the key may send (per server process); None: no limit."""
    key: str | None = None
    """The publishable key itself (it is not a secret); None for bearer tokens."""

    def __post_init__(self) -> None:
        # A scope is a name; a list of them is written as comma-separated text (stored so,
        # and given so on the command line), so a comma inside one would split it in two.
        if any("," in scope for scope in self.scopes):
            raise ValueError(f"token scopes cannot contain commas: {self.scopes!r}")


class TokenStore(Protocol):
    """Storage of tokens. Names and secrets are unique: adding a second raises."""

    def add_token(self, record: TokenRecord) -> None: ...

    def find_token(self, sha256: str) -> TokenRecord | None: ...

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, by name."""

    def delete_token(self, name: str) -> bool:
        """Whether there was a token of that name."""
