"""System checks: a misconfigured provider is reported at start-up, not at the first request."""

from __future__ import annotations

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from generation.providers import get_text_provider


@register()
def check_text_provider(app_configs, **kwargs) -> list[Error]:
    try:
        get_text_provider()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="generation.E001")]
    return []
