"""Japanese headings break between phrases, never inside a word."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from studio.templatetags.studio_tags import phrases


def test_a_heading_gets_break_chances_only_between_its_phrases():
    html = phrases("テンプレートを選んでいくつかの項目を入力するだけで、下書きができあがります。")
    assert html.split("<wbr>") == [
        "テンプレートを",
        "選んでいくつかの",  # いく/つか stays whole
        "項目を",
        "入力するだけで、",
        "下書きが",
        "できあがります。",
    ]


def test_the_text_is_escaped_and_nothing_else_is_added():
    html = phrases('<script>alert("x")</script>お詫びメール')
    assert "<script>" not in html
    assert (
        html.replace("<wbr>", "") == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;お詫びメール"
    )


@given(st.text())
def test_removing_the_break_chances_gives_back_the_escaped_text(text):
    from django.utils.html import escape

    assert str(phrases(text)).replace("<wbr>", "") == escape(text)


def test_empty_and_missing_text_give_nothing():
    assert phrases("") == ""
    assert phrases(None) == ""
