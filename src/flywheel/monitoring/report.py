"""The monitoring report: what is red, since when and by how much, in the terminal; and one
self-contained HTML page (inline CSS and SVG, nothing fetched) with the plots — drift and
performance over time, estimated beside realised performance, reference against current
distributions. A report renders in a notebook too (`_repr_html_`)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.monitoring.drift import P_VALUE_STATISTICS
from flywheel.monitoring.results import MonitorResult
from flywheel.monitoring.spec import MonitorSpec
from flywheel.monitoring.svg import bar_chart, line_chart

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["MonitorReport", "MonitorStatus", "RedFinding"]

_CSS = ("body{font:14px system-ui,sans-serif;margin:24px;color:#111}h2{margin-top:32px}"
        "table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;"
        "text-align:left}.red{color:#dc2626;font-weight:600}.ok{color:#16a34a}"
        ".unknown{color:#6b7280}figure{display:inline-block;margin:8px}"
        "figcaption{font-size:12px;color:#374151}.tick{font-size:10px;fill:#6b7280}"
        ".threshold{stroke:#dc2626;stroke-dasharray:4 3}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RedFinding:
    monitor: str
    subject: str
    statistic: str
    member: str | None
    model_version: int | None
    value: float | None
    threshold: float | None
    since: dt.datetime
    """The start of the current run of red windows."""
    windows: int
    """Red windows in that run."""

    @property
    def by_how_much(self) -> str:
        if self.value is None or self.threshold is None:
            return self.statistic
        below = self.statistic in P_VALUE_STATISTICS or self.value < self.threshold
        return f"{self.statistic} {self.value:.4g} {'<' if below else '≥'} {self.threshold:.4g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorStatus:
    name: str
    kind: str
    status: str
    """red, ok, unknown, or `not evaluated`."""
    latest: dt.datetime | None
    windows: int
    rows: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorReport:
    monitors: tuple[MonitorStatus, ...]
    red: tuple[RedFinding, ...]
    results: Mapping[str, Sequence[MonitorResult]] = field(default_factory=dict)
    generated_at: dt.datetime

    @classmethod
    def from_results(cls, results: Mapping[str, Sequence[MonitorResult]], *,
                     specs: Mapping[str, MonitorSpec] | None = None,
                     generated_at: dt.datetime) -> MonitorReport:
        statuses, red = [], []
        for name, rows in results.items():
            kind = specs[name].kind if specs and name in specs else (
                rows[0].kind if rows else "")
            statuses.append(_status(name, kind, rows))
            red += _red_findings(name, rows)
        return cls(monitors=tuple(statuses), red=tuple(red), results=dict(results),
                   generated_at=generated_at)

    # Terminal ----------------------------------------------------------------------
    def render(self, console: Console) -> None:
        from rich.table import Table

        if not self.monitors:
            console.print("no monitors: declare them in monitors.yaml")
            return
        table = Table(title="monitors", title_justify="left")
        for column in ("monitor", "kind", "status", "latest window", "windows", "rows"):
            table.add_column(column)
        for m in self.monitors:
            colour = {"red": "red", "ok": "green"}.get(m.status, "dim")
            table.add_row(m.name, m.kind, f"[{colour}]{m.status}[/{colour}]",
                          f"{m.latest:%Y-%m-%d %H:%M}" if m.latest else "-", str(m.windows),
                          f"{m.rows:,}")
        console.print(table)
        if not any(m.windows for m in self.monitors):
            console.print("nothing evaluated yet: run `flywheel monitor run`")
        elif not self.red:
            console.print("[green]all green[/green]: no monitor is red in its latest window")
        else:
            red = Table(title="red", title_justify="left")
            for column in ("monitor", "subject", "model", "by how much", "since", "windows"):
                red.add_column(column)
            for f in self.red:
                model = f"{f.member} v{f.model_version}" if f.model_version else "-"
                red.add_row(f.monitor, f.subject, model, f"[red]{f.by_how_much}[/red]",
                            f"{f.since:%Y-%m-%d %H:%M}", str(f.windows))
            console.print(red)
        if any(m.status == "unknown" for m in self.monitors):
            console.print("[dim]unknown: the latest window had fewer rows than min_rows, or "
                          "no labels yet[/dim]")

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "monitors": [{"name": m.name, "kind": m.kind, "status": m.status,
                          "latest_window": m.latest.isoformat() if m.latest else None,
                          "windows": m.windows, "rows": m.rows} for m in self.monitors],
            "red": [{"monitor": f.monitor, "subject": f.subject, "statistic": f.statistic,
                     "member": f.member, "model_version": f.model_version, "value": f.value,
                     "threshold": f.threshold, "since": f.since.isoformat(),
                     "windows": f.windows} for f in self.red],
        }

    # HTML --------------------------------------------------------------------------
    def to_html(self) -> str:
        body = [f"<h1>Monitoring report</h1><p>generated {self.generated_at:%Y-%m-%d %H:%M} "
                f"UTC</p>", self._summary_html()]
        for name, rows in self.results.items():
            body.append(f"<h2>{escape(name)}</h2>")
            body += _charts(rows)
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>Flywheel "
                f"monitoring</title><style>{_CSS}</style></head><body>{''.join(body)}"
                "</body></html>")

    def write_html(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(), encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        return self.to_html()

    def _summary_html(self) -> str:
        rows = "".join(
            f"<tr><td>{escape(m.name)}</td><td>{m.kind}</td><td class='{m.status.split()[0]}'>"
            f"{m.status}</td><td>{m.latest:%Y-%m-%d %H:%M}</td></tr>" if m.latest else
            f"<tr><td>{escape(m.name)}</td><td>{m.kind}</td><td>{m.status}</td><td>-</td></tr>"
            for m in self.monitors)
        red = "".join(f"<li class='red'>{escape(f.monitor)}: {escape(f.subject)} "
                      f"{escape(f.by_how_much)} since {f.since:%Y-%m-%d %H:%M}</li>"
                      for f in self.red) or "<li class='ok'>nothing is red</li>"
        return (f"<table><tr><th>monitor</th><th>kind</th><th>status</th><th>latest "
                f"window</th></tr>{rows}</table><ul>{red}</ul>")


def _status(name: str, kind: str, rows: Sequence[MonitorResult]) -> MonitorStatus:
    if not rows:
        return MonitorStatus(name=name, kind=kind, status="not evaluated", latest=None,
                             windows=0, rows=0)
    latest = max(r.window_start for r in rows if not r.estimated) if any(
        not r.estimated for r in rows) else max(r.window_start for r in rows)
    last = [r for r in rows if r.window_start == latest]
    status = "red" if any(r.red for r in last) else (
        "unknown" if all(r.status == "unknown" for r in last) else "ok")
    return MonitorStatus(name=name, kind=kind, status=status, latest=latest,
                         windows=len({r.window_start for r in rows}),
                         rows=max(r.rows for r in last))


def _red_findings(name: str, rows: Sequence[MonitorResult]) -> list[RedFinding]:
    """Per subject, the run of red windows that reaches its latest window."""
    by_subject: dict[tuple[Any, ...], list[MonitorResult]] = defaultdict(list)
    for r in rows:
        by_subject[(r.subject, r.statistic, r.member, r.model_version, r.estimated)].append(r)
    found = []
    for (subject, statistic, member, version, _), series in sorted(
            by_subject.items(), key=lambda item: str(item[0])):
        series.sort(key=lambda r: r.window_start)
        streak = []
        for r in reversed(series):
            if not r.red:
                break
            streak.append(r)
        if streak:
            newest = streak[0]
            found.append(RedFinding(monitor=name, subject=subject, statistic=statistic,
                                    member=member, model_version=version, value=newest.value,
                                    threshold=newest.threshold,
                                    since=streak[-1].window_start, windows=len(streak)))
    return found


def _charts(rows: Sequence[MonitorResult]) -> list[str]:
    """Per subject its values over time (realised and estimated together); per drifted
    column the reference against the current distribution of its latest window."""
    series: dict[str, dict[str, list[tuple[dt.datetime, float | None, bool]]]] = \
        defaultdict(lambda: defaultdict(list))
    thresholds: dict[str, float | None] = {}
    latest: dict[str, MonitorResult] = {}
    for r in sorted(rows, key=lambda r: r.window_start):
        label = ("estimated" if r.estimated else "realised") if r.kind == "performance" \
            else r.statistic
        if r.model_version is not None:
            label += f" ({r.member} v{r.model_version})"
        series[r.subject][label].append((r.window_start, r.value, r.red))
        thresholds[r.subject] = r.threshold
        if r.detail.startswith("{") and "bins" in r.detail:
            latest[r.subject] = r
    charts = [line_chart(dict(values), title=subject, threshold=thresholds[subject])
              for subject, values in series.items()]
    for subject, r in latest.items():
        shares = json.loads(r.detail)
        charts.append(bar_chart([str(b) for b in shares["bins"]], shares["reference"],
                                shares["current"],
                                title=f"{subject}: reference vs {r.window_start:%Y-%m-%d %H:%M}"))
    return charts
