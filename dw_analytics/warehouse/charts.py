"""Server-side charts: small, dependency-free inline SVG for the run-history pages.

Every piece of text that reaches the markup (titles, labels, tooltips, links)
goes through :func:`django.utils.html.escape` (via ``format_html``), so a
pipeline or step name cannot inject markup. The charts need no JavaScript:
each point carries a ``<title>`` child, which browsers show as a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

#: chart canvas (SVG user units); the page scales it to the card's width
WIDTH = 640
HEIGHT = 240
MARGIN_LEFT = 64
MARGIN_RIGHT = 20
MARGIN_TOP = 14
MARGIN_BOTTOM = 46


@dataclass(frozen=True)
class Point:
    """One run on a time-series chart.

    Attributes:
        x: when the run started (aware datetime; shown in the current time zone).
        y: the measured value.
        tooltip: text of the point's ``<title>`` (escaped when rendered).
        href: optional link opened by clicking the point.
        status: CSS modifier of the point, e.g. ``"succeeded"`` or ``"failed"``.
    """

    x: datetime
    y: float
    tooltip: str
    href: str = ""
    status: str = ""


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: a step of a run.

    Attributes:
        label: text left of the bar (escaped when rendered).
        value: bar length in the chart's unit.
        tooltip: text of the bar's ``<title>``.
    """

    label: str
    value: float
    tooltip: str


