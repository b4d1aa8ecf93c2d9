"""The pages' icons: Lucide's SVGs (static/vendor/lucide, ISC licence, vendored
by scripts/vendor-frontend.sh), inlined so they take the text's colour and cost
no request."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path

import budoux
from django import template
from django.conf import settings
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

ICON_DIR = Path(settings.BASE_DIR) / "static" / "vendor" / "lucide"
_DRAWING = mark_safe(
    'viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" '
    'stroke-linecap="round" stroke-linejoin="round"'
)
_BODY = re.compile(r"<svg[^>]*>(?P<body>.*)</svg>", re.DOTALL)


@cache
def icon_body(name: str) -> str:
    """The drawing inside an icon's <svg> element; a missing icon is an error
    at once (a typo must not ship as an empty square)."""
    text = (ICON_DIR / f"{name}.svg").read_text(encoding="utf-8")
    match = _BODY.search(text)
    if match is None:
        raise ValueError(f"{name}.svg is not an SVG icon")
    return " ".join(match["body"].split())


@register.simple_tag
def icon(name: str, label: str = "", css_class: str = "") -> SafeString:
    """`{% icon "mail" %}` — decorative (hidden from screen readers) unless a
    `label` says what it means."""
    classes = f"icon {css_class}".strip()
    if label:
        opening = format_html(
            '<svg class="{}" role="img" aria-label="{}" {}>', classes, label, _DRAWING
        )
    else:
        opening = format_html(
            '<svg class="{}" aria-hidden="true" focusable="false" {}>', classes, _DRAWING
        )
    return mark_safe(f"{opening}{icon_body(name)}</svg>")


# The menu item each page belongs to (its view's name → the item).
_SECTIONS = {
    "generation:history": "history",
    "generation:detail": "history",
    "generation:delete": "history",
    "generation:usage": "usage",
    "generation:staff_usage": "staff_usage",
    "api_tokens": "api_tokens",
}


@register.simple_tag(takes_context=True)
def nav_section(context) -> str:
    """Which menu item the page is under ("" for none), for aria-current."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is None:
        return ""
    if match.namespace == "catalog":
        return "catalog"
    return _SECTIONS.get(match.view_name, "")


_phrase_parser = cache(budoux.load_default_japanese_parser)


@register.filter
def phrases(text) -> SafeString:
    """Japanese text with a line-break chance (<wbr>) between its phrases
    only (BudouX), for headings and titles styled `.phrased` (keep-all): a
    line never ends inside a word like テン/プレート or いく/つか."""
    return _phrased(str(text or ""))


@lru_cache(maxsize=8192)
def _phrased(text: str) -> SafeString:
    chunks = _phrase_parser().parse(text) if text else []
    return mark_safe("<wbr>".join(escape(chunk) for chunk in chunks))
