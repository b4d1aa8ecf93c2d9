"""What every page shows of the model that answers."""

from __future__ import annotations

from django.http import HttpRequest

from generation.providers import get_text_provider


def studio(request: HttpRequest) -> dict[str, object]:
    provider = get_text_provider()
    return {"studio_provider_name": provider.name, "studio_model_label": provider.label}
