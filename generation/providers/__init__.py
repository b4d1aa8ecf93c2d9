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
def load_provider(setting: str, name: str, registry: tuple[tuple[str, str], ...]):
    """One instance of provider `name` (a key of `registry` or a dotted class path),
    chosen by `setting`; a clear configuration error otherwise."""
    known = dict(registry)
    path = known.get(name, name)
    if "." not in path:
        choices = ", ".join(sorted(known))
        raise ImproperlyConfigured(f"{setting}={name!r} is not a provider; use one of: {choices}")
    try:
        provider_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{setting}={name!r} cannot be imported") from exc
    return provider_class()


def get_text_provider() -> TextProvider:
    return load_provider(
        "STUDIO_LLM_PROVIDER", settings.STUDIO_LLM_PROVIDER, tuple(TEXT_PROVIDERS.items())
    )
