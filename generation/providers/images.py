"""The one small interface every image provider implements, and the choice of
provider by STUDIO_IMAGE_PROVIDER: `demo`, `openai`, `vertex`, or a dotted path.

Image providers are synchronous: they run inside a Celery task, one job per
worker process, and block while the model draws. They return the encoded
images as the service sent them; `generation.images.imaging` verifies and converts
them. Failures are `ProviderError`s; `is_retryable` tells the task which ones
are worth another attempt later (rate limits, 5xx, timeouts, broken
connections), so providers do not retry themselves: the task owns retries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from generation.providers import load_provider
from generation.providers.base import ProviderError

# The shapes a template may ask for, as "width:height".
ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16")
MAX_IMAGES_PER_REQUEST = 4

# Error codes that a later attempt may well get past.
RETRYABLE_CODES = frozenset(
    {"rate_limited", "provider_unavailable", "timeout", "provider_unreachable"}
)


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    negative_prompt: str = ""
    aspect_ratio: str = "1:1"  # one of ASPECT_RATIOS
    count: int = 1  # 1..MAX_IMAGES_PER_REQUEST
    language: str = "ja"
    template_title: str = ""
    # The template's model tier ("standard" or "advanced"): providers map it to a model.
    tier: str = "standard"
    # (label, value as shown) of each input, for providers that want them (the demo does).
    inputs: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImagePreview:
    """A partial rendering of image `index` (0-based), the `step`th of this image."""

    index: int
    step: int
    data: bytes  # encoded PNG, JPEG or WebP


@dataclass(frozen=True, slots=True)
class ImageResult:
    # Encoded images (PNG, JPEG or WebP) in order; fewer than asked when some were filtered.
    images: list[bytes]
    model: str
    # One reason per image a safety filter withheld (the service's words, trimmed).
    filtered: list[str] = field(default_factory=list)
    revised_prompt: str = ""


PreviewCallback = Callable[[ImagePreview], None]


class ImageProvider(ABC):
    name: str
    label: str  # what the UI calls this model

    @abstractmethod
    def model_for(self, tier: str) -> str:
        """The model that serves image templates of `tier`."""

    @abstractmethod
    def generate(self, request: ImageRequest, *, on_preview: PreviewCallback) -> ImageResult:
        """Draw `request.count` images; call `on_preview` with partial renderings as
        they arrive (from the calling thread). Raise ProviderError on failure, and
        ProviderError("content_filter", ...) when every image was withheld."""


def requested_images(inputs: Mapping[str, Any]) -> int:
    """How many images a generation asks for: its `count` field (1 by default)."""
    try:
        count = int(inputs.get("count") or 1)
    except (TypeError, ValueError):
        count = 1
    return min(max(count, 1), MAX_IMAGES_PER_REQUEST)


def is_retryable(error: ProviderError) -> bool:
    return error.code in RETRYABLE_CODES


def retry_after_of(error: ProviderError) -> float | None:
    """Seconds the service asked us to wait before trying again, when it said."""
    return getattr(error, "retry_after", None)


IMAGE_PROVIDERS = {
    "demo": "generation.providers.demo_images.DemoImageProvider",
    "openai": "generation.providers.openai_images.OpenAIImageProvider",
    "vertex": "generation.providers.vertex_images.VertexImagenProvider",
}


def get_image_provider() -> ImageProvider:
    return load_provider(
        "STUDIO_IMAGE_PROVIDER", settings.STUDIO_IMAGE_PROVIDER, tuple(IMAGE_PROVIDERS.items())
    )
