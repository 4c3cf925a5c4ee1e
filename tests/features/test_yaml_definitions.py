"""Feature definitions in features.yaml: the same objects and checks as definitions.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel.features.definitions import (
    Entity,
    Feature,
    FeatureDefinitionError,
    FeatureService,
    FeatureView,
    parse_duration,
)
from flywheel.features.loading import load_definitions
from flywheel.project import Project
from tests.features.test_online import visit
from tests.helpers import write_visits_project

YAML = """
entities:
  - {name: user, join_keys: [user_id], description: a shopper}
feature_views:
  - name: visits
    entities: [user]
    source: user_visits
    ttl: 30d
    owner: growth
    tags: {tier: gold}
    features: [pages, {name: seconds, dtype: float}]
feature_services:
  - {name: score, features: ["visits:*"]}
"""


def test_yaml_gives_the_same_definitions_as_python(tmp_path: Path) -> None:
    (tmp_path / "features.yaml").write_text(YAML)
    registry = load_definitions(tmp_path)
    user = Entity(name="user", join_keys=["user_id"], description="a shopper")
    assert registry.entities == {"user": user}
    assert registry.views["visits"] == FeatureView(
        name="visits", entities=[user], source="user_visits", ttl=dt.timedelta(days=30),
        owner="growth", tags={"tier": "gold"},
        features=["pages", Feature(name="seconds", dtype="float")])
    assert registry.services == {"score": FeatureService(name="score", features=["visits:*"])}
    assert registry.views["visits"].feature_names == ("pages", "seconds")


@pytest.mark.parametrize(("text", "message"), [
    ("feature_views: [{name: v, entities: [user], source: t, features: [a], extra: 1}]",
     r"feature_views\.0\.extra: Extra inputs are not permitted"),
    ("feature_views: [{name: v, entities: [nobody], source: t, features: [a]}]",
     "no entity named nobody"),
    ("entities: [{name: user, join_keys: [id]}]\nfeature_views: [{name: v, entities: [user], "
     "source: t, features: [a], ttl: soon}]", "'soon' is not a duration"),
    ("entities: [{name: user, join_keys: [id]}]\nfeature_views: [{name: v, entities: [user], "
     "source: t, features: [{name: a, dtype: complex}]}]", "unknown type 'complex'"),
    ("feature_services: [{name: s, features: ['nope:x']}]", "not a feature reference"),
    ("entities: {", "is not valid YAML"),
    ("- just a list", r"\(top level\)"),
])
def test_mistakes_are_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "features.yaml").write_text(text)
    with pytest.raises(FeatureDefinitionError, match=message) as raised:
        load_definitions(tmp_path)
    assert "\n" not in raised.value.one_line()


def test_a_name_declared_in_both_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "features.yaml").write_text(YAML)
    (tmp_path / "definitions.py").write_text(
        "from flywheel.features import FeatureService\n"
        "score = FeatureService(name='score', features=['visits:pages'])\n")
    with pytest.raises(FeatureDefinitionError, match="feature service 'score' is declared twice"):
        load_definitions(tmp_path)


@given(amount=st.integers(1, 10_000), unit=st.sampled_from(["s", "m", "h", "d", "w"]))
def test_durations_with_units(amount: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{amount}{unit}") == dt.timedelta(seconds=amount * seconds)
    assert parse_duration(amount * seconds) == dt.timedelta(seconds=amount * seconds)


@given(text=st.text(max_size=12) | st.floats(allow_nan=True) | st.booleans())
def test_any_duration_input_parses_or_fails_cleanly(text: str | float) -> None:
    try:
        parsed = parse_duration(text)
    except FeatureDefinitionError:
        return
    assert parsed > dt.timedelta(0)


@pytest.fixture
def yaml_project(project_dir: Path) -> Path:
    write_visits_project(project_dir)
    (project_dir / "features.yaml").write_text(YAML)
    return project_dir


def test_a_yaml_project_serves_training_and_online(yaml_project: Path) -> None:
    with Project.open(yaml_project) as project:
        project.apply()
        project.ingest([visit("a", 3, 2), visit("b", 5, 1)])
        project.transform()
        project.apply()  # now the table exists: the declared types are checked, and fit
        project.features.materialize()
        online = project.features.get_online_features(entities={"user_id": ["a", "b"]},
                                                      feature_service="score")
        now = dt.datetime.now(dt.UTC)
        offline = project.features.get_historical_features(
            pa.table({"user_id": ["a", "b"], "event_timestamp": [now, now]}),
            feature_service="score").to_arrow()
    assert online.columns["pages"] == offline.column("pages").to_pylist() == [3, 5]


def test_a_declared_type_that_does_not_fit_the_table_fails_apply(yaml_project: Path) -> None:
    with Project.open(yaml_project) as project:
        project.apply()
        project.ingest([visit("a", 3, 2)])
        project.transform()
    (yaml_project / "features.yaml").write_text(
        YAML.replace("{name: seconds, dtype: float}", "{name: pages_typed, dtype: int}")
        .replace("[pages,", "[{name: pages, dtype: string},").replace(", {name: pages_typed, "
                                                                      "dtype: int}", ""))
    with Project.open(yaml_project) as project, pytest.raises(
            FeatureDefinitionError, match="pages is declared string, but column pages of "
            "table user_visits is int64"):
        project.apply()


def test_a_feature_view_in_python_takes_the_same_durations_as_yaml() -> None:
    from flywheel.features.definitions import Entity, FeatureDefinitionError, FeatureView

    user = Entity(name="user", join_keys=["user_id"])
    for ttl, expected in (("30d", dt.timedelta(days=30)), ("90s", dt.timedelta(seconds=90)),
                          (3600, dt.timedelta(hours=1)), (dt.timedelta(hours=2),
                                                          dt.timedelta(hours=2))):
        view = FeatureView(name="v", entities=[user], source="t", features=["f"], ttl=ttl)
        assert view.ttl == view.max_age == expected
    with pytest.raises(FeatureDefinitionError, match="not a duration"):
        FeatureView(name="v", entities=[user], source="t", features=["f"], ttl="a month")


@pytest.mark.parametrize(("returned", "says"), [
    ({"ratio": 1.0}, "missing score"),
    ({"ratio": 1.0, "score": 2, "other": 3}, "undeclared other"),
    ([1.0, 2.0], "returned list, not a dict"),
])
def test_an_on_demand_function_must_return_what_it_declares(returned: object,
                                                           says: str) -> None:
    from flywheel.features.definitions import FeatureDefinitionError, on_demand

    @on_demand(sources=["v:a"], features=["ratio", "score"])
    def odv(row: dict[str, Any]) -> Any:
        return returned

    with pytest.raises(FeatureDefinitionError, match=says):
        odv.apply([{"a": 1}])
