"""monitors.yaml: the grammar, and one line for each thing it can get wrong."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.spec import (
    ProjectNames,
    check_targets,
    load_monitors,
    parse_monitors,
)

FULL = """
defaults: {schedule: 10m}
monitors:
  purchase_drift:
    kind: drift
    target: {deployment: purchase}
    window: 1d
    columns: [price, channel]
    tests: {price: {statistic: psi, threshold: 0.2}}
    share: 0.5
    min_rows: 100
    actions: [ops, retrain_purchase]
  sessions_quality:
    kind: quality
    target: {table: sessions}
    timestamp: event_time
    window: 1h
    rules:
      - {column: user_id, not_null: true}
      - {column: revenue, range: [0, 10000]}
      - {column: channel, accepted: [web, app]}
      - {freshness: 2h}
      - {volume: {min_ratio: 0.5, max_ratio: 2.0, baseline: 7}}
      - {schema: unchanged}
    actions: [note]
  purchase_live:
    kind: performance
    target: {deployment: purchase}
    label_delay: 30m
    window: 1h
    metrics: {auc: {min: 0.7}, log_loss: {max: 0.6}}
    estimate: true
    schedule: 1h
actions:
  ops: {webhook: "http://127.0.0.1:9000/hook"}
  note: {log: warning}
retraining:
  retrain_purchase:
    pipeline: pipelines/train.yaml
    model: purchase
    evaluation: {table: training_labels, label: label}
    holdout: 7d
"""
NAMES = ProjectNames(
    tables={"sessions": ["user_id", "revenue", "channel", "event_time"]},
    views={"activity": ["pages"]},
    deployments={"purchase": ["price", "channel", "probability"]})


def parsed(text: str = FULL) -> Any:
    return parse_monitors(yaml.safe_load(text))


def test_the_contract_grammar_parses() -> None:
    file = parsed()
    drift = file.monitors["purchase_drift"]
    assert (drift.kind, drift.target.kind, drift.target.name) == ("drift", "deployment",
                                                                  "purchase")
    assert drift.reference == "champion" and drift.columns == ("price", "channel")
    assert drift.tests["price"].statistic == "psi" and drift.min_rows == 100
    assert drift.schedule == dt.timedelta(minutes=10)  # from defaults
    quality = file.monitors["sessions_quality"]
    assert [r.kind for r in quality.rules] == ["null_share", "range", "accepted",
                                              "freshness", "volume", "schema"]
    assert quality.rules[1].high == 10000 and quality.rules[4].baseline == 7
    live = file.monitors["purchase_live"]
    assert live.task == "classification" and live.estimate
    assert live.label_delay == dt.timedelta(minutes=30)
    assert live.metrics["auc"].broken_by(0.69) and not live.metrics["auc"].broken_by(0.7)
    assert live.schedule == dt.timedelta(hours=1)  # its own beats the default
    assert live.table == "monitor_purchase_live"
    check_targets(file, NAMES)


def replaced(old: str, new: str) -> str:
    assert old in FULL
    return FULL.replace(old, new, 1)


@pytest.mark.parametrize(("text", "says"), [
    (replaced("share: 0.5", "shares: 0.5"), "unknown key 'shares'"),
    (replaced("kind: drift", "kind: drifty"), "unknown kind 'drifty'"),
    (replaced("window: 1d", "window: soon"), "window"),
    (replaced("threshold: 0.2", "threshold: -1"), "threshold"),
    (replaced("statistic: psi", "statistic: magic"), "unknown statistic"),
    (replaced("{min: 0.7}", "{min: high}"), "metrics auc: min"),
    (replaced("auc: {min: 0.7}", "rmse: {max: 1}"), "mix classification and regression"),
    (replaced("target: {table: sessions}", "target: {view: sessions}"), "unknown target"),
    (replaced("{freshness: 2h}", "{freshness: 2h, column: x}"), "whole table"),
    (replaced("range: [0, 10000]", "range: [10, 0]"), "low is above high"),
    (replaced("not_null: true", "not_null: false"), "not_null must be true"),
    (replaced("min_rows: 100", "min_rows: 0"), "min_rows"),
])
def test_a_bad_declaration_is_one_line_naming_the_monitor(text: str, says: str) -> None:
    with pytest.raises(MonitorSpecError) as caught:
        parsed(text)
    message = str(caught.value)
    assert says in message and "\n" not in message and "monitors.yaml" in message


@pytest.mark.parametrize(("text", "says"), [
    (replaced("actions: [note]", "actions: [nobody]"), "'nobody' is neither an action"),
    (replaced("{table: sessions}", "{table: visits}"), "no table 'visits'"),
    (replaced("{deployment: purchase}", "{deployment: ranking}"), "no deployment 'ranking'"),
    (replaced("column: channel,", "column: chanel,"), "has no column 'chanel'"),
    (replaced("columns: [price, channel]", "columns: [cost]"), "has no column 'cost'"),
])
def test_names_are_checked_against_the_project(text: str, says: str) -> None:
    with pytest.raises(MonitorSpecError, match=says):
        check_targets(parsed(text), NAMES)


def test_a_table_not_built_yet_is_not_checked_for_columns() -> None:
    unbuilt = ProjectNames(tables={"sessions": None}, views={}, deployments={"purchase": None})
    check_targets(parsed(), unbuilt)


def test_monitors_py_declares_the_same_as_python(tmp_path: Path) -> None:
    document = yaml.safe_load(FULL)
    (tmp_path / "monitors.py").write_text(
        f"MONITORS = {document['monitors']!r}\nACTIONS = {document['actions']!r}\n"
        f"RETRAINING = {document['retraining']!r}\nDEFAULTS = {document['defaults']!r}\n")
    from_python = load_monitors(tmp_path)
    assert from_python.monitors.keys() == parsed().monitors.keys()
    for name, spec in parsed().monitors.items():
        assert from_python.monitors[name] == dataclasses.replace(spec, source="monitors.py")
    assert from_python.actions == parsed().actions


def test_no_file_means_no_monitors(tmp_path: Path) -> None:
    assert load_monitors(tmp_path).monitors == {}


def test_broken_yaml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "monitors.yaml").write_text("monitors: {a: [\n")
    with pytest.raises(MonitorSpecError, match="not valid YAML"):
        load_monitors(tmp_path)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(
                        ["kind", "target", "rules", "window", "metrics", "table", "drift",
                         "quality", "performance", "column", "range", "x"]), inner,
                        max_size=4), max_leaves=12))
def test_any_document_parses_or_fails_with_one_line(body: Any) -> None:
    try:
        parse_monitors({"monitors": {"m": body}})
    except MonitorSpecError as exc:
        assert "\n" not in str(exc)
