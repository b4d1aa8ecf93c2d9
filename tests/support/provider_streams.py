"""Reading a provider's stream in tests, the same way for every provider."""

from __future__ import annotations

import asyncio
import time

import pytest

from generation.providers.base import ProviderError, TextDelta, TextRequest, TextResult

REQUEST = TextRequest(system="Be brief.", prompt="Write to Ms Sato.", language="en")


async def collect(provider, request: TextRequest = REQUEST) -> tuple[str, TextResult]:
    """The whole text of a stream that must succeed, and its result."""
    items = [item async for item in provider.stream(request)]
    *deltas, result = items
    assert all(isinstance(delta, TextDelta) for delta in deltas)
    assert isinstance(result, TextResult)
    return "".join(delta.text for delta in deltas), result


async def collect_until_error(provider, request: TextRequest = REQUEST):
    """The deltas of a stream that must fail, and its error."""
    deltas: list[str] = []
    try:
        async for item in provider.stream(request):
            assert isinstance(item, TextDelta)
            deltas.append(item.text)
    except ProviderError as error:
        return deltas, error
    pytest.fail("the stream ended without an error")


async def wait_for(condition, within: float = 1.0) -> float:
    """Seconds until `condition()` held; fails the test after `within` seconds."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            pytest.fail(f"still not true after {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start
