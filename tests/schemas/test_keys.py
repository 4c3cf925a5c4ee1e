from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel._core.errors import SchemaDefinitionError
from flywheel.schemas.keys import LogTableRef, SchemaKey

part = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
version = st.integers(min_value=0, max_value=999)


@given(part, part, st.integers(1, 999), version, version)
def test_key_round_trips(vendor: str, name: str, major: int, minor: int, patch: int) -> None:
    text = f"iglu:{vendor}/{name}/jsonschema/{major}-{minor}-{patch}"
    key = SchemaKey.parse(text)
    assert str(key) == text
    assert key.table == LogTableRef(vendor, name, major)


@given(st.text(max_size=80))
def test_parser_never_crashes_on_garbage(text: str) -> None:
    try:
        key = SchemaKey.parse(text)
    except SchemaDefinitionError as exc:
        assert "iglu:" in exc.one_line()
    else:
        assert str(key) == text


@pytest.mark.parametrize("bad", [
    "iglu:com.acme/x/jsonschema/0-0-0",  # MODEL starts at 1
    "iglu:com.acme/x/jsonschema/1-01-0",  # no leading zeros
    "iglu:com.acme/x/jsonschema/1-0",
    "com.acme/x/jsonschema/1-0-0",
    "iglu:com acme/x/jsonschema/1-0-0",
])
def test_rejects_malformed_keys(bad: str) -> None:
    with pytest.raises(SchemaDefinitionError):
        SchemaKey.parse(bad)


def test_versions_order_numerically() -> None:
    keys = [SchemaKey.parse(f"iglu:a/b/jsonschema/{v}") for v in ("1-10-0", "1-2-0", "2-0-0")]
    assert [k.version for k in sorted(keys)] == ["1-2-0", "1-10-0", "2-0-0"]


def test_table_names_parse_in_every_form() -> None:
    known = [LogTableRef("a", "b", 1), LogTableRef("a", "b", 2)]
    assert LogTableRef.parse("a/b/v1") == known[0]
    assert LogTableRef.parse("a/b", known) == known[1]  # newest MAJOR
    assert LogTableRef.parse("iglu:a/b/jsonschema/1-3-0") == known[0]
    with pytest.raises(SchemaDefinitionError, match="log stats"):
        LogTableRef.parse("a/unknown", known)
