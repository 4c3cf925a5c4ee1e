"""The `TokenStore` contract: tokens and publishable keys, on every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from flywheel._core.metadata.tokens import TokenRecord, TokenStore
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.tokens import SqlTokenStore
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite


class TokenStoreContract(MetadataContract):
    @pytest.fixture
    def tokens(self, db: Database) -> TokenStore:
        return SqlTokenStore(db)

    def test_tokens(self, tokens: TokenStore) -> None:
        tokens.add_token(TokenRecord("ci", "h1", ("ingest", "read")))
        tokens.add_token(TokenRecord("admin", "h2", ("admin",)))
        tokens.add_token(TokenRecord("none", "h3", ()))

        found = tokens.find_token("h1")
        assert found is not None
        assert (found.name, found.scopes) == ("ci", ("ingest", "read"))
        assert found.created_at is not None and found.created_at.tzinfo == dt.UTC
        assert tokens.find_token("nope") is None
        assert [(t.name, t.scopes) for t in tokens.list_tokens()] == [
            ("admin", ("admin",)),
            ("ci", ("ingest", "read")),
            ("none", ()),
        ]

        assert tokens.delete_token("ci") is True
        assert tokens.delete_token("ci") is False
        assert tokens.find_token("h1") is None
        assert [t.name for t in tokens.list_tokens()] == ["admin", "none"]

    def test_publishable_keys_keep_their_limits(self, tokens: TokenStore) -> None:
        tokens.add_token(TokenRecord("web", "k1", (), kind="publishable", app_ids=("shop", "blog"),
                                    origins=("https://shop.example",), rate=25.5, key="pk_1"))
        tokens.add_token(TokenRecord("open", "k2", (), kind="publishable", app_ids=("app",),
                                    key="pk_2"))
        web = tokens.find_token("k1")
        assert web is not None
        assert (web.kind, web.app_ids, web.origins, web.rate, web.key) == (
            "publishable", ("shop", "blog"), ("https://shop.example",), 25.5, "pk_1")
        listed = {t.name: t for t in tokens.list_tokens()}
        assert (listed["open"].origins, listed["open"].rate) == ((), None)
        tokens.add_token(TokenRecord("ci", "h1", ("ingest",)))
        bearer = tokens.find_token("h1")
        assert bearer is not None and (bearer.kind, bearer.key, bearer.app_ids) == (
            "bearer", None, ())
        assert tokens.delete_token("web") is True and tokens.find_token("k1") is None

    def test_token_name_and_hash_are_unique(self, tokens: TokenStore) -> None:
        tokens.add_token(TokenRecord("ci", "h1", ("ingest",)))
        with pytest.raises(Exception, match="already exists"):
            tokens.add_token(TokenRecord("ci", "h2", ("read",)))
        with pytest.raises(Exception, match="already exists"):
            tokens.add_token(TokenRecord("other", "h1", ("read",)))
        assert [(t.name, t.sha256) for t in tokens.list_tokens()] == [("ci", "h1")]


class TestSqliteTokenStore(OnSqlite, TokenStoreContract):
    pass


@pytest.mark.postgres
class TestPostgresTokenStore(OnPostgres, TokenStoreContract):
    pass


def test_a_scope_with_a_comma_is_refused() -> None:
    # Scopes are written comma-separated: "ingest,read" would come back as two scopes.
    with pytest.raises(ValueError, match="cannot contain commas"):
        TokenRecord("ci", "h1", ("ingest,read",))
