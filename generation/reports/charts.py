"""Bar charts drawn on the server as inline SVG: no JavaScript and nothing from
a CDN, so they show without scripts and under the site's content security
policy (no inline styles: the look is in studio.css, `.chart`).

Every text that goes into the markup is escaped by `format_html`; labels may be
template titles, which staff type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

# The drawing's own units; the SVG scales to the width of its container.
WIDTH = 960
PLOT_HEIGHT = 140
TOP = 18
AXIS_LABEL_SPACE = 22
LEFT = 8
# Vertical charts label at most this many bars; each bar has its tooltip.
MAX_AXIS_LABELS = 10
# Horizontal charts: one row per item, long labels cut short.
ROW_HEIGHT = 26
LABEL_WIDTH = 260
LABEL_CHARACTERS = 20
VALUE_SPACE = 90


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _shortened(label: str) -> str:
    return label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    series: Sequence[tuple[str, float]],
    *,
    title: str,
    format_value: Callable[[float], str] = _plain,
    horizontal: bool = False,
    empty_text: str | None = None,
) -> SafeString:
    """An SVG bar chart of `series` ((label, value) pairs), each bar scaled to
    the largest value and with its label and value as a tooltip. `title` names
    the chart for screen readers. With nothing above zero to draw, a short
    message instead of a chart of empty bars."""
    values = [_drawable(value) for _label, value in series]
    highest = max(values, default=0.0)
    if highest <= 0:
        return format_html(
            '<p class="chart-empty">{}</p>', empty_text or _("Nothing used in this period.")
        )
    points = [
        (str(label), value, format_value(value))
        for (label, _value), value in zip(series, values, strict=True)
    ]
    top_label, _top, top_shown = max(points, key=lambda point: point[1])
    summary = _("%(title)s. Highest: %(label)s, %(value)s.") % {
        "title": title,
        "label": top_label,
        "value": top_shown,
    }
    if horizontal:
        height, body = _horizontal_bars(points, highest)
    else:
        height, body = _vertical_bars(points, highest, top_shown)
    return format_html(
        '<svg class="chart{}" role="img" aria-label="{}" viewBox="0 0 {} {}"'
        ' preserveAspectRatio="xMinYMin meet"><title>{}</title>{}</svg>',
        " chart-horizontal" if horizontal else "",
        summary,
        WIDTH,
        height,
        title,
        body,
    )


def _drawable(value: float) -> float:
    """A bar's length: nothing below zero, and nothing for a value that is not a number."""
    number = float(value)
    return max(0.0, number) if math.isfinite(number) else 0.0


def _vertical_bars(
    points: list[tuple[str, float, str]], highest: float, highest_shown: str
) -> tuple[int, SafeString]:
    """Bars side by side (a time series): some of the labels under them."""
    slot = (WIDTH - 2 * LEFT) / len(points)
    every = math.ceil(len(points) / MAX_AXIS_LABELS)
    baseline = TOP + PLOT_HEIGHT
    bars = []
    for index, (label, value, shown) in enumerate(points):
        x = LEFT + index * slot
        bar_height = PLOT_HEIGHT * value / highest
        bars.append(
            format_html(
                '<g class="bar"><title>{}: {}</title>'
                '<rect class="bar-hit" x="{}" y="{}" width="{}" height="{}"></rect>'
                '<rect class="bar-fill" x="{}" y="{}" width="{}" height="{}"></rect>{}</g>',
                label,
                shown,
                _number(x),
                TOP,
                _number(slot),
                PLOT_HEIGHT,
                _number(x + slot * 0.15),
                _number(baseline - bar_height),
                _number(slot * 0.7),
                _number(bar_height),
                format_html(
                    '<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>',
                    _number(x + slot / 2),
                    baseline + 16,
                    label,
                )
                if index % every == 0
                else "",
            )
        )
    axes = format_html(
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
        '<text class="axis-label max-label" x="{}" y="{}">{}</text>',
        LEFT,
        baseline,
        WIDTH - LEFT,
        baseline,
        LEFT,
        TOP - 6,
        _("max %(value)s") % {"value": highest_shown},
    )
    # Every piece was built by format_html, its values escaped.
    return baseline + AXIS_LABEL_SPACE, mark_safe(axes + "".join(bars))


def _horizontal_bars(
    points: list[tuple[str, float, str]], highest: float
) -> tuple[int, SafeString]:
    """A row per item (a ranking): its label, its bar, its value."""
    room = WIDTH - LABEL_WIDTH - VALUE_SPACE
    rows = format_html_join(
        "",
        '<g class="bar"><title>{}: {}</title>'
        '<rect class="bar-hit" x="0" y="{}" width="{}" height="{}"></rect>'
        '<text class="bar-label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<rect class="bar-fill" x="{}" y="{}" width="{}" height="{}"></rect>'
        '<text class="bar-value" x="{}" y="{}">{}</text></g>',
        (
            (
                label,
                shown,
                index * ROW_HEIGHT,
                WIDTH,
                ROW_HEIGHT,
                LABEL_WIDTH - 8,
                _number(index * ROW_HEIGHT + ROW_HEIGHT * 0.65),
                _shortened(label),
                LABEL_WIDTH,
                index * ROW_HEIGHT + 4,
                _number(room * value / highest),
                ROW_HEIGHT - 8,
                _number(LABEL_WIDTH + room * value / highest + 6),
                _number(index * ROW_HEIGHT + ROW_HEIGHT * 0.65),
                shown,
            )
            for index, (label, value, shown) in enumerate(points)
        ),
    )
    return len(points) * ROW_HEIGHT, rows
