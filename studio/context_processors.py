from __future__ import annotations

from django.http import HttpRequest


def studio(request: HttpRequest) -> dict[str, object]:
    from generation.providers import get_text_provider

    provider = get_text_provider()
    return {"studio_provider_name": provider.name, "studio_model_label": provider.label}
