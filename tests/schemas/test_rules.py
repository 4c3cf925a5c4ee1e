"""Versioning rules and column mapping of event schemas."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from flywheel._core.errors import SchemaDefinitionError
from flywheel.schemas.columns import Kind, payload_columns
from flywheel.schemas.documents import SchemaDocument
from flywheel.schemas.keys import SchemaKey
from flywheel.schemas.registry import SchemaRegistry, check_documents
from tests.helpers import object_schema


def doc(version: str, document: dict[str, Any], name: str = "cart") -> SchemaDocument:
    return SchemaDocument(SchemaKey.parse(f"iglu:com.acme/{name}/jsonschema/{version}"), document)


BASE = object_schema({"sku": {"type": "string"}, "qty": {"type": "integer"}}, ["sku"])


def test_adding_an_optional_property_is_a_minor_change() -> None:
    newer = object_schema({**BASE["properties"], "price": {"type": "number"}}, ["sku"])
    check_documents([doc("1-0-0", BASE), doc("1-1-0", newer)])
    registry = SchemaRegistry([doc("1-0-0", BASE), doc("1-1-0", newer)])
    (table,) = registry.tables
    assert [c.name for c in table.columns] == ["sku", "qty", "price"]


def test_adding_a_property_in_a_patch_is_refused() -> None:
    newer = object_schema({**BASE["properties"], "price": {"type": "number"}}, ["sku"])
    with pytest.raises(SchemaDefinitionError, match="MINOR change"):
        check_documents([doc("1-0-0", BASE), doc("1-0-1", newer)])


@pytest.mark.parametrize(("change", "words"), [
    (object_schema({"sku": {"type": "string"}}, ["sku"]), "removes property 'qty'"),
    (object_schema({"sku": {"type": "string"}, "qty": {"type": "string"}}, ["sku"]),
     "changes the type of 'qty'"),
    (object_schema(BASE["properties"], ["sku", "qty"]), "required"),
])
def test_breaking_changes_need_a_new_major(change: dict[str, Any], words: str) -> None:
    with pytest.raises(SchemaDefinitionError, match=words) as info:
        check_documents([doc("1-0-0", BASE), doc("1-1-0", change)])
    assert "2-0-0" in info.value.one_line()
    check_documents([doc("1-0-0", BASE), doc("2-0-0", change)])  # fine as a new MAJOR


def test_a_major_starts_at_zero_zero() -> None:
    with pytest.raises(SchemaDefinitionError, match="must be 1-0-0"):
        check_documents([doc("1-1-0", BASE)])


def test_envelope_names_are_reserved() -> None:
    clash = object_schema({"event_time": {"type": "string"}})
    with pytest.raises(SchemaDefinitionError, match="clash with envelope"):
        check_documents([doc("1-0-0", clash)])


def test_json_types_map_to_arrow_types() -> None:
    columns = {c.name: c for c in payload_columns(object_schema({
        "s": {"type": "string"},
        "i": {"type": "integer"},
        "n": {"type": ["number", "null"]},
        "b": {"type": "boolean"},
        "t": {"type": "string", "format": "date-time"},
        "d": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "closed": {"type": "object", "additionalProperties": False,
                   "properties": {"x": {"type": "integer"}}},
        "open": {"type": "object"},
        "mixed": {"type": ["string", "integer"]},
    }))}
    assert columns["s"].arrow_type == pa.string()
    assert columns["i"].arrow_type == pa.int64()
    assert columns["n"].arrow_type == pa.float64()
    assert columns["b"].arrow_type == pa.bool_()
    assert columns["t"].kind is Kind.TIMESTAMP
    assert columns["d"].arrow_type == pa.date32()
    assert columns["tags"].arrow_type == pa.list_(pa.string())
    assert columns["closed"].arrow_type == pa.struct([("x", pa.int64())])
    assert columns["open"].kind is Kind.JSON  # an open object could lose fields as a struct
    assert columns["mixed"].kind is Kind.JSON


@pytest.mark.parametrize("dialect", ["\u2028http://json-schema.org/draft-07/schema#",
                                     "http://example.com/my-draft#", "draft-07"])
def test_an_unknown_schema_dialect_is_refused_not_validated_as_another(dialect: str) -> None:
    """jsonschema would only warn and validate by the latest draft."""
    from flywheel.schemas.validation import check_document

    problem = check_document({"$schema": dialect, "type": "object"})
    assert problem is not None and "is not a JSON Schema draft" in problem
    assert check_document({"$schema": "http://json-schema.org/draft-07/schema#",
                           "type": "object"}) is None
