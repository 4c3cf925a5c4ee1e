"""Random bytes and truncated real files as CSV, Parquet and NDJSON: `flywheel ingest`
exits 0 or 2, never with a traceback or an unexpected error, and loses nothing it had
accepted before."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.project import Project

from .conftest import ORDER, ORDER_SCHEMA, Invoke, add_schema, counts, page_view


def _real_files() -> dict[str, bytes]:
    stamps = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i)
              for i in range(50)]
    buffer = io.BytesIO()
    pq.write_table(pa.table({"order_id": [f"o{i}" for i in range(50)],
                             "quantity": list(range(50)), "price": [i / 3 for i in range(50)],
                             "event_time": stamps}), buffer, row_group_size=10)
    csv = "order_id,quantity,price,event_time\n" + "".join(
        f"o{i},{i},{i / 3},{stamps[i].isoformat()}\n" for i in range(50))
    ndjson = "".join(page_view(f"u{i}") + "\n" for i in range(50))
    return {"parquet": buffer.getvalue(), "csv": csv.encode(), "ndjson": ndjson.encode()}


REAL = _real_files()


def _stored(project_dir: Path) -> set[str]:
    with Project.open(project_dir) as project:
        return {i for table in ("com.acme/order", "com.example/page_view")
                for i in project.log.read(table).column("event_id").to_pylist()}


@pytest.fixture
def seeded(cli: Invoke, project_dir: Path, tmp_path: Path) -> Invoke:
    add_schema(project_dir, ORDER, ORDER_SCHEMA)
    assert cli("apply").exit_code == 0
    for suffix, data in REAL.items():
        path = tmp_path / f"seed.{suffix}"
        path.write_bytes(data)
        args = [] if suffix == "ndjson" else ["--schema", ORDER]
        assert cli("ingest", str(path), *args).exit_code == 0
    return cli


@pytest.mark.slow
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(REAL)), data=st.data())
def test_random_and_truncated_files_never_crash(seeded: Invoke, project_dir: Path,
                                                tmp_path: Path, suffix: str,
                                                data: st.DataObject) -> None:
    real = REAL[suffix]
    content = data.draw(st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(real)).map(lambda n: real[:n]),
        st.tuples(st.integers(0, len(real) - 1), st.binary(min_size=1, max_size=8)).map(
            lambda p: real[:p[0]] + p[1] + real[p[0] + len(p[1]):])))
    before = _stored(project_dir)
    path = tmp_path / f"input.{suffix}"
    path.write_bytes(content)
    args = [] if suffix == "ndjson" else ["--schema", ORDER, "--time-now"] if (
        b"event_time" not in content) else ["--schema", ORDER]
    result = seeded("ingest", str(path), *args)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    after = _stored(project_dir)
    assert before <= after
    if result.exit_code == 0:
        assert len(after - before) == counts(result)["accepted"]
