"""The status page's charts, drawn on the server as SVG: no dependency, no JavaScript library, nothing
from a CDN. Small functions turn numbers into an SVG string; every text they draw is escaped.

The numbers come from one place, the spend ledger's `SpendLedger.series` (this machine's rows: with
replicas, each machine charts its own requests), and the budgets from the keys file through
`BudgetBar`s the endpoint builds (router_plugins/endpoints.py). Every drawn value is also in a
data attribute and a <title> (the tooltip), so a test and a screen reader read what is drawn.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from router_plugins.state.spend import Series

WINDOWS: dict[str, tuple[int, int]] = {"hour": (3600, 60), "day": (86400, 900)}
"""A window's length and its bucket, in seconds: the last hour by minute, the last day by quarter hour."""
Unit = Literal["count", "tokens", "usd", "ms"]

WIDTH, HEIGHT = 620, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 150, 12, 26
"""Margins: the y axis's labels on the left, the legend on the right, the time axis below."""
PALETTE = ("#3867d6", "#20a37a", "#e1852b", "#8854d0", "#d63a5c", "#2d98da", "#a5b1c2", "#6b8e23")
_FAILED, _OK, _SAVING, _LOSS = "#d63a5c", "#3867d6", "#20a37a", "#d63a5c"
_LEGEND_CHARS = 20


def esc(text: object) -> str:
    """Text as SVG and HTML take it, quotes included (it also goes into attributes)."""
    return html.escape(str(text), quote=True)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above `value` (1 for nothing): an axis's top."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


@dataclass(frozen=True)
class Scale:
    """A linear map from a domain [lo, hi] onto [out_lo, out_hi] (a y axis runs the other way: out_lo > out_hi)."""

    lo: float
    hi: float
    out_lo: float
    out_hi: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo
        share = 0.0 if span == 0 else (value - self.lo) / span
        return self.out_lo + share * (self.out_hi - self.out_lo)


