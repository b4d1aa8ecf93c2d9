from __future__ import annotations

from django import template
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from generation.lifecycle.limits import Allowance, allowance_of, plan_of
from generation.rendering import render_markdown, render_plain

register = template.Library()


@register.filter
def answer_html(generation) -> SafeString:
    """A generation's answer as the page shows it: Markdown rendered, or a
    plain-text answer (an email, a letter) escaped, its lines kept by CSS."""
    text = generation.output or ""
    return render_plain(text) if generation.is_plain_text else render_markdown(text)


@register.filter
def progress_text(state: dict | None) -> str:
    """What an image generation's latest `queued`/`progress` event means, in words."""
    state = state or {}
    data = state.get("data") or {}
    if state.get("event", "queued") == "queued":
        position = data.get("position")
        if position is None:
            return gettext("Waiting in line…")
        return gettext("Waiting in line: number %(position)s") % {"position": position}
    stage = data.get("stage")
    if stage == "drawing":
        return gettext("Drawing image %(number)s of %(count)s…") % {
            "number": data.get("image", 1),
            "count": data.get("images", 1),
        }
    if stage == "processing":
        return gettext("Finishing the images…")
    if stage == "retrying":
        return gettext("The model service is busy. Trying again in %(seconds)s seconds…") % {
            "seconds": data.get("retry_in", "?")
        }
    return gettext("Starting…")


@register.simple_tag(takes_context=True)
def plan_allowance(context) -> Allowance | None:
    """Where the person at the page stands against their plan (None: no limits)."""
    user = context["request"].user
    if not user.is_authenticated:
        return None
    plan = plan_of(user)
    return allowance_of(user, plan=plan) if plan is not None else None
