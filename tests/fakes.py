"""Providers with a script, swapped in at the provider seam."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from generation.providers.base import (
    ProviderError,
    TextDelta,
    TextProvider,
    TextRequest,
    TextResult,
)
from generation.providers.images import (
    ImagePreview,
    ImageProvider,
    ImageRequest,
    ImageResult,
    PreviewCallback,
)


class ScriptedProvider(TextProvider):
    name = "scripted"
    model = "scripted-1"
    label = "Scripted"

    def __init__(
        self,
        deltas: list[str],
        *,
        delay: float = 0.0,
        fail_after: int | None = None,
        error: Exception | None = None,
        finish_reason: str | None = "stop",
    ) -> None:
        self.deltas = deltas
        self.delay = delay
        self.fail_after = fail_after
        self.error = error or ProviderError("upstream_error", "The model service failed.")
        self.finish_reason = finish_reason
        self.requests: list[TextRequest] = []

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta | TextResult]:
        self.requests.append(request)
        for number, text in enumerate(self.deltas):
            if self.fail_after is not None and number == self.fail_after:
                raise self.error
            await asyncio.sleep(self.delay)
            yield TextDelta(text)
        if self.fail_after is not None and self.fail_after >= len(self.deltas):
            raise self.error
        if self.finish_reason is not None:
            yield TextResult(self.finish_reason, input_tokens=11, output_tokens=len(self.deltas))


def png_bytes(
    width: int = 64, height: int = 48, colour: tuple[int, int, int] = (40, 90, 200)
) -> bytes:
    """A small real PNG."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


class ScriptedImageProvider(ImageProvider):
    """Draws plain PNGs, with previews, after optional failures; `gate` holds it
    mid-drawing until set (to cancel or kill it there)."""

    name = "scripted-images"
    label = "Scripted images"

    def __init__(
        self,
        *,
        errors: list[Exception] | None = None,
        images: list[bytes] | None = None,
        filtered: list[str] | None = None,
        previews: int = 2,
        gate: threading.Event | None = None,
    ) -> None:
        self.errors = list(errors or [])
        self.images = images
        self.filtered = filtered or []
        self.previews = previews
        self.gate = gate
        self.requests: list[ImageRequest] = []
        self.drawing = threading.Event()

    def model_for(self, tier: str) -> str:
        return f"scripted-{tier}"

    def generate(self, request: ImageRequest, *, on_preview: PreviewCallback) -> ImageResult:
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        for index in range(request.count):
            for step in range(1, self.previews + 1):
                on_preview(ImagePreview(index=index, step=step, data=png_bytes(16, 12)))
                self.drawing.set()
                if self.gate is not None:
                    self.gate.wait(10)
        images = (
            self.images
            if self.images is not None
            else [png_bytes(64 + index, 48) for index in range(request.count)]
        )
        return ImageResult(images=images, model="scripted-1", filtered=self.filtered)


class GatedProvider(ScriptedProvider):
    """A scripted model that stops after `hold_after` deltas until the test sets
    `release`: the answer is half written for as long as the test needs."""

    def __init__(self, deltas: list[str], *, hold_after: int, **kwargs) -> None:
        super().__init__(deltas, **kwargs)
        self.hold_after = hold_after
        self.release = threading.Event()

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta | TextResult]:
        sent = 0
        async for item in super().stream(request):
            if sent == self.hold_after:
                await asyncio.to_thread(self.release.wait, 60)
            sent += 1
            yield item