def nice_ticks(maximum: float, *, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``maximum`` (steps of 1, 2, 2.5 or 5 × 10^k).

    Example:
        >>> nice_ticks(9.3)
        [0.0, 2.5, 5.0, 7.5, 10.0]
        >>> nice_ticks(0)
        [0.0, 1.0]
    """
    if not maximum or maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw_step = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    n_steps = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 10) for i in range(n_steps + 1)]


def compact_number(value: float) -> str:
    """A short axis label: ``950``, ``1.5k``, ``12M``, ``0.25``.

    Example:
        >>> [compact_number(v) for v in (0, 0.25, 950, 1500, 12_000_000)]
        ['0', '0.25', '950', '1.5k', '12M']
    """
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if magnitude >= 1 or value == 0:
        return f"{value:.4g}"
    return f"{value:.2g}"


def time_series_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    y_label: str,
    x_label: str = "Run start",
    y_format: Callable[[float], str] = compact_number,
) -> SafeString:
    """An inline SVG line chart with one marker per point, x scaled by time.

    Args:
        points: the runs, in any order (drawn by time).
        chart_id: the ``id`` of the ``<svg>`` element (tests and CSS find it by it).
        title: accessible name of the chart (``aria-label``).
        y_label: vertical axis label, with its unit, e.g. ``"Duration (s)"``.
        x_label: horizontal axis label.
        y_format: formats the vertical axis tick values.

    Returns:
        Safe markup; an empty-state paragraph when there are no points.

    Example:
        >>> from datetime import datetime, UTC
        >>> svg = time_series_chart(
        ...     [Point(datetime(2026, 1, 1, tzinfo=UTC), 3.0, "run 1")],
        ...     chart_id="c", title="Duration", y_label="Duration (s)",
        ... )
        >>> svg.count('class="point')
        1
    """
    if not points:
        return format_html('<p class="chart-empty" id="{}">No runs to chart yet.</p>', chart_id)
    ordered = sorted(points, key=lambda p: p.x)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    ticks = nice_ticks(max(p.y for p in ordered))
    y_max = ticks[-1]
    t_min = ordered[0].x.timestamp()
    t_span = ordered[-1].x.timestamp() - t_min

    def x_of(moment: datetime) -> float:
        if t_span <= 0:
            return MARGIN_LEFT + plot_w / 2
        return MARGIN_LEFT + (moment.timestamp() - t_min) / t_span * plot_w

    def y_of(value: float) -> float:
        return MARGIN_TOP + plot_h - (value / y_max) * plot_h

    bottom = MARGIN_TOP + plot_h
    grid = format_html_join(
        "",
        '<line class="grid" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/>'
        '<text class="tick tick-y" x="{3}" y="{2}" dy="0.32em" text-anchor="end">{4}</text>',
        ((MARGIN_LEFT, WIDTH - MARGIN_RIGHT, _f(y_of(t)), MARGIN_LEFT - 8, y_format(t)) for t in ticks),
    )
    x_ticks = format_html_join(
        "",
        '<line class="axis-tick" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>'
        '<text class="tick tick-x" x="{0}" y="{3}" text-anchor="{4}">{5}</text>',
        (
            (_f(x_of(moment)), bottom, bottom + 4, bottom + 17, anchor, label)
            for moment, anchor, label in _time_ticks(ordered[0].x, ordered[-1].x)
        ),
    )
    line = ""
    if len(ordered) > 1:
        coordinates = " ".join(f"{_f(x_of(p.x))},{_f(y_of(p.y))}" for p in ordered)
        line = format_html('<polyline class="series" points="{}"/>', coordinates)
    markers = format_html_join("", "{}", ((_marker(p, x_of(p.x), y_of(p.y)),) for p in ordered))
    return format_html(
        '<svg class="chart" id="{id}" viewBox="0 0 {w} {h}" role="img" aria-label="{title}" '
        'xmlns="http://www.w3.org/2000/svg">'
        "{grid}"
        '<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>'
        "{x_ticks}{line}{markers}"
        '<text class="axis-label" transform="translate(14 {y_mid}) rotate(-90)" text-anchor="middle">'
        "{y_label}</text>"
        '<text class="axis-label" x="{x_mid}" y="{x_label_y}" text-anchor="middle">{x_label}</text>'
        "</svg>",
        id=chart_id,
        w=WIDTH,
        h=HEIGHT,
        title=title,
        grid=grid,
        left=MARGIN_LEFT,
        right=WIDTH - MARGIN_RIGHT,
        bottom=bottom,
        x_ticks=x_ticks,
        line=line,
        markers=markers,
        y_mid=_f(MARGIN_TOP + plot_h / 2),
        y_label=y_label,
        x_mid=_f(MARGIN_LEFT + plot_w / 2),
        x_label_y=HEIGHT - 6,
        x_label=x_label,
    )


def bar_chart(
    bars: Sequence[Bar],
    *,
    chart_id: str,
    title: str,
    x_label: str,
    x_format: Callable[[float], str] = compact_number,
) -> SafeString:
    """An inline SVG horizontal bar chart, one bar per item, in the given order.

    Example:
        >>> svg = bar_chart([Bar("extract", 1.5, "extract: 1.5 s")], chart_id="s",
        ...                 title="Steps", x_label="Duration (s)")
        >>> svg.count('class="bar"')
        1
    """
    if not bars:
        return format_html('<p class="chart-empty" id="{}">This run recorded no steps.</p>', chart_id)
    label_w = 150
    row_h = 26
    left = label_w + 8
    plot_w = WIDTH - left - MARGIN_RIGHT - 48
    height = MARGIN_TOP + row_h * len(bars) + 40
    bottom = MARGIN_TOP + row_h * len(bars)
    ticks = nice_ticks(max(b.value for b in bars))
    x_max = ticks[-1]

    def x_of(value: float) -> float:
        return left + max(value, 0.0) / x_max * plot_w

    grid = format_html_join(
        "",
        '<line class="grid" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>'
        '<text class="tick tick-x" x="{0}" y="{3}" text-anchor="middle">{4}</text>',
        ((_f(x_of(t)), MARGIN_TOP, bottom, bottom + 15, x_format(t)) for t in ticks),
    )
    rows = format_html_join(
        "",
        '<g class="bar-row"><title>{tooltip}</title>'
        '<text class="bar-label" x="{label_x}" y="{text_y}" dy="0.32em" text-anchor="end">{label}</text>'
        '<rect class="bar" x="{left}" y="{y}" width="{width}" height="{height}" rx="2"/>'
        '<text class="bar-value" x="{value_x}" y="{text_y}" dy="0.32em">{value}</text></g>',
        (
            {
                "tooltip": bar.tooltip,
                "label_x": label_w,
                "label": _shorten(bar.label, 24),
                "left": left,
                "y": _f(MARGIN_TOP + i * row_h + 4),
                "text_y": _f(MARGIN_TOP + i * row_h + row_h / 2),
                "width": _f(max(x_of(bar.value) - left, 1.0)),
                "height": row_h - 8,
                "value_x": _f(x_of(bar.value) + 6),
                "value": x_format(bar.value),
            }
            for i, bar in enumerate(bars)
        ),
    )
    return format_html(
        '<svg class="chart chart-bars" id="{id}" viewBox="0 0 {w} {h}" role="img" aria-label="{title}" '
        'xmlns="http://www.w3.org/2000/svg">{grid}{rows}'
        '<text class="axis-label" x="{x_mid}" y="{x_label_y}" text-anchor="middle">{x_label}</text></svg>',
        id=chart_id,
        w=WIDTH,
        h=height,
        title=title,
        grid=grid,
        rows=rows,
        x_mid=_f(left + plot_w / 2),
        x_label_y=height - 6,
        x_label=x_label,
    )


def _marker(point: Point, x: float, y: float) -> SafeString:
    status = f" point-{point.status}" if point.status else ""
    circle = format_html(
        '<circle class="point{}" cx="{}" cy="{}" r="4"><title>{}</title></circle>',
        status,
        _f(x),
        _f(y),
        point.tooltip,
    )
    if point.href:
        return format_html('<a href="{}">{}</a>', point.href, circle)
    return circle


def _time_ticks(first: datetime, last: datetime, *, count: int = 4) -> list[tuple[datetime, str, str]]:
    """(moment, text-anchor, label) ticks: local midnights over 3+ days, else evenly spaced times."""
    span = (last - first).total_seconds()
    if span <= 0:
        return [(first, "middle", timezone.localtime(first).strftime("%b %d %H:%M"))]
    if span >= 3 * 86400:
        zone = timezone.get_current_timezone()
        first_day = timezone.localtime(first).date()
        last_day = timezone.localtime(last).date()
        step = max(1, math.ceil((last_day - first_day).days / (count + 1)))
        midnights = (
            datetime.combine(first_day + timedelta(days=d), time(0), tzinfo=zone)
            for d in range(0, (last_day - first_day).days + 1, step)
        )
        return [(m, "middle", m.strftime("%b %d")) for m in midnights if first <= m <= last]
    ticks = []
    for i in range(count + 1):
        moment = first + (last - first) * (i / count)
        anchor = "start" if i == 0 else "end" if i == count else "middle"
        ticks.append((moment, anchor, timezone.localtime(moment).strftime("%b %d %H:%M")))
    return ticks


def _f(value: float) -> str:
    """An SVG coordinate: one decimal is finer than a pixel at any sensible size."""
    return f"{value:.1f}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["Bar", "Point", "bar_chart", "compact_number", "nice_ticks", "time_series_chart"]
