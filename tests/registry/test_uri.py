"""Model URIs: property tests of the strict parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel._core.errors import InputError
from flywheel.registry import ModelUri, parse_uri

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,30}", fullmatch=True)
aliases = st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,20}", fullmatch=True)
versions = st.integers(1, 999_999_999)


@given(names, aliases)
def test_alias_uris_round_trip(name: str, alias: str) -> None:
    uri = ModelUri(name, alias=alias)
    assert parse_uri(str(uri)) == uri


@given(names, versions)
def test_version_uris_round_trip(name: str, version: int) -> None:
    uri = ModelUri(name, version=version)
    assert parse_uri(str(uri)) == uri


@given(st.text(max_size=40))
def test_any_text_parses_or_is_one_input_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except InputError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert str(uri) == text  # a parsed URI is exactly what was written


@pytest.mark.parametrize("bad", [
    "", "@champion", "purchase@", "purchase/", "purchase/0", "purchase/01", "purchase/-1",
    "purchase/1.0", "purchase@1st", "purchase@champ ion", "pur chase", "a/1/2", "a@b@c",
    "a@b/1", "_purchase", "purchase/1e3", "purchase/١", "purchase/1\n", "purchase\n", "a@b\n",
])
def test_bad_uris(bad: str) -> None:
    with pytest.raises(InputError, match="model URI"):
        parse_uri(bad)
