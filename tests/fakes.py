"""Providers with a script, swapped in at the provider seam."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from generation.providers.base import (
    ProviderError,
    TextDelta,
    TextProvider,
    TextRequest,
    TextResult,
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
