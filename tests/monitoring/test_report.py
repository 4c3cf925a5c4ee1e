"""The report: red findings and since when, the terminal summary, JSON, and an HTML page
that needs nothing from the network."""

from __future__ import annotations

import datetime as dt
import json
import re

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from flywheel.monitoring.report import MonitorReport
from flywheel.monitoring.results import MonitorResult, Status

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def row(hour: int, status: Status, *, subject: str = "pages", value: float = 0.3,
        kind: str = "drift", estimated: bool = False, detail: str = "") -> MonitorResult:
    return MonitorResult(monitor="m", kind=kind, window_start=T0 + hour * HOUR,
                         window_end=T0 + (hour + 1) * HOUR, subject=subject,
                         statistic="wasserstein" if kind == "drift" else subject, value=value,
                         threshold=0.1, status=status, rows=100, estimated=estimated,
                         detail=detail)


def report(rows: list[MonitorResult]) -> MonitorReport:
    return MonitorReport.from_results({"m": rows}, generated_at=T0 + 24 * HOUR)


def test_a_red_streak_is_found_with_its_start() -> None:
    found = report([row(0, "red"), row(1, "ok"), row(2, "red"), row(3, "red")])
    (finding,) = found.red
    assert finding.since == T0 + 2 * HOUR and finding.windows == 2
    assert finding.by_how_much == "wasserstein 0.3 ≥ 0.1"
    assert found.monitors[0].status == "red"
    assert report([row(0, "red"), row(1, "ok")]).red == ()


@given(st.lists(st.sampled_from(["ok", "red", "unknown"]), min_size=1, max_size=30))
def test_since_is_the_start_of_the_last_red_run(statuses: list[Status]) -> None:
    found = report([row(h, s) for h, s in enumerate(statuses)]).red
    run = 0
    for status in reversed(statuses):
        if status != "red":
            break
        run += 1
    assert len(found) == (1 if run else 0)
    if run:
        assert found[0].since == T0 + (len(statuses) - run) * HOUR


def test_terminal_json_and_html() -> None:
    bins = json.dumps({"bins": ["<script>", "b"], "reference": [0.5, 0.5],
                       "current": [0.9, 0.1]})
    rows = [row(0, "ok", detail=bins), row(1, "red", detail=bins),
            row(0, "ok", kind="performance", subject="auc", value=0.8),
            row(0, "ok", kind="performance", subject="auc", value=0.78, estimated=True)]
    built = report(rows)
    console = Console(record=True, width=120)
    built.render(console)
    text = console.export_text()
    assert "m" in text and "red" in text and "wasserstein 0.3 ≥ 0.1" in text
    document = built.to_json()
    assert document["red"][0]["since"] == (T0 + HOUR).isoformat()
    html = built.to_html()
    assert not re.search(r"""(src|href)=["']?https?:""", html) and "<script" not in html
    assert "&lt;script&gt;" in html
    assert html.count("<svg") == 3  # pages over time, auc over time, pages' bins
    assert "estimated" in html and "realised" in html
    assert built._repr_html_() == html


def test_nothing_evaluated_says_what_to_run() -> None:
    console = Console(record=True, width=120)
    MonitorReport.from_results({"m": []}, generated_at=T0).render(console)
    assert "flywheel monitor run" in console.export_text()
