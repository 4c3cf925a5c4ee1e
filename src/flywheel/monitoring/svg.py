"""Small inline SVG charts for the monitoring report: no script, no external file, so the
report opens offline and diffs as text (the same input gives the same bytes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["HEIGHT", "PAD", "WIDTH", "Point", "bar_chart", "line_chart"]

WIDTH, HEIGHT, PAD = 560, 180, 36
_COLOURS = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444")

Point = tuple[dt.datetime, "float | None", bool]
"""(time, value, red)."""


def line_chart(series: Mapping[str, Sequence[Point]], *, title: str,
               threshold: float | None = None) -> str:
    """Each series over time; red points marked; a dashed line at the threshold."""
    points = [(t, v) for values in series.values() for t, v, _ in values if v is not None]
    if not points:
        return _frame(title, '<text x="50%" y="50%" text-anchor="middle">no values yet</text>')
    times = [t.timestamp() for t, _ in points]
    values = [v for _, v in points] + ([threshold] if threshold is not None else [])
    t0, t1 = min(times), max(times)
    v0, v1 = min(values), max(values)
    if v1 == v0:
        v0, v1 = v0 - 0.5, v1 + 0.5

    def x(t: dt.datetime) -> float:
        return PAD + (WIDTH - 2 * PAD) * ((t.timestamp() - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - v0) / (v1 - v0)

    parts = [f'<text x="4" y="{y(v1):.1f}" class="tick">{v1:.3g}</text>',
             f'<text x="4" y="{y(v0):.1f}" class="tick">{v0:.3g}</text>',
             f'<text x="{PAD}" y="{HEIGHT - 8}" class="tick">{_when(t0)}</text>',
             f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end" class="tick">'
             f'{_when(t1)}</text>']
    if threshold is not None:
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(threshold):.1f}" '
                     f'y2="{y(threshold):.1f}" class="threshold"/>')
    for (name, line), colour in zip(series.items(), _cycle(len(series)), strict=True):
        kept = [(t, v, red) for t, v, red in line if v is not None]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _ in kept)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                     f'stroke-width="1.5"><title>{escape(name)}</title></polyline>')
        parts += [f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="{3 if red else 2}" '
                  f'fill="{"#dc2626" if red else colour}"><title>{escape(name)} '
                  f'{t:%Y-%m-%d %H:%M}: {v:.4g}</title></circle>' for t, v, red in kept]
    legend = " · ".join(f'<tspan fill="{c}">{escape(n)}</tspan>'
                        for n, c in zip(series, _cycle(len(series)), strict=True))
    parts.append(f'<text x="{WIDTH - PAD}" y="14" text-anchor="end" class="tick">{legend}</text>')
    return _frame(title, "".join(parts))


def bar_chart(bins: Sequence[str], reference: Sequence[float], current: Sequence[float], *,
              title: str) -> str:
    """Reference against current shares, bin by bin."""
    if not bins:
        return _frame(title, '<text x="50%" y="50%" text-anchor="middle">no bins</text>')
    top = max([*reference, *current, 1e-9])
    step = (WIDTH - 2 * PAD) / len(bins)
    parts = []
    for i, label in enumerate(bins):
        for j, (share, colour) in enumerate(((reference[i], "#94a3b8"),
                                             (current[i], "#2563eb"))):
            height = (HEIGHT - 2 * PAD) * share / top
            left = PAD + i * step + j * step * 0.45
            parts.append(f'<rect x="{left:.1f}" y="{HEIGHT - PAD - height:.1f}" '
                         f'width="{step * 0.42:.1f}" height="{height:.1f}" fill="{colour}">'
                         f'<title>{escape(label)}: {"reference" if j == 0 else "current"} '
                         f'{share:.3f}</title></rect>')
        if len(bins) <= 12:
            parts.append(f'<text x="{PAD + (i + 0.45) * step:.1f}" y="{HEIGHT - 20}" '
                         f'text-anchor="middle" class="tick">{escape(label[:10])}</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="14" text-anchor="end" class="tick">'
                 '<tspan fill="#94a3b8">reference</tspan> · '
                 '<tspan fill="#2563eb">current</tspan></text>')
    return _frame(title, "".join(parts))


def _frame(title: str, body: str) -> str:
    return (f'<figure><figcaption>{escape(title)}</figcaption><svg xmlns='
            f'"http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img">{body}</svg></figure>')


def _cycle(count: int) -> list[str]:
    return [_COLOURS[i % len(_COLOURS)] for i in range(count)]


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")
