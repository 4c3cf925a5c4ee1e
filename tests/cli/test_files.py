"""The streaming readers on their own."""

from __future__ import annotations

import io

import pytest

from flywheel._core.errors import InputError
from flywheel.ingest.csv_rows import CsvRecords, csv_events
from flywheel.ingest.inputs import Format, detect_format
from flywheel.ingest.layout import Layout
from flywheel.ingest.ndjson import ndjson_chunks
from flywheel.ingest.prepare import NotJson
from flywheel.schemas.documents import SchemaDocument
from flywheel.schemas.keys import SchemaKey
from flywheel.schemas.registry import SchemaRegistry, VersionSpec

from .conftest import ORDER, ORDER_SCHEMA


def test_detect_format() -> None:
    assert detect_format("-") is Format.NDJSON
    assert detect_format("a.JSONL") is Format.NDJSON
    assert detect_format("a.csv") is Format.CSV
    assert detect_format("a.parquet") is Format.PARQUET
    assert detect_format("a.csv", Format.NDJSON) is Format.NDJSON
    with pytest.raises(InputError):
        detect_format("a.xlsx")


def test_ndjson_chunks_keep_raw_lines_and_line_numbers() -> None:
    data = b'{"a": 1}\r\n\n{"b": 2}\n{"c":3}\n   \n{"d": 4}'
    chunks = list(ndjson_chunks(io.BytesIO(data), max_line_bytes=1024, chunk_lines=2))
    assert [c.raws for c in chunks] == [[b'{"a": 1}', b'{"b": 2}'], [b'{"c":3}', b'{"d": 4}']]
    assert [c.lines for c in chunks] == [[1, 3], [4, 6]]
    assert chunks[0].items == [{"a": 1}, {"b": 2}]
    assert chunks[-1].position == len(data)


def test_a_line_beyond_the_limit_is_cut_and_marked() -> None:
    data = b'{"big": "' + b"x" * 5000 + b'"}\n{"ok": true}\n'
    (chunk,) = ndjson_chunks(io.BytesIO(data), max_line_bytes=100)
    assert len(chunk.raws[0]) == 100 and chunk.items[0] is None
    assert chunk.items[1] == {"ok": True} and chunk.lines == [1, 2]
    assert chunk.position == len(data)


def test_invalid_utf8_becomes_not_json() -> None:
    (chunk,) = ndjson_chunks(io.BytesIO(b'{"a": 1}\n{"b": "\xff"}\n'), max_line_bytes=100)
    assert chunk.items[0] == {"a": 1}
    assert isinstance(chunk.items[1], NotJson) and "UTF-8" in chunk.items[1].message


@pytest.mark.parametrize("text", [b"[\n", b'[{"a": 1}]', b"{\n"])
def test_whole_json_documents_are_refused(text: bytes) -> None:
    with pytest.raises(InputError):
        list(ndjson_chunks(io.BytesIO(text), max_line_bytes=100))


def _order_spec() -> VersionSpec:
    key = SchemaKey.parse(ORDER)
    spec = SchemaRegistry([SchemaDocument(key, ORDER_SCHEMA)]).get(ORDER)
    assert spec is not None
    return spec


def test_csv_cells_are_typed_by_the_schema() -> None:
    text = ("\ufefforder_id,quantity,price,gift,note,event_time\n"
            "o1, 7 ,2.5,Yes,hi,2026-01-01T00:00:00Z\n"
            "o2,4.0,1e3,0,,\n"
            "o3,4.5,nan,maybe,,\n").encode()
    spec = _order_spec()
    layout = Layout(time_column="event_time", id_column=None, declared=spec.declared)
    events = list(csv_events(CsvRecords(io.BytesIO(text)), spec, layout))
    assert events[0] == {"schema": ORDER, "event_time": "2026-01-01T00:00:00Z",
                         "data": {"order_id": "o1", "quantity": 7, "price": 2.5, "gift": True,
                                  "note": "hi"}}
    assert events[1]["data"] == {"order_id": "o2", "quantity": 4, "price": 1000.0,
                                 "gift": False}
    # What does not parse stays text, for validation to reject with the value.
    assert events[2]["data"] == {"order_id": "o3", "quantity": "4.5", "price": "nan",
                                 "gift": "maybe"}


def test_csv_header_problems_are_input_errors() -> None:
    for text in (b"", b"order_id,order_id\n", b"order_id,,x\n"):
        with pytest.raises(InputError):
            CsvRecords(io.BytesIO(text))
