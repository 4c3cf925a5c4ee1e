from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.project import Project

from .conftest import (
    ORDER,
    ORDER_SCHEMA,
    PAGE_VIEW,
    Invoke,
    add_schema,
    assert_one_line_error,
    counts,
    json_lines,
    page_view,
)


def _log_rows(project_dir: Path, table: str) -> list[dict[str, object]]:
    with Project.open(project_dir) as project:
        rows: list[dict[str, object]] = project.log.read(table).to_pylist()
    return rows


def test_ndjson_good_and_bad_lines(cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    odd = b'{"schema": "' + PAGE_VIEW.encode() + b'",   "data": {"user_id": "u9"}}'
    lines = [page_view("u1").encode(), page_view("u2").encode(), b"",
             odd,                                           # missing url
             b"this is not json",
             page_view("u3", plan="pro").encode(),          # additionalProperties false
             page_view("u4").encode() + b"\r"]              # CRLF line ending is fine
    source = tmp_path / "events.ndjson"
    source.write_bytes(b"\n".join(lines) + b"\n")

    result = cli("ingest", str(source))
    assert result.exit_code == 0, result.output
    assert counts(result) == {"received": 6, "accepted": 3, "rejected": 3, "duplicates": 0}
    assert "not_json" in result.stdout and "schema_violation" in result.stdout
    assert "line 5" in result.stdout  # locations are line numbers, blank lines counted
    assert "flywheel log bad-rows" in result.stderr

    bad = cli("log", "bad-rows", "--json")
    assert bad.exit_code == 0, bad.output
    rows = json_lines(bad.stdout)
    assert sorted(r["reason"] for r in rows) == ["not_json", "schema_violation",
                                                 "schema_violation"]
    assert {r["door"] for r in rows} == {"file"}
    # The raw input is stored exactly as received, spacing included.
    assert odd.decode() in [r["raw"] for r in rows]

    summary = cli("log", "bad-rows")
    assert summary.exit_code == 0
    assert "this is not json" in summary.stdout
    assert "data must contain ['url'] properties" in summary.stdout

    stats = cli("log", "stats")
    assert stats.exit_code == 0
    row = next(line for line in stats.stdout.splitlines() if "com.example/page_view/v1" in line)
    assert row.split()[1] == "3"
    assert "schema_violation 2" in row
    assert "not_json 1" in stats.stdout
    assert len(_log_rows(project_dir, "com.example/page_view")) == 3


def test_ingest_from_stdin_and_duplicates(cli: Invoke, project_dir: Path) -> None:
    text = "\n".join(json.dumps({"schema": PAGE_VIEW, "event_id": f"id-{i}",
                                 "data": {"user_id": f"u{i}", "url": "/"}}) for i in range(4))
    first = cli("ingest", "-", input=text)
    assert first.exit_code == 0, first.output
    assert counts(first) == {"received": 4, "accepted": 4, "rejected": 0, "duplicates": 0}
    assert "stdin" in first.stdout
    again = cli("ingest", "-", input=text)
    assert counts(again) == {"received": 4, "accepted": 0, "rejected": 0, "duplicates": 4}
    ids = sorted(str(r["event_id"]) for r in _log_rows(project_dir, "com.example/page_view"))
    assert ids == [f"id-{i}" for i in range(4)]


def test_ndjson_in_small_chunks_keeps_counts_and_positions(
        cli: Invoke, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flywheel.ingest.ndjson as ndjson

    monkeypatch.setattr(ndjson, "CHUNK_LINES", 3)
    lines = [page_view(f"u{i}") if i % 4 else "{broken" for i in range(10)]
    source = tmp_path / "many.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = cli("ingest", str(source))
    assert counts(result) == {"received": 10, "accepted": 7, "rejected": 3, "duplicates": 0}
    # Errors keep their place in the whole file, not in their chunk.
    first_errors = result.stdout.split("first errors")[1]
    assert [int(n) for n in re.findall(r"^\s*(\d+)\s+line", first_errors, re.MULTILINE)] == [
        0, 4, 8]
    assert re.findall(r"line (\d+)", first_errors) == ["1", "5", "9"]
    with Project.open(project_dir) as project:
        assert project.log.stats()[0].last_offset == 4  # one commit per chunk of 3 lines


def test_invalid_utf8_line_is_a_bad_row_not_a_crash(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "latin1.ndjson"
    source.write_bytes(page_view("u1").encode() + b"\n" + b'{"caf\xe9": 1}\n')
    result = cli("ingest", str(source))
    assert result.exit_code == 0, result.output
    assert counts(result)["rejected"] == 1 and counts(result)["accepted"] == 1
    assert "UTF-8" in result.stdout


def test_json_array_file_is_refused(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "events.json"
    source.write_text("[" + page_view("u1") + "]\n")
    line = assert_one_line_error(cli("ingest", str(source)))
    assert "JSON array" in line


def _order_project(cli: Invoke, project_dir: Path) -> None:
    add_schema(project_dir, ORDER, ORDER_SCHEMA)
    assert cli("apply").exit_code == 0


def test_csv_with_schema_types_the_cells(cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity,price,gift,event_id,event_time\n"
                      "o1,3,9.5,true,e1,2026-01-02T03:04:05Z\n"
                      "o2,2,,no,e2,\n"
                      "o3,many,1.5,yes,e3,\n")
    result = cli("ingest", str(source), "--schema", ORDER)
    assert result.exit_code == 0, result.output
    assert counts(result) == {"received": 3, "accepted": 2, "rejected": 1, "duplicates": 0}
    rows = sorted(_log_rows(project_dir, "com.acme/order"), key=lambda r: str(r["order_id"]))
    assert [(r["event_id"], r["quantity"], r["price"], r["gift"]) for r in rows] == [
        ("e1", 3, 9.5, True), ("e2", 2, None, False)]
    assert rows[0]["event_time"] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    bad = json_lines(cli("log", "bad-rows", "--json").stdout)
    assert len(bad) == 1 and '"quantity":"many"' in bad[0]["raw"]
    assert bad[0]["message"].startswith("$.quantity")


def test_csv_extra_cells_are_kept_as_a_bad_row(cli: Invoke, project_dir: Path,
                                               tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity\no1,1\no2,2,surprise\n")
    result = cli("ingest", str(source), "-s", ORDER, "--time-now")
    assert counts(result) == {"received": 2, "accepted": 1, "rejected": 1, "duplicates": 0}
    bad = json_lines(cli("log", "bad-rows", "--json").stdout)
    assert bad[0]["reason"] == "bad_envelope" and "surprise" in bad[0]["raw"]


def test_csv_without_schema_is_exit_2(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity\no1,1\n")
    line = assert_one_line_error(cli("ingest", str(source)))
    assert "--schema" in line


def test_csv_with_unregistered_schema_is_exit_2(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity\no1,1\n")
    line = assert_one_line_error(cli("ingest", str(source), "--schema", ORDER))
    assert "not registered" in line


def test_parquet_rows_as_data(cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ["p1", "p2", "p3"], "quantity": [1, None, 3],
                             "price": [1.5, 2.0, None], "gift": [True, False, None]}), source)
    result = cli("ingest", str(source), "--schema", ORDER, "--time-now")
    assert result.exit_code == 0, result.output
    assert counts(result) == {"received": 3, "accepted": 2, "rejected": 1, "duplicates": 0}
    assert "row 2" in result.stdout  # p2 has no quantity
    rows = sorted(_log_rows(project_dir, "com.acme/order"), key=lambda r: str(r["order_id"]))
    assert [(r["order_id"], r["quantity"], r["gift"]) for r in rows] == [
        ("p1", 1, True), ("p3", 3, None)]


def test_parquet_with_schema_and_data_columns(cli: Invoke, project_dir: Path,
                                              tmp_path: Path) -> None:
    source = tmp_path / "export.parquet"
    data = [json.dumps({"user_id": "a", "url": "/a"}), json.dumps({"user_id": "b"})]
    pq.write_table(pa.table({"schema": [PAGE_VIEW, PAGE_VIEW], "data": data,
                             "event_id": ["pa", "pb"]}), source)
    result = cli("ingest", str(source))
    assert result.exit_code == 0, result.output
    assert counts(result) == {"received": 2, "accepted": 1, "rejected": 1, "duplicates": 0}
    rows = _log_rows(project_dir, "com.example/page_view")
    assert [(r["event_id"], r["user_id"]) for r in rows] == [("pa", "a")]

    structs = tmp_path / "structs.parquet"
    pq.write_table(pa.table({"schema": [PAGE_VIEW], "data": [{"user_id": "c", "url": "/c"}]}),
                   structs)
    assert counts(cli("ingest", str(structs)))["accepted"] == 1


def test_parquet_without_envelope_columns_needs_schema(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"user_id": ["a"]}), source)
    assert "--schema" in assert_one_line_error(cli("ingest", str(source)))


def test_not_parquet_is_exit_2(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "broken.parquet"
    source.write_text("not parquet at all")
    assert "as Parquet" in assert_one_line_error(cli("ingest", str(source)))


def test_format_option_overrides_the_extension(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "events.txt"
    source.write_text(page_view("u1") + "\n")
    assert "format" in assert_one_line_error(cli("ingest", str(source)))
    result = cli("ingest", str(source), "--format", "ndjson")
    assert counts(result)["accepted"] == 1


def test_nonexistent_file_is_one_line(cli: Invoke, tmp_path: Path) -> None:
    line = assert_one_line_error(cli("ingest", str(tmp_path / "missing.ndjson")))
    assert "missing.ndjson" in line and "no such file" in line


def test_sending_the_same_file_again_stores_nothing_twice(cli: Invoke, project_dir: Path,
                                                          tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    source.write_text("\n".join(page_view(f"u{i}") for i in range(5)) + "\n")
    assert counts(cli("ingest", str(source)))["accepted"] == 5
    again = counts(cli("ingest", str(source)))
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    source.write_text("\n".join(page_view(f"u{i}") for i in range(6)) + "\n")  # a new file
    assert counts(cli("ingest", str(source)))["accepted"] == 6
    assert len(_log_rows(project_dir, "com.example/page_view")) == 11


def test_csv_sent_again_is_deduplicated_too(cli: Invoke, project_dir: Path,
                                            tmp_path: Path) -> None:
    source = tmp_path / "views.csv"
    source.write_text("user_id,url\nu1,/a\nu2,/b\n")
    again = ("ingest", str(source), "--schema", PAGE_VIEW, "--time-now")
    assert counts(cli(*again))["accepted"] == 2
    assert counts(cli(*again))["duplicates"] == 2


# Envelope columns of files of rows ------------------------------------------------------
def _stamps(n: int) -> list[dt.datetime]:
    return [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(n)]


def test_a_file_without_a_time_column_is_refused_naming_the_flags(
        cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ["a"], "quantity": [1], "ts": _stamps(1)}), source)
    line = assert_one_line_error(cli("ingest", str(source), "--schema", ORDER))
    assert "--time-column" in line and "--time-now" in line and "ts looks like one" in line
    with Project.open(project_dir) as project:
        assert not project.log_store.handle(project.schemas.lookup(ORDER).table.ref).version()


def test_time_and_id_columns_fill_the_envelope(cli: Invoke, project_dir: Path,
                                               tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ["a", "b", "c"], "quantity": [1, 2, 3],
                             "ts": _stamps(3), "n": [7, 8, 7]}), source)
    result = cli("ingest", str(source), "-s", ORDER, "--time-column", "ts", "--id-column", "n")
    assert result.exit_code == 0, result.output
    # The third row repeats id 7: stored once, counted as a duplicate.
    assert counts(result) == {"received": 3, "accepted": 2, "rejected": 0, "duplicates": 1}
    rows = sorted(_log_rows(project_dir, "com.acme/order"), key=lambda r: str(r["order_id"]))
    assert [(r["event_id"], r["event_time"]) for r in rows] == [
        ("7", _stamps(1)[0]), ("8", _stamps(2)[1])]
    again = cli("ingest", str(source), "-s", ORDER, "--time-column", "ts", "--id-column", "n")
    assert counts(again) == {"received": 3, "accepted": 0, "rejected": 0, "duplicates": 3}


def test_naive_timestamps_are_read_as_utc(cli: Invoke, project_dir: Path,
                                          tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.parquet"
    naive = pa.array([dt.datetime(2026, 1, 1, 12)], pa.timestamp("ns"))
    pq.write_table(pa.table({"order_id": ["a"], "quantity": [1], "ts": naive}), source)
    result = cli("ingest", str(source), "-s", ORDER, "--time-column", "ts")
    assert counts(result)["accepted"] == 1
    (row,) = _log_rows(project_dir, "com.acme/order")
    assert row["event_time"] == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def test_time_now_takes_the_ingestion_time(cli: Invoke, project_dir: Path,
                                           tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity\no1,1\n")
    before = dt.datetime.now(dt.UTC)
    assert counts(cli("ingest", str(source), "-s", ORDER, "--time-now"))["accepted"] == 1
    (row,) = _log_rows(project_dir, "com.acme/order")
    assert row["event_time"] >= before.replace(microsecond=0)


@pytest.mark.parametrize(("args", "says"), [
    (["--time-column", "when"], "--time-column when: the file has no such column"),
    (["--id-column", "nope"], "--id-column nope: the file has no such column"),
    (["--time-column", "quantity"], "holds int64 values"),
    (["--time-now", "--time-column", "ts"], "exclude each other"),
])
def test_bad_envelope_flags_are_one_line(cli: Invoke, project_dir: Path, tmp_path: Path,
                                         args: list[str], says: str) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ["a"], "quantity": [1], "ts": _stamps(1)}), source)
    assert says in assert_one_line_error(cli("ingest", str(source), "-s", ORDER, *args))


def test_envelope_flags_are_refused_for_ndjson(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    source.write_text(page_view("u1") + "\n")
    line = assert_one_line_error(cli("ingest", str(source), "--id-column", "x"))
    assert "NDJSON events carry their own envelope" in line


def test_an_open_schema_swallowing_a_time_column_is_warned_about(
        cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    add_schema(project_dir, ORDER, {**ORDER_SCHEMA, "additionalProperties": True})
    assert cli("apply").exit_code == 0
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity,created_at\no1,1,2026-01-01T00:00:00Z\n")
    result = cli("ingest", str(source), "-s", ORDER, "--time-now")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1
    assert "created_at" in warning[0] and "--time-column created_at" in warning[0]
    (row,) = _log_rows(project_dir, "com.acme/order")
    assert row["_extra"] == '{"created_at":"2026-01-01T00:00:00Z"}'


def test_a_closed_schema_with_an_undeclared_column_is_warned_about(
        cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity,colour\no1,1,red\no2,2,\n")
    result = cli("ingest", str(source), "-s", ORDER, "--time-now")
    assert "colour is not declared" in result.stderr
    assert counts(result) == {"received": 2, "accepted": 1, "rejected": 1, "duplicates": 0}


def test_bad_rows_of_the_columnar_path_keep_reason_and_raw(
        cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ["a", None, "c"], "quantity": [1, 2, 2**40],
                             "event_time": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
                                            "someday"]}), source)
    result = cli("ingest", str(source), "-s", ORDER)
    assert counts(result) == {"received": 3, "accepted": 1, "rejected": 2, "duplicates": 0}
    bad = sorted(json_lines(cli("log", "bad-rows", "--json").stdout), key=lambda r: r["reason"])
    assert [r["reason"] for r in bad] == ["bad_envelope", "schema_violation"]
    assert '"event_time":"someday"' in bad[0]["raw"]
    assert "order_id" in bad[1]["message"]


def test_schema_by_vendor_and_name(cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    _order_project(cli, project_dir)
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity\no1,1\n")
    assert counts(cli("ingest", str(source), "-s", "com.acme/order", "--time-now"))[
        "accepted"] == 1
    assert "no version of schema com.acme/nothing" in assert_one_line_error(
        cli("ingest", str(source), "-s", "com.acme/nothing", "--time-now"))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_file_ingested_with_the_ids_of_an_earlier_release_stores_nothing_twice(
        cli: Invoke, project_dir: Path, tmp_path: Path, kind: str) -> None:
    """An earlier release derived a uuid5 per row; those rows keep their ids when the file
    comes again, instead of being stored a second time under today's block ids."""
    from flywheel.ingest.inputs import legacy_ids

    _order_project(cli, project_dir)
    n = 150
    source = tmp_path / f"orders.{kind}"
    times = _stamps(n)
    if kind == "csv":
        source.write_text("order_id,quantity,price,gift,event_time\n" + "".join(
            f"o{i},{i + 1},1.5,true,{t.isoformat()}\n" for i, t in enumerate(times)))
    else:
        pq.write_table(pa.table({"order_id": [f"o{i}" for i in range(n)],
                                 "quantity": list(range(1, n + 1)), "price": [1.5] * n,
                                 "gift": [True] * n, "event_time": times}), source)
    old = legacy_ids(str(source))
    assert old is not None
    with Project.open(project_dir) as project:  # what the earlier release stored
        stored = project.ingest([{"schema": ORDER, "event_id": old(i), "event_time": t.isoformat(),
                                  "data": {"order_id": f"o{i}", "quantity": i + 1,
                                           "price": 1.5, "gift": True}}
                                 for i, t in enumerate(times)])
        assert stored.accepted == n
    again = cli("ingest", str(source), "--schema", ORDER)
    assert again.exit_code == 0, again.output
    assert "earlier release" in again.stderr
    assert (counts(again)["accepted"], counts(again)["duplicates"]) == (0, n)
    assert len(_log_rows(project_dir, "com.acme/order")) == n
