"""Lineage: every derived-table version records the table versions and log offsets it read,
and the hash of the code that built it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flywheel._core.errors import InputError
from flywheel.project import Project
from flywheel.transforms.dag import load_transforms
from flywheel.transforms.definitions import parse_sql
from flywheel.transforms.lineage import LineageNode, lineage
from tests.transforms.support import (
    LOG,
    event,
    ingest_ok,
    inputs_of,
    log_head,
    py_transform,
    rows,
    sql_transform,
    write_chain,
)


def _walk(node: LineageNode) -> Iterator[LineageNode]:
    yield node
    for child in node.inputs:
        yield from _walk(child)


def _log_ranges(node: LineageNode) -> set[tuple[str, int, int]]:
    return {(n.name, n.after, n.upto) for n in _walk(node)
            if n.kind == "log" and n.after is not None and n.upto is not None}


def _covered(ranges: set[tuple[str, int, int]]) -> int:
    """The last offset reached by following (after, upto] ranges from -1 without a gap."""
    reached = -1
    for _, after, upto in sorted(ranges, key=lambda r: r[1]):
        if after > reached:
            break
        reached = max(reached, upto)
    return reached


def _only(nodes: list[LineageNode], kind: str, name: str | None = None) -> LineageNode:
    found = [n for n in nodes if n.kind == kind and (name is None or n.name == name)]
    assert len(found) == 1, f"one {kind} {name or ''} input expected among {nodes}"
    return found[0]


def _write_two_levels(project: Project) -> None:
    sql_transform(project.root, "views", "select event_id, user_id from pv",
                  inputs=f"pv={LOG}", materialized="incremental")
    sql_transform(project.root, "per_user", "select user_id, count(*) as n from views "
                  "group by user_id", inputs="views")


def test_lineage_two_levels_deep_reaches_the_log_offsets(project: Project) -> None:
    _write_two_levels(project)
    ingest_ok(project, [event(1, "ann", 0), event(2, "bob", 0)])
    project.transform()
    first_head = log_head(project)

    node = project.lineage("per_user")
    assert (node.name, node.kind, node.mode) == ("per_user", "table", "full")
    assert node.version == project.tables.version("per_user")
    views = _only(node.inputs, "table", "views")
    assert views.version == project.tables.version("views")
    assert views.mode == "full"
    log = _only(views.inputs, "log")
    assert (log.name, log.after, log.upto) == (LOG, -1, first_head)
    assert log.describe() == f"log {LOG} (offsets 0..{first_head})"

    ingest_ok(project, [event(3, "ann", 1)])
    ingest_ok(project, [event(4, "cy", 2)])
    project.transform()
    head = log_head(project)
    assert head == first_head + 2

    node = project.lineage("per_user")
    views = _only(node.inputs, "table", "views")
    assert views.version == project.tables.version("views"), \
        "lineage names the version of the input table the build read"
    assert views.mode == "incremental"
    log = _only(views.inputs, "log")
    assert (log.after, log.upto) == (first_head, head), "an incremental run's own offsets"
    assert log.describe() == f"log {LOG} (offsets {first_head + 1}..{head})"
    assert _covered(_log_ranges(node)) == head, (
        "following the lineage of per_user should account for every log offset it was "
        f"built from (0..{head}); reached: {sorted(_log_ranges(node))}")


def test_lineage_of_an_older_version(project: Project) -> None:
    _write_two_levels(project)
    ingest_ok(project, [event(1, "ann", 0)])
    project.transform()
    first = project.tables.version("per_user")
    first_head = log_head(project)
    ingest_ok(project, [event(2, "bob", 0)])
    project.transform()
    assert project.tables.version("per_user") != first

    old = lineage(project.metadata, "per_user", first)
    assert old.version == first
    assert _covered(_log_ranges(old)) == first_head
    assert max(upto for _, _, upto in _log_ranges(old)) == first_head, \
        "an older version's lineage stops at the offsets it read"
    with pytest.raises(InputError, match="no recorded version"):
        lineage(project.metadata, "per_user", 999)


def test_lineage_records_table_inputs_and_offsets(project: Project) -> None:
    write_chain(project.root)
    ingest_ok(project, [event(1, "ann", 0), event(2, "bob", 10)])
    project.transform()
    views_read_first = inputs_of(project, "latest")["views"]["upto"]
    ingest_ok(project, [event(3, "ann", 5)])
    project.transform()
    head = log_head(project)
    versions = {name: project.tables.version(name) for name in ("views", "latest")}

    recorded = inputs_of(project, "user_stats")
    assert recorded == {
        "views": {"kind": "table", "target": "views", "after": -1, "upto": versions["views"]},
        "latest": {"kind": "table", "target": "latest", "after": -1,
                   "upto": versions["latest"]}}
    latest = inputs_of(project, "latest")["views"]
    assert latest == {"kind": "table", "target": "views", "after": views_read_first,
                      "upto": versions["views"]}, "an incremental run reads table versions " \
        "after the one it read last"
    node = project.lineage("user_stats")
    assert {n.name for n in _walk(node) if n.kind == "log"} == {LOG}
    assert _covered(_log_ranges(node)) == head


def test_lineage_of_an_unbuilt_table_is_an_error(project: Project) -> None:
    with pytest.raises(InputError, match="no recorded versions"):
        project.lineage("nothing_here")


# Code hashes -----------------------------------------------------------------------------
def test_code_hash_is_recorded_and_changes_with_the_sql(project: Project) -> None:
    _write_two_levels(project)
    ingest_ok(project, [event(1, "ann", 0)])
    project.transform()
    path = project.root / "transforms" / "per_user.sql"
    first = project.lineage("per_user").code_hash
    assert first == parse_sql(path).code_hash
    assert project.metadata.table_versions("per_user")[-1].code_hash == first

    project.replay()
    assert project.lineage("per_user").code_hash == first, "same code, same hash"

    sql_transform(project.root, "per_user", "select user_id, count(*) as views from views "
                  "group by user_id", inputs="views")
    project.transform()
    changed = project.lineage("per_user").code_hash
    assert changed != first
    assert changed == parse_sql(path).code_hash
    assert _only(project.lineage("per_user").inputs, "table", "views").code_hash == \
        parse_sql(project.root / "transforms" / "views.sql").code_hash, \
        "an input table's node carries its own code hash"
    hashes = [r.code_hash for r in project.metadata.table_versions("per_user")]
    assert hashes == [first, first, changed], "each version keeps the hash it was built with"


def test_code_hash_of_a_python_transform_changes_with_its_source(project: Project) -> None:
    write_chain(project.root)
    ingest_ok(project, [event(1, "ann", 0)])
    project.transform()
    first = project.lineage("latest").code_hash
    (definition,) = [t for t in load_transforms(project.root / "transforms")
                     if t.name == "latest"]
    assert definition.code_hash == first

    path = project.root / "transforms" / "latest.py"
    path.write_text(path.read_text().replace('"url_length"', '"length_of_url"'))
    project.transform()
    assert project.lineage("latest").code_hash != first
    assert project.metadata.table_versions("latest")[-1].mode == "full", \
        "changed code rebuilds an incremental table from the start"


def test_code_hash_covers_what_a_python_transform_calls(project: Project) -> None:
    """A helper or constant beside the function is part of its logic: changing it must
    change the code hash, or the table is left stale (skipped as up to date)."""
    source = '''
        import pyarrow as pa
        import pyarrow.compute as pc
        from flywheel.transforms import transform

        SUFFIX = "{suffix}"


        def tag(values: pa.ChunkedArray) -> pa.ChunkedArray:
            return pc.binary_join_element_wise(values, pa.scalar(SUFFIX), "")


        @transform(inputs=["com.example/page_view"])
        def tagged(page_view: pa.Table) -> pa.Table:
            return pa.table({{"user_id": tag(page_view["user_id"])}})
        '''
    py_transform(project.root, "tagged.py", source.format(suffix="-a"))
    ingest_ok(project, [event(1, "ann", 0)])
    project.transform()
    first = project.lineage("tagged").code_hash
    assert rows(project, "tagged") == [{"user_id": "ann-a"}]

    py_transform(project.root, "tagged.py", source.format(suffix="-b"))
    (run,) = project.transform()
    assert (run.mode, project.lineage("tagged").code_hash != first) == ("full", True), (
        "BUG: the code hash of a Python transform covers only the decorated function's own "
        "source (definitions.transform: inspect.getsource(function)); a changed module "
        "constant or helper leaves the hash as it was, so the table is skipped as up to date")
    assert rows(project, "tagged") == [{"user_id": "ann-b"}]
