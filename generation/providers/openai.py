"""OpenAI's Chat Completions API, streamed (and any server that speaks it).

The SDK reads OPENAI_API_KEY and OPENAI_BASE_URL itself, so pointing
OPENAI_BASE_URL at Ollama, vLLM or a gateway works without code. The SDK's own
retries are off: a request is retried here, with backoff and the server's
Retry-After, only while nothing has been shown to the person yet. Once text
has streamed, a failure ends the answer and the runner keeps what arrived.

The SDK sends the request and turns error statuses into exceptions; the
stream's events are read here as plain JSON. The SDK would build a typed
object for every chunk, which costs about four times as much CPU per token,
and every token of every generation of the process goes through one loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import weakref
from collections.abc import AsyncIterator
from typing import Any

import openai
from django.conf import settings
from django.utils.translation import gettext as _

from generation.providers.base import (
    ProviderError,
    TextDelta,
    TextProvider,
    TextRequest,
    TextResult,
    chat_messages,
    estimate_tokens,
)
from generation.providers.failures import (
    CONNECT_ERRORS,
    TIMEOUT_ERRORS,
    TRANSPORT_ERRORS,
    incomplete_error,
    interrupted_error,
    retry_after,
    status_error,
    timeout_error,
    trimmed,
    unreachable_error,
)

# Local OpenAI-compatible servers (Ollama, vLLM) take no key, but the SDK insists on one.
_KEYLESS_PLACEHOLDER = "not-needed"
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 8.0
_RETRYABLE_STATUSES = {408, 409, 429}


class _StreamEnded(Exception):
    """The stream stopped without saying why."""


class _StreamError(Exception):
    """The service sent an error event in the middle of the stream."""


_FAILURES = (openai.OpenAIError, *TIMEOUT_ERRORS, *TRANSPORT_ERRORS, _StreamEnded, _StreamError)


class OpenAIChatProvider(TextProvider):
    name = "openai"

    def __init__(self) -> None:
        # The SDK's HTTP pool belongs to the event loop that opened it: the
        # runner's loop, and each test's, get a client of their own.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI]
        self._clients = weakref.WeakKeyDictionary()

    @property
    def model(self) -> str:  # type: ignore[override]
        return settings.STUDIO_OPENAI_MODEL

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"OpenAI {self.model}"

    def model_for(self, tier: str) -> str:
        if tier == "advanced" and settings.STUDIO_OPENAI_ADVANCED_MODEL:
            return settings.STUDIO_OPENAI_ADVANCED_MODEL
        return self.model

    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = openai.AsyncOpenAI(
                api_key=os.environ.get("OPENAI_API_KEY") or _KEYLESS_PLACEHOLDER,
                max_retries=0,
            )
            self._clients[loop] = client
        return client

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta | TextResult]:
        model = self.model_for(request.tier)
        client = self._client()
        options: dict[str, Any] = {}
        if request.output_token_limit:
            options["max_completion_tokens"] = request.output_token_limit
        # Passed with each request, so changed settings apply to a client already built.
        timeout = openai.Timeout(
            settings.STUDIO_PROVIDER_READ_TIMEOUT, connect=settings.STUDIO_PROVIDER_CONNECT_TIMEOUT
        )
        retries = settings.STUDIO_PROVIDER_RETRIES
        for attempt in range(retries + 1):
            streamed: list[str] = []
            finish_reason: str | None = None
            usage: dict[str, Any] = {}
            try:
                call = client.chat.completions.with_streaming_response.create(
                    model=model,
                    messages=chat_messages(request),  # type: ignore[arg-type]
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=timeout,
                    **options,
                )
                # Leaving this block for any reason (cancellation included)
                # closes the HTTP response, so the service stops generating.
                async with call as response:
                    async for data in server_sent_data(response.iter_bytes()):
                        if data == "[DONE]":
                            break
                        chunk = json.loads(data)
                        if chunk.get("error"):
                            raise _StreamError(chunk["error"])
                        usage = chunk.get("usage") or usage
                        for choice in (chunk.get("choices") or [])[:1]:
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                streamed.append(text)
                                yield TextDelta(text)
                            finish_reason = choice.get("finish_reason") or finish_reason
                if finish_reason is None:
                    raise _StreamEnded
            except _FAILURES as exc:
                error = _provider_error(exc, model=model, started=bool(streamed))
                if streamed or attempt == retries:
                    raise error from exc
                await asyncio.sleep(_retry_delay(exc, attempt, error))
                continue
            except ValueError as exc:  # not JSON: not an OpenAI-compatible server
                raise ProviderError(
                    "provider_error", _("The model service sent an answer that could not be read.")
                ) from exc
            yield TextResult(
                finish_reason=finish_reason.lower(),
                input_tokens=usage.get("prompt_tokens")
                or estimate_tokens(request.system + request.prompt),
                output_tokens=usage.get("completion_tokens") or estimate_tokens("".join(streamed)),
            )
            return


async def server_sent_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The data of each server-sent event in a byte stream.

    Lines end only at CR, LF or CRLF: text lines in httpx also end at U+2028
    and the like, which a model may well write inside a JSON string.
    """
    pending = b""
    data: list[bytes] = []
    async for chunk in chunks:
        lines = (pending + chunk).splitlines(keepends=True)
        # Keep an unfinished line, and a CR that may be half of a CRLF.
        pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line:
                if data:
                    yield b"\n".join(data).decode("utf-8", "replace")
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
    for line in pending.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data).decode("utf-8", "replace")


def _retry_delay(exc: Exception, attempt: int, error: ProviderError) -> float:
    """Seconds to wait before the next attempt; raises `error` when another is pointless."""
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code < 500 and exc.status_code not in _RETRYABLE_STATUSES:
            raise error from exc
        if error.code == "quota_exceeded":
            raise error from exc
        wait = retry_after(exc.response.headers)
        if wait is not None:
            if wait > settings.STUDIO_PROVIDER_MAX_RETRY_AFTER:
                # Better to say so now than to keep the person waiting that long.
                raise error from exc
            return wait
    backoff = min(_BACKOFF_BASE * 2**attempt, _BACKOFF_CAP)
    return backoff * random.uniform(0.5, 1.0)


def _provider_error(exc: Exception, *, model: str, started: bool) -> ProviderError:
    """What to tell the person about `exc`."""
    if isinstance(exc, (openai.APITimeoutError, *TIMEOUT_ERRORS)):
        return timeout_error()
    if isinstance(exc, (openai.APIConnectionError, *CONNECT_ERRORS)) and not started:
        return unreachable_error()
    if isinstance(exc, _StreamEnded):
        return incomplete_error()
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        return status_error(
            exc.status_code,
            body.get("message") or exc.message,
            model=model,
            quota_exhausted=exc.code == "insufficient_quota",
        )
    if isinstance(exc, _StreamError) and not started:
        detail = exc.args[0].get("message") if isinstance(exc.args[0], dict) else exc.args[0]
        return ProviderError(
            "provider_error",
            _("The model service reported an error: %(detail)s") % {"detail": trimmed(detail)},
        )
    return interrupted_error()