def fmt(value: float, unit: Unit) -> str:
    if unit == "usd":
        sign, size = ("-" if value < 0 else ""), abs(value)
        if size == 0:
            return "$0"
        digits = f"{size:,.2f}" if size >= 1 else f"{size:.6f}".rstrip("0").ljust(4, "0")
        return f"{sign}${digits}"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _clock(at: float, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(at, zone).strftime("%H:%M")


def _num(value: float) -> str:
    return f"{value:.1f}"


def _svg(chart: str, label: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{esc(chart)}" role="img" aria-label="{esc(label)}" '
            f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="system-ui, sans-serif" font-size="11">'
            f'<title>{esc(label)}</title>{"".join(body)}</svg>')


def _frame(y: Scale, unit: Unit, starts: Sequence[float], bucket_s: float, zone: ZoneInfo) -> list[str]:
    """Axes: the y axis's ticks (bottom, middle, top of the domain, and 0) and the time of the first,
    middle and last buckets (in the ledger's time zone)."""
    right = WIDTH - _RIGHT
    parts = []
    ticks = sorted({y.lo, (y.lo + y.hi) / 2, y.hi, *((0.0,) if y.lo < 0 < y.hi else ())})
    for tick in ticks:
        at = y(tick)
        parts.append(f'<line x1="{_LEFT}" x2="{right}" y1="{_num(at)}" y2="{_num(at)}" stroke="{"#999" if tick == 0 else "#e4e4e4"}"/>'
                     f'<text x="{_LEFT - 4}" y="{_num(at + 4)}" text-anchor="end" fill="#555">{esc(fmt(tick, unit))}</text>')
    x = _time_scale(starts, bucket_s)
    for i in sorted({0, len(starts) // 2, len(starts) - 1}):
        parts.append(f'<text x="{_num(x(starts[i]))}" y="{HEIGHT - 8}" text-anchor="middle" fill="#555">{esc(_clock(starts[i], zone))}</text>')
    return parts


def _time_scale(starts: Sequence[float], bucket_s: float) -> Scale:
    return Scale(starts[0], starts[-1] + bucket_s, _LEFT, WIDTH - _RIGHT)


def _legend(names: Sequence[str], colors: Sequence[str]) -> list[str]:
    parts = []
    for i, (name, color) in enumerate(zip(names, colors)):
        shown = name if len(name) <= _LEGEND_CHARS else name[:_LEGEND_CHARS - 1] + "…"
        y = _TOP + 4 + i * 16
        parts.append(f'<g class="legend" data-series="{esc(name)}"><title>{esc(name)}</title>'
                     f'<rect x="{WIDTH - _RIGHT + 10}" y="{y}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{WIDTH - _RIGHT + 24}" y="{y + 9}" fill="#333">{esc(shown)}</text></g>')
    return parts


def _empty_note(empty: bool) -> list[str]:
    if not empty:
        return []
    return [f'<text class="empty" x="{(_LEFT + WIDTH - _RIGHT) / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">no requests</text>']


def time_bars(chart: str, label: str, starts: Sequence[float], bucket_s: float, stacks: dict[str, Sequence[float]], unit: Unit,
              zone: ZoneInfo, colors: Sequence[str] | None = None) -> str:
    """Stacked bars, one per bucket (bucket i begins at starts[i]): each named stack's values, positive ones
    stacked up from 0 and negative ones down. Each bucket is a <g data-start data-total> with its <title>;
    each piece a <rect data-series data-value>."""
    names = list(stacks)
    colors = list(colors or PALETTE)
    colors = [colors[i % len(colors)] for i in range(len(names))]
    totals = [sum(stacks[n][i] for n in names) for i in range(len(starts))]
    highest = max([0.0, *(sum(max(stacks[n][i], 0) for n in names) for i in range(len(starts)))])
    lowest = min([0.0, *(sum(min(stacks[n][i], 0) for n in names) for i in range(len(starts)))])
    y = Scale(-nice_ceiling(-lowest) if lowest < 0 else 0.0, nice_ceiling(highest), HEIGHT - _BOTTOM, _TOP)
    x = _time_scale(starts, bucket_s)
    width = max(1.0, (x.out_hi - x.out_lo) / len(starts) - 1)
    body = _frame(y, unit, starts, bucket_s, zone)
    for i, start in enumerate(starts):
        pieces = [f"{n}: {fmt(stacks[n][i], unit)}" for n in names if stacks[n][i]]
        title = f"{_clock(start, zone)}: {fmt(totals[i], unit)}" + (f" ({', '.join(pieces)})" if len(names) > 1 and pieces else "")
        rects = []
        up = down = 0.0
        for name, color in zip(names, colors):
            value = stacks[name][i]
            if not value:
                continue
            base = up if value > 0 else down
            top = base + value
            if value > 0:
                up = top
            else:
                down = top
            y0, y1 = sorted((y(base), y(top)))
            rects.append(f'<rect data-series="{esc(name)}" data-value="{value!r}" x="{_num(x(start))}" y="{_num(y0)}" '
                         f'width="{_num(width)}" height="{_num(max(y1 - y0, 0.5))}" fill="{color}"/>')
        body.append(f'<g class="bucket" data-start="{start!r}" data-total="{totals[i]!r}"><title>{esc(title)}</title>{"".join(rects)}</g>')
    if len(names) > 1:
        body += _legend(names, colors)
    body += _empty_note(not any(totals))
    return _svg(chart, label, body)


def time_lines(chart: str, label: str, starts: Sequence[float], bucket_s: float, lines: dict[str, Sequence[float | None]], unit: Unit,
               zone: ZoneInfo, colors: Sequence[str] | None = None) -> str:
    """A line per name through the buckets' middles, broken where a bucket has no value (None); each value
    a <circle data-start data-series data-value> with its <title>."""
    names = list(lines)
    colors = list(colors or PALETTE)
    colors = [colors[i % len(colors)] for i in range(len(names))]
    values = [v for n in names for v in lines[n] if v is not None]
    y = Scale(0.0, nice_ceiling(max(values, default=0.0)), HEIGHT - _BOTTOM, _TOP)
    x = _time_scale(starts, bucket_s)
    body = _frame(y, unit, starts, bucket_s, zone)
    for name, color in zip(names, colors):
        runs: list[list[str]] = [[]]
        dots = []
        for start, value in zip(starts, lines[name]):
            if value is None:
                runs.append([])
                continue
            cx, cy = _num(x(start + bucket_s / 2)), _num(y(value))
            runs[-1].append(f"{cx},{cy}")
            dots.append(f'<circle data-start="{start!r}" data-series="{esc(name)}" data-value="{value!r}" cx="{cx}" cy="{cy}" r="2.5" '
                        f'fill="{color}"><title>{esc(f"{_clock(start, zone)} {name}: {fmt(value, unit)}")}</title></circle>')
        paths = [f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="1.5"/>' for run in runs if len(run) > 1]
        body.append(f'<g class="line" data-series="{esc(name)}">{"".join(paths)}{"".join(dots)}</g>')
    body += _legend(names, colors)
    body += _empty_note(not values)
    return _svg(chart, label, body)


@dataclass(frozen=True)
class BudgetBar:
    """One key's or team's spend against its budget (budget_usd None: no budget, spend in the window)."""

    label: str
    spent_usd: float
    budget_usd: float | None
    period: str
    """What the spend covers: `day`, `week`, `month` (the budget's current period) or the window."""

    @property
    def used(self) -> float | None:
        return None if self.budget_usd is None else self.spent_usd / self.budget_usd


_ROW = 24


def budget_bars(chart: str, label: str, rows: Sequence[BudgetBar]) -> str:
    """A horizontal bar per key or team: its spend, and its budget as a vertical line on the same dollar
    scale; amber from 80% of the budget, red past it. Each row a <g data-label data-spent data-budget>."""
    label_w, text_w = 150, 240
    height = _TOP + _BOTTOM + _ROW * max(1, len(rows))
    top = nice_ceiling(max([0.0, *(r.spent_usd for r in rows), *(r.budget_usd or 0.0 for r in rows)]))
    x = Scale(0.0, top, label_w, WIDTH - text_w)
    body = [f'<line x1="{label_w}" x2="{label_w}" y1="{_TOP}" y2="{height - _BOTTOM}" stroke="#999"/>',
            f'<text x="{label_w}" y="{height - 8}" fill="#555">$0</text>',
            f'<text x="{WIDTH - text_w}" y="{height - 8}" text-anchor="end" fill="#555">{esc(fmt(top, "usd"))}</text>']
    for i, row in enumerate(rows):
        y = _TOP + i * _ROW
        used = row.used
        color = "#a5b1c2" if used is None else _FAILED if used > 1 else "#e1852b" if used >= 0.8 else "#20a37a"
        name = row.label if len(row.label) <= 26 else row.label[:25] + "…"
        if row.budget_usd is None:
            said = f"{fmt(row.spent_usd, 'usd')} in the last {row.period}, no budget"
        else:
            said = f"{fmt(row.spent_usd, 'usd')} of ${row.budget_usd:g}/{row.period} ({used:.0%})"
        line = ""
        if row.budget_usd is not None:
            bx = _num(x(row.budget_usd))
            line = f'<line class="budget" x1="{bx}" x2="{bx}" y1="{y + 1}" y2="{y + _ROW - 3}" stroke="#222" stroke-width="2"/>'
        budget_attr = "" if row.budget_usd is None else f' data-budget="{row.budget_usd!r}" data-period="{esc(row.period)}"'
        body.append(f'<g class="budget-row" data-label="{esc(row.label)}" data-spent="{row.spent_usd!r}"{budget_attr}>'
                    f'<title>{esc(f"{row.label}: {said}")}</title>'
                    f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" fill="#333">{esc(name)}</text>'
                    f'<rect x="{label_w}" y="{y + 4}" width="{_num(max(x(row.spent_usd) - label_w, 0.5))}" height="{_ROW - 10}" fill="{color}"/>'
                    f'{line}<text x="{WIDTH - text_w + 6}" y="{y + 15}" fill="#333">{esc(said)}</text></g>')
    if not rows:
        body.append(f'<text class="empty" x="{WIDTH / 2}" y="{_TOP + 16}" text-anchor="middle" fill="#888">no spend and no budgets</text>')
    svg = _svg(chart, label, body)
    return svg.replace(f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"', f'height="{height}" viewBox="0 0 {WIDTH} {height}"', 1)


def charts_html(series: Series, window: str, budgets: Sequence[BudgetBar], zone: ZoneInfo) -> str:
    """The status page's charts for a window: an HTML fragment of figures, each one SVG."""
    starts = [b.start for b in series.buckets]
    size = series.bucket_s
    groups = series.groups
    every = "minute" if size == 60 else f"{size // 60:g} minutes"
    figures = [
        ("requests", "Requests", time_bars("requests", f"Requests per {every}", starts, size,
                                           {"answered": [b.requests - b.failures for b in series.buckets],
                                            "failed": [b.failures for b in series.buckets]}, "count", zone, (_OK, _FAILED))),
        ("latency", "Latency, p50 and p95 (answered requests)",
         time_lines("latency", "Latency p50 and p95", starts, size,
                    {"p50": [b.p50_ms for b in series.buckets], "p95": [b.p95_ms for b in series.buckets]}, "ms", zone)),
        ("tokens", "Tokens (input and output) per group",
         time_bars("tokens", "Tokens per group", starts, size,
                   {g: [b.groups[g].tokens if g in b.groups else 0 for b in series.buckets] for g in groups}, "tokens", zone)),
        ("spend", "Spend per group",
         time_bars("spend", "Spend per group, dollars", starts, size,
                   {g: [b.groups[g].cost_usd if g in b.groups else 0.0 for b in series.buckets] for g in groups}, "usd", zone)),
        ("saving", f"What auto saved: {fmt(sum(b.saving_usd for b in series.buckets), 'usd')} in the last {window}",
         time_bars("saving", "auto's saving, dollars", starts, size, {"saving": [b.saving_usd for b in series.buckets]}, "usd", zone,
                   (_SAVING,))),
        ("budgets", "Spend per key and team against its budget", budget_bars("budgets", "Spend against budgets", budgets)),
    ]
    parts = [f'<figure class="chart-figure" data-chart="{name}"><figcaption>{esc(caption)}</figcaption>{svg}</figure>'
             for name, caption, svg in figures]
    return (f'<div class="charts" data-window="{esc(window)}" data-start="{series.start!r}" data-end="{series.end!r}" '
            f'data-bucket-s="{size!r}">{"".join(parts)}</div>')
