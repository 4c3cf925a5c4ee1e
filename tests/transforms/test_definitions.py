"""Transform definitions: the SQL header, `@transform`, and DAG errors refused at apply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from flywheel.project import Project
from flywheel.transforms import transform
from flywheel.transforms.dag import load_transforms
from flywheel.transforms.definitions import (
    INCREMENTAL,
    TABLE,
    InputRef,
    collect_decorated,
    parse_sql,
)
from flywheel.transforms.errors import TransformDefinitionError
from tests.helpers import object_schema, write_schema
from tests.transforms.support import LOG, event, ingest_ok, py_transform, rows, sql_transform


@pytest.fixture(autouse=True)
def _no_leftover_registrations() -> Iterator[None]:
    collect_decorated()
    yield
    collect_decorated()


# SQL headers -----------------------------------------------------------------------------
def test_header_settings_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "carts_by_user.sql"
    path.write_text(
        "-- inputs: carts=com.acme/add_to_cart, users, iglu:com.acme/page/jsonschema/2-0-0,"
        " v=com.acme/visit/v3\n"
        "-- materialized: incremental\n"
        "-- unique_key: user_id, day\n"
        "-- latest_by: event_time\n"
        "-- expect: not_null(user_id)\n"
        "-- expect: accepted_values(currency, EUR, USD)\n"
        "-- description: carts per user and day\n"
        "\n"
        "select * from carts join users using (user_id);\n")
    t = parse_sql(path)
    assert t.name == "carts_by_user"
    assert t.inputs == (InputRef("carts", "com.acme/add_to_cart"), InputRef("users", "users"),
                        InputRef("page", "iglu:com.acme/page/jsonschema/2-0-0"),
                        InputRef("v", "com.acme/visit/v3"))
    assert [i.is_log for i in t.inputs] == [True, False, True, True]
    assert t.materialized == INCREMENTAL and t.is_incremental
    assert t.unique_key == ("user_id", "day")
    assert t.latest_by == "event_time"
    assert t.expectations == ("not_null(user_id)", "accepted_values(currency, EUR, USD)")
    assert t.sql == "select * from carts join users using (user_id)", "header kept in the SQL"


def test_header_defaults_and_default_aliases(tmp_path: Path) -> None:
    path = tmp_path / "visits.sql"
    path.write_text("-- inputs: com.example/page_view/v1\nselect user_id from page_view\n")
    t = parse_sql(path)
    assert t.inputs == (InputRef("page_view", "com.example/page_view/v1"),)
    assert (t.materialized, t.unique_key, t.latest_by, t.expectations) == (TABLE, (), None, ())
    assert not t.is_incremental


def test_header_stops_at_the_first_sql_line(tmp_path: Path) -> None:
    path = tmp_path / "t.sql"
    path.write_text("-- inputs: com.example/page_view\n"
                    "-- a note that is not a setting\n"
                    "select user_id\n"
                    "-- materialized: incremental\n"
                    "from page_view\n")
    t = parse_sql(path)
    assert t.materialized == TABLE, "a settings-like comment inside the SQL is not a setting"
    assert "-- materialized: incremental" in (t.sql or "")
    assert "not a setting" in (t.sql or "")


def test_header_name_overrides_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "file_name.sql"
    path.write_text("-- name: table_name\n-- inputs: com.example/page_view\nselect 1 as x\n")
    assert parse_sql(path).name == "table_name"


def test_code_hash_follows_sql_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "t.sql"
    path.write_text("-- inputs: com.example/page_view\nselect user_id from page_view\n")
    first = parse_sql(path).code_hash
    assert parse_sql(path).code_hash == first, "the same file hashes the same"
    path.write_text("-- inputs: com.example/page_view\nselect url from page_view\n")
    assert parse_sql(path).code_hash != first
    path.write_text("-- inputs: com.example/page_view\n-- expect: not_null(user_id)\n"
                    "select user_id from page_view\n")
    assert parse_sql(path).code_hash != first, "an expectation is part of the definition"


@pytest.mark.parametrize(("header", "message"), [
    ("-- inputs: 1bad=com.example/page_view", "not a SQL identifier"),
    ("-- inputs: a=com.example/page_view, a=com.example/other", "share an alias"),
    ("-- inputs: com.example/page_view, page_view", "share an alias"),
    ("-- inputs: com.example/page_view\n-- materialized: view", "materialized must be"),
    ("-- inputs: com.example/page_view\n-- latest_by: event_time", "latest_by needs"),
    ("-- description: no inputs", "at least one input"),
])
def test_malformed_headers_are_refused(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "t.sql"
    path.write_text(header + "\nselect 1 as x\n")
    with pytest.raises(TransformDefinitionError, match=message):
        parse_sql(path)


def test_a_header_without_sql_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.sql"
    path.write_text("-- inputs: com.example/page_view\n;\n")
    with pytest.raises(TransformDefinitionError, match="no SQL"):
        parse_sql(path)


def test_a_bad_table_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Bad-Name.sql"
    path.write_text("-- inputs: com.example/page_view\nselect 1 as x\n")
    with pytest.raises(TransformDefinitionError, match="not a valid table name"):
        parse_sql(path)


# Python transforms -----------------------------------------------------------------------
def test_decorator_registers_a_definition_and_keeps_the_function() -> None:
    @transform(inputs={"views": "com.example/page_view"}, materialized="incremental",
               unique_key=["user_id"], latest_by="event_time", expect=["not_null(user_id)"])
    def latest_views(views: pa.Table) -> pa.Table:
        return views.select(["user_id"])

    @transform(inputs=["com.example/page_view", "latest_views"], name="renamed")
    def something(page_view: pa.Table, latest_views: pa.Table) -> pa.Table:
        return page_view

    found = {t.name: t for t in collect_decorated()}
    assert set(found) == {"latest_views", "renamed"}
    t = found["latest_views"]
    assert t.inputs == (InputRef("views", "com.example/page_view"),)
    assert (t.materialized, t.unique_key, t.latest_by) == (INCREMENTAL, ("user_id",),
                                                           "event_time")
    assert t.expectations == ("not_null(user_id)",)
    assert t.function is latest_views and t.sql is None
    assert "views.select" in t.code, "the code hash is taken over the function's source"
    assert found["renamed"].inputs == (InputRef("page_view", "com.example/page_view"),
                                       InputRef("latest_views", "latest_views"))
    table = pa.table({"user_id": ["u1"], "url": ["/"]})
    assert latest_views(table).column_names == ["user_id"], "the function stays callable"
    assert collect_decorated() == [], "collecting takes the registrations"


def test_decorator_refuses_a_bad_definition() -> None:
    with pytest.raises(TransformDefinitionError, match="latest_by needs a unique_key"):
        @transform(inputs=["com.example/page_view"], latest_by="event_time")
        def bad(page_view: pa.Table) -> pa.Table:
            return page_view
    assert collect_decorated() == []


def test_load_transforms_finds_sql_and_python(project: Project) -> None:
    root = project.root
    sql_transform(root, "views", "select user_id, url from page_view", inputs=LOG)
    py_transform(root, "more.py", """
        import pyarrow as pa
        from flywheel.transforms import transform

        @transform(inputs=["views"])
        def user_ids(views: pa.Table) -> pa.Table:
            return views.select(["user_id"])
        """)
    py_transform(root, "_helpers.py", "raise RuntimeError('modules starting with _ are "
                                      "not imported')\n")
    found = {t.name: t for t in load_transforms(root / "transforms")}
    assert set(found) == {"views", "user_ids"}
    assert found["user_ids"].function is not None
    report = project.apply()
    assert report.transforms == ["views", "user_ids"], "apply lists transforms in run order"


def test_python_transforms_take_polars_when_annotated(project: Project) -> None:
    py_transform(project.root, "shout.py", """
        from __future__ import annotations

        import polars as pl
        from flywheel.transforms import transform

        @transform(inputs=["com.example/page_view"])
        def shout(page_view: pl.DataFrame) -> pl.DataFrame:
            assert isinstance(page_view, pl.DataFrame)
            return page_view.select(pl.col("user_id").str.to_uppercase().alias("user"))
        """)
    project.apply()
    ingest_ok(project, [event(1, "ann", 0), event(2, "bob", 1)])
    project.transform()
    assert rows(project, "shout") == [{"user": "ANN"}, {"user": "BOB"}]


def test_log_inputs_unify_minor_versions(project: Project) -> None:
    """A log table is every minor version of a major: old rows get nulls for new columns."""
    write_schema(project.root, "iglu:com.example/page_view/jsonschema/1-1-0", object_schema(
        {"user_id": {"type": "string"}, "url": {"type": "string"},
         "referrer": {"type": ["string", "null"]}, "campaign": {"type": "string"}},
        ["user_id", "url"]))
    sql_transform(project.root, "campaigns", "select user_id, campaign from page_view",
                  inputs=LOG)
    project.apply()
    old = event(1, "ann", 0)
    new = {**event(2, "bob", 1), "schema": "iglu:com.example/page_view/jsonschema/1-1-0"}
    new["data"] = {**new["data"], "campaign": "spring"}
    ingest_ok(project, [old, new])
    project.transform()
    assert rows(project, "campaigns", order_by=["user_id"]) == [
        {"user_id": "ann", "campaign": None}, {"user_id": "bob", "campaign": "spring"}]


# DAG errors at apply ---------------------------------------------------------------------
def test_apply_refuses_a_cycle(project: Project) -> None:
    root = project.root
    sql_transform(root, "a", "select * from c", inputs="c")
    sql_transform(root, "b", "select * from a", inputs="a")
    sql_transform(root, "c", "select * from b, page_view", inputs=f"b, {LOG}")
    with pytest.raises(TransformDefinitionError, match="cycle") as caught:
        project.apply()
    for name in ("a", "b", "c"):
        assert name in str(caught.value), f"the cycle message names {name}"


def test_apply_refuses_a_transform_reading_itself(project: Project) -> None:
    sql_transform(project.root, "selfish", "select * from selfish", inputs="selfish")
    with pytest.raises(TransformDefinitionError, match="cycle"):
        project.apply()


def test_apply_refuses_a_missing_derived_input(project: Project) -> None:
    sql_transform(project.root, "t", "select * from nowhere", inputs="nowhere")
    with pytest.raises(TransformDefinitionError,
                       match="'nowhere' is neither a log table nor a transform"):
        project.apply()


@pytest.mark.parametrize("target", ["com.example/no_such_event",
                                    "com.example/page_view/v2",
                                    "iglu:com.example/missing/jsonschema/1-0-0"])
def test_apply_refuses_a_missing_log_input(project: Project, target: str) -> None:
    sql_transform(project.root, "t", "select 1 as x from x", inputs=f"x={target}")
    with pytest.raises(TransformDefinitionError, match=f"'{target}' is not a log table"):
        project.apply()


def test_apply_refuses_an_incremental_transform_over_a_keyed_table(project: Project) -> None:
    root = project.root
    sql_transform(root, "latest", "select user_id, url, event_time from page_view",
                  inputs=LOG, unique_key="user_id", latest_by="event_time")
    sql_transform(root, "follow", "select user_id from latest", inputs="latest",
                  materialized="incremental")
    with pytest.raises(TransformDefinitionError, match="incremental transform cannot read "
                                                       "'latest'"):
        project.apply()
    # As a `table` it may read it.
    sql_transform(root, "follow", "select user_id from latest", inputs="latest")
    assert project.apply().transforms == ["latest", "follow"]


def test_apply_refuses_duplicate_names(project: Project) -> None:
    root = project.root
    sql_transform(root, "views", "select user_id from page_view", inputs=LOG)
    py_transform(root, "dupe.py", """
        import pyarrow as pa
        from flywheel.transforms import transform

        @transform(inputs=["com.example/page_view"])
        def views(page_view: pa.Table) -> pa.Table:
            return page_view
        """)
    with pytest.raises(TransformDefinitionError, match="two transforms are named 'views'"):
        project.apply()


def test_apply_refuses_duplicate_sql_names_in_subfolders(project: Project) -> None:
    root = project.root
    sql_transform(root, "views", "select user_id from page_view", inputs=LOG)
    (root / "transforms" / "more").mkdir()
    (root / "transforms" / "more" / "other.sql").write_text(
        f"-- name: views\n-- inputs: {LOG}\nselect url from page_view\n")
    with pytest.raises(TransformDefinitionError, match="'views'"):
        project.apply()


def test_apply_reports_a_python_file_that_fails_to_import(project: Project) -> None:
    py_transform(project.root, "broken.py", "import no_such_module_anywhere\n")
    with pytest.raises(TransformDefinitionError, match=r"broken\.py: importing it failed"):
        project.apply()


def test_apply_orders_transforms_as_a_dag(project: Project) -> None:
    root = project.root
    sql_transform(root, "a_last", "select * from b_mid", inputs="b_mid")
    sql_transform(root, "b_mid", "select * from c_first", inputs="c_first")
    sql_transform(root, "c_first", "select user_id from page_view", inputs=LOG)
    assert project.apply().transforms == ["c_first", "b_mid", "a_last"]


def test_apply_refuses_an_unreadable_expectation(project: Project) -> None:
    """A typo in `expect:` is a definition error: it should be refused at apply, not found
    only after a build has computed its candidate."""
    sql_transform(project.root, "t", "select user_id from page_view", inputs=LOG,
                  expect="not_nul(user_id)")
    with pytest.raises(TransformDefinitionError, match="not_nul"):
        project.apply()
        pytest.fail("BUG: apply accepted `expect: not_nul(user_id)`; expectations are only "
                    "parsed when a build reaches its quality gate (runner._gate)")


def test_transform_refuses_an_unknown_table_name(project: Project) -> None:
    sql_transform(project.root, "views", "select user_id from page_view", inputs=LOG)
    with pytest.raises(TransformDefinitionError, match="no transform named 'viewz'"):
        project.transform(["viewz"])


def test_apply_refuses_an_incremental_transform_over_two_growing_inputs(
        project: Project) -> None:
    root = project.root
    sql_transform(root, "views", "select * from page_view", inputs=LOG,
                  materialized="incremental")
    sql_transform(root, "pairs", "select * from views, page_view",
                  inputs=f"views, {LOG}", materialized="incremental")
    with pytest.raises(TransformDefinitionError, match="not of several"):
        project.apply()
    sql_transform(root, "pairs", "select * from views, page_view", inputs=f"views, {LOG}")
    assert "pairs" in project.apply().transforms  # as a table it is fine
