"""Server-drawn SVG bar charts: accessible, escaped, scaled, and honest about
having nothing to show."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from generation.reports.charts import LABEL_CHARACTERS, PLOT_HEIGHT, bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ElementTree.Element:
    # The chart is inline SVG in HTML; parse it as XML to be sure it is well formed.
    return ElementTree.fromstring(markup.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def test_chart_is_an_accessible_image_with_a_title_and_a_tooltip_per_bar():
    chart = bar_chart([("5/1", 3), ("5/2", 0), ("5/3", 6)], title="Output tokens per day")

    svg = parsed(chart)
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Output tokens per day. Highest: 5/3, 6."
    assert svg.find(f"{SVG}title").text == "Output tokens per day"
    tooltips = [bar.find(f"{SVG}title").text for bar in svg.iter(f"{SVG}g")]
    assert tooltips == ["5/1: 3", "5/2: 0", "5/3: 6"]


def test_chart_escapes_labels_and_title():
    chart = bar_chart(
        [("<script>alert(1)</script>", 5), ('"quoted" & <b>', 2)],
        title="<img src=x onerror=alert(1)>",
    )

    assert "<script>" not in chart
    assert "<img" not in chart
    assert "<b>" not in chart
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in chart
    svg = parsed(chart)  # still well formed
    assert svg.find(f"{SVG}title").text == "<img src=x onerror=alert(1)>"
    tooltips = [bar.find(f"{SVG}title").text for bar in svg.iter(f"{SVG}g")]
    assert tooltips == ["<script>alert(1)</script>: 5", '"quoted" & <b>: 2']


def test_horizontal_chart_escapes_labels_and_shortens_long_ones_keeping_the_full_tooltip():
    title = "<script>x</script> とても長いテンプレートの名前が続きます"
    chart = bar_chart([(title, 4), ("short", 1)], title="Per template", horizontal=True)

    assert "<script>" not in chart
    svg = parsed(chart)
    labels = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "bar-label"]
    assert labels[0].endswith("…")
    assert len(labels[0]) == LABEL_CHARACTERS
    assert labels[1] == "short"
    tooltips = [bar.find(f"{SVG}title").text for bar in svg.iter(f"{SVG}g")]
    assert tooltips[0] == f"{title}: 4"


def _fill_heights(chart: str) -> list[float]:
    return [
        float(match)
        for match in re.findall(
            r'class="bar-fill" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', chart
        )
    ]


def test_bars_are_scaled_to_the_largest_value():
    heights = _fill_heights(bar_chart([("a", 10), ("b", 5), ("c", 0)], title="t"))

    assert heights == [PLOT_HEIGHT, PLOT_HEIGHT / 2, 0]


@pytest.mark.parametrize(
    "series",
    [[], [("5/1", 0), ("5/2", 0)], [("a", 0.0)], [("a", -3)], [("a", float("nan"))]],
)
def test_nothing_to_draw_shows_a_message_instead_of_a_chart(series):
    chart = bar_chart(series, title="Images per day")

    assert "<svg" not in chart
    assert chart == '<p class="chart-empty">Nothing used in this period.</p>'


def test_empty_message_can_be_given_and_is_escaped():
    chart = bar_chart([("a", 0)], title="t", empty_text="No <images> yet")

    assert chart == '<p class="chart-empty">No &lt;images&gt; yet</p>'


def test_negative_and_non_finite_values_draw_as_zero():
    heights = _fill_heights(bar_chart([("a", -5), ("b", 4), ("c", float("inf"))], title="t"))

    assert heights == [0, PLOT_HEIGHT, 0]


def test_values_are_shown_with_the_format_given():
    chart = bar_chart(
        [("5/1", 1234), ("5/2", 20)], title="Cost", format_value=lambda v: f"${v / 100:.2f}"
    )

    assert "5/1: $12.34" in chart
    assert "max $12.34" in chart


def test_a_long_series_labels_some_bars_but_gives_every_bar_a_tooltip():
    series = [(f"d{n}", n) for n in range(1, 91)]
    svg = parsed(bar_chart(series, title="90 days"))

    assert len(list(svg.iter(f"{SVG}g"))) == 90
    axis_labels = [text for text in svg.iter(f"{SVG}text") if text.get("class") == "axis-label"]
    assert 2 <= len(axis_labels) <= 11
