"""Template filters for figures as a person reads them (studio.figures):
`{% load figures %}`, then `{{ micros|money }}`, `{{ count|characters }}`,
`{{ seconds|duration }}`, `{% sentences a b %}`; and the staff's `usd` and
`seconds_exact`."""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from studio import figures

register = template.Library()

register.filter("money", figures.money)
register.filter("characters", figures.characters)
register.filter("duration", figures.duration)
register.filter("seconds_exact", figures.seconds_exact)
register.filter("usd", figures.usd)


@register.simple_tag
def sentences(*parts: str) -> SafeString:
    """`{% sentences first second %}`: sentences (e.g. captured with
    `blocktranslate … asvar`) joined as the page's language writes them."""
    # Each part escaped once (a captured blocktranslate is already safe); the
    # joiner is the catalogue's own text.
    return mark_safe(figures.sentences(*(conditional_escape(part) for part in parts)))
