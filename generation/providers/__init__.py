"""Text providers, chosen by STUDIO_LLM_PROVIDER: `demo`, `openai`, `vertex`, or a
dotted path to a class."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from generation.providers.base import TextProvider

TEXT_PROVIDERS = {
    "demo": "generation.providers.demo.DemoTextProvider",
    "openai": "generation.providers.openai.OpenAIChatProvider",
    "vertex": "generation.providers.vertex.VertexGeminiProvider",
}


@cache
def _load(name: str) -> TextProvider:
    path = TEXT_PROVIDERS.get(name, name)
    if "." not in path:
        known = ", ".join(sorted(TEXT_PROVIDERS))
        raise ImproperlyConfigured(
            f"STUDIO_LLM_PROVIDER={name!r} is not a provider; use one of: {known}"
        )
    try:
        provider_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"STUDIO_LLM_PROVIDER={name!r} cannot be imported") from exc
    return provider_class()


def get_text_provider() -> TextProvider:
    return _load(settings.STUDIO_LLM_PROVIDER)
