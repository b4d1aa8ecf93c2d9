"""The answer rendered while it streams: formatted as it arrives, exactly what the
finished answer shows, as safe as it, and in linear time."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generation import rendering
from generation.rendering import MarkdownStream, render_markdown
from tests.generation.test_rendering import elements

# Markdown-ish text: the characters that make structure, words, Japanese, emoji.
PIECES = [
    "\n",
    "\n\n",
    " ",
    "  ",
    "    ",
    "\t",
    "\r\n",
    "\r",
    "# ",
    "## ",
    "#",
    "- ",
    "-",
    "* ",
    "*",
    "**",
    "_",
    "~~",
    "+ ",
    "1. ",
    "2) ",
    "1",
    ".",
    ",",
    ")",
    "(",
    "> ",
    ">",
    "`",
    "```",
    "~~~",
    "|",
    "| a | b |",
    "|---|---|",
    "---",
    "===",
    "[",
    "]",
    "[link](https://example.com/a)",
    "<",
    "&",
    "&amp;",
    "&#123;",
    "\\",
    "!",
    ":",
    ";",
    "<script>alert(1)</script>",
    "javascript:alert(1)",
    "Hello",
    "world",
    "word",
    "x",
    "9",
    "いつもお世話になっております",
    "。",
    "、",
    "😀",
    "\u3000",
    "\xa0",
    "\ue000",
]

markdownish = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=40).map(
    "".join
)


@st.composite
def chunked(draw, texts=markdownish):
    """A text and a way of cutting it into the deltas a model might send."""
    text = draw(texts)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=len(text))))
    bounds = [0, *[cut for cut in cuts if cut < len(text)], len(text)]
    return text, [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


class Page:
    """What the browser shows: committed blocks appended, the tail replaced."""

    def __init__(self) -> None:
        self.committed = ""
        self.tail = ""

    def apply(self, update) -> None:
        if update is not None:
            self.committed += update.committed
            self.tail = update.tail

    @property
    def html(self) -> str:
        return self.committed + self.tail


def stream(chunks: list[str]) -> Page:
    markdown, page = MarkdownStream(), Page()
    for chunk in chunks:
        markdown.feed(chunk)
        page.apply(markdown.update())
    page.apply(markdown.update(final=True))
    return page


def has_reference_definition(text: str) -> bool:
    return "]:" in text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked())
@example(("para\n#hashtag", ["para\n#", "hashtag"]))
@example(("para\n| a |\n|-x\n", ["para\n| a |\n|-", "x\n"]))
@example(("1. a\n\n2. b", ["1. a\n\n2", ". b"]))
@example(("*a.*, b", ["*a.*", ", b"]))
@example(("Hello\r\nworld", ["Hello\r", "\nworld"]))
@example(("# Title #  more", ["# Title", " #", "  more"]))
def test_what_streams_is_always_what_the_whole_text_renders_to(case):
    """At every step, the blocks shown plus the tail are the text so far rendered
    whole: nothing jumps when the answer is finished."""
    text, chunks = case
    if has_reference_definition(text):
        return  # test_a_late_reference_definition_is_reconciled_by_the_finished_answer
    markdown, page, so_far = MarkdownStream(), Page(), ""
    for chunk in chunks:
        markdown.feed(chunk)
        so_far += chunk
        page.apply(markdown.update())
        assert page.html == render_markdown(so_far), (so_far, chunks)


@settings(max_examples=150, deadline=None)
@given(
    chunked(
        st.lists(
            st.sampled_from(["## Plan\n\n", "- one\n- two\n\n", "Text **b**. ", "| a |\n"])
            | markdownish,
            max_size=8,
        ).map("".join)
    )
)
def test_the_final_state_is_exact_whatever_the_chunks(case):
    text, chunks = case
    if has_reference_definition(text):
        return
    assert stream(chunks).html == render_markdown(text)


def test_headings_lists_bold_tables_and_code_are_formatted_as_they_arrive():
    answer = (
        "## Plan\n\nWe **will** ship.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "```\ncode here\n```\n"
    )
    markdown, page, seen = MarkdownStream(), Page(), []
    for character in answer:
        markdown.feed(character)
        page.apply(markdown.update())
        seen.append(page.html)
    assert any("<h2>Plan</h2>" in html and "<strong>" not in html for html in seen)
    assert any("<strong>will</strong>" in html and "<ul>" not in html for html in seen)
    assert any("<li>two</li>" in html and "<table>" not in html for html in seen)
    assert any("<td>1</td>" in html and "<pre>" not in html for html in seen)
    assert page.html == render_markdown(answer)
    assert "<pre><code>code here\n</code></pre>" in page.html


def test_finished_blocks_are_sent_once_and_the_tail_stays_small():
    paragraphs = [f"Paragraph number {n} has a few words in it." for n in range(50)]
    markdown, committed, tails = MarkdownStream(), [], []
    for paragraph in paragraphs:
        for word in paragraph.split(" "):
            markdown.feed(word + " ")
            if update := markdown.update():
                committed.append(update.committed)
                tails.append(update.tail)
        markdown.feed("\n\n")
    assert "".join(committed).count("<p>Paragraph number 10 ") == 1
    assert max(len(tail) for tail in tails) < 200


def test_an_unclosed_code_block_holds_everything_after_it_until_it_closes():
    chunks = ["Intro\n\n", "```python\n", "# not a heading\n", "- not a list\n", "**x**"]
    markdown, page = MarkdownStream(), Page()
    for chunk in chunks:
        markdown.feed(chunk)
        page.apply(markdown.update())
    assert "<h1>" not in page.html
    assert "<li>" not in page.html
    assert "# not a heading\n- not a list\n**x**" in page.tail
    assert page.html == render_markdown("".join(chunks))


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "<javascript:alert(1)>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "![tracker](https://evil.example/pixel.png)",
        '<a href="https://x" onclick="alert(1)">x</a>',
        '<div hx-get="/x" hx-trigger="load" hx-swap-oob="true">x</div>',
        '<iframe src="https://evil.example"></iframe>',
        "[x]: javascript:alert(1)\n\n[x]",
    ],
)
@pytest.mark.parametrize("size", [1, 3, 1000])
def test_nothing_executable_or_fetching_is_ever_streamed(hostile, size):
    text = f"## Title\n\nSome text {hostile} more\n\n- {hostile}\n\n{hostile}"
    markdown = MarkdownStream()
    for start in range(0, len(text), size):
        markdown.feed(text[start : start + size])
        if update := markdown.update():
            for html in (update.committed, update.tail):
                assert_safe(html)


def assert_safe(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag not in {"script", "img", "iframe", "svg", "div", "style"}
        assert set(attrs) <= {"href", "title", "rel", "start"}, attrs
        # A relative address is harmless (a half-written one often is).
        assert urlsplit(attrs.get("href") or "").scheme in {"", "http", "https", "mailto"}, attrs


@settings(max_examples=200, deadline=None)
@given(chunked(st.text(max_size=60)))
def test_any_unicode_streams_safely_and_exactly(case):
    text, chunks = case
    page = stream(chunks)
    assert_safe(page.html)
    if not has_reference_definition(text):
        assert page.html == render_markdown(text)


def test_a_late_reference_definition_is_reconciled_by_the_finished_answer():
    """The one exception: a definition applies to blocks already final only when
    the whole answer is rendered again (the finished page is)."""
    text = "See [the plan].\n\nMore text.\n\n[the plan]: https://example.com/plan\n"
    page = stream(list(text))
    whole = render_markdown(text)
    assert '<a href="https://example.com/plan"' in whole
    assert "[the plan]" in page.html  # not yet a link while streaming
    assert page.html.replace("[the plan]", "") != whole.replace("[the plan]", "")


def test_a_definition_already_final_applies_to_what_follows():
    text = "[plan]: https://example.com/plan\n\nIntro.\n\nSee [plan] and [plan].\n"
    assert stream(list(text)).html == render_markdown(text)


def test_a_huge_table_streams_in_linear_time(monkeypatch):
    """Re-rendering a growing block on every delta would cost its size squared."""
    parsed = []
    parse = rendering._markdown.parse
    monkeypatch.setattr(
        rendering._markdown,
        "parse",
        lambda src, env=None: parsed.append(len(src)) or parse(src, env),
    )
    rows = "".join(f"| row {n} | value {n} | note |\n" for n in range(1500))
    text = "| a | b | c |\n|---|---|---|\n" + rows
    chunks = [text[i : i + 8] for i in range(0, len(text), 8)]
    page = stream(chunks)
    assert page.html == render_markdown(text)
    assert sum(parsed) < 40 * len(text)  # about 5000 deltas: quadratic would be ~2500x


def test_plain_words_continuing_a_paragraph_need_no_parsing(monkeypatch):
    markdown = MarkdownStream()
    markdown.feed("## Summary\n\nThank you for")
    markdown.update()
    parsed = []
    parse = rendering._markdown.parse
    monkeypatch.setattr(
        rendering._markdown, "parse", lambda src, env=None: parsed.append(src) or parse(src, env)
    )
    page = Page()
    text = "## Summary\n\nThank you for"
    for word in [" taking", " the", " time", " to", " meet", " us", " last", " week"]:
        markdown.feed(word)
        text += word
        page.apply(markdown.update())
    assert parsed == []
    assert page.tail == render_markdown(text).split("\n", 1)[1]
