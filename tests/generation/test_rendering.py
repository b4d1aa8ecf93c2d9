"""Model output is untrusted: Markdown with raw HTML off, sanitised, no script, no fetches."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from generation.rendering import render_markdown


def test_markdown_renders_headings_lists_tables_and_links():
    html = render_markdown(
        "## Plan\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[site](https://example.com)"
    )
    assert "<h2>Plan</h2>" in html
    assert "<li>one</li>" in html
    assert "<table>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">site</a>' in html


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java\nscript:alert(1))",
        "<javascript:alert(1)>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "![tracker](https://evil.example/pixel.png)",
        '<a href="https://x" onclick="alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        '<svg onload="alert(1)">',
        '[x](https://ok.example "t" onmouseover=alert(1))',
    ],
)
def test_nothing_executable_or_fetching_survives(text):
    for tag, attrs in elements(render_markdown(text)):
        assert tag not in {"script", "img", "iframe", "svg", "object", "embed", "style"}
        assert not [name for name in attrs if name.startswith("on")]
        href = (attrs.get("href") or "").strip().lower()
        assert not href or href.startswith(("http://", "https://", "mailto:")), href


def test_raw_html_is_shown_as_text():
    assert "&lt;script&gt;" in render_markdown("<script>alert(1)</script>")


def test_a_line_break_in_an_answer_stays_a_line_break():
    html = render_markdown(
        "件名：お礼\n\n佐藤様\nいつもお世話になっております。\n［会社名］\n［氏名］"
    )
    assert "佐藤様<br>\nいつもお世話になっております。" in html
    assert "［会社名］<br>\n［氏名］" in html
