"""Model output to safe HTML: Markdown with raw HTML off, then sanitised by nh3.

Model output is untrusted. Raw HTML in it is escaped by the parser; whatever
HTML the Markdown produces is cleaned against an allow-list; links may only
be http(s) or mailto and never carry script. No images: an answer cannot make
the browser fetch anything.
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# A line break in an answer is a line break: emails, signatures and Japanese text
# (which has no spaces to join lines with) keep their lines.
_markdown = MarkdownIt(
    "commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True}
)
_markdown.enable(["table", "strikethrough"])

_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}


def render_markdown(text: str) -> SafeString:
    html = _markdown.render(text)
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes={"a": {"href", "title"}, "ol": {"start"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308  (cleaned by nh3 just above)
