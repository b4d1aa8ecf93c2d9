"""Gemini on Vertex AI, streamed through the google-genai SDK.

Credentials come from Application Default Credentials (a service account, or
`gcloud auth application-default login`), the project and region from
GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION ("global" when unset).
STUDIO_VERTEX_BASE_URL sends the same requests elsewhere: a private gateway,
or the local fake the tests use.

The SDK retries a rejected request itself (429, 5xx, connection failures)
before anything has streamed; once text has streamed, a failure ends the
answer and the runner keeps what arrived.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable

import google.auth.exceptions
from django.conf import settings
from django.utils.translation import gettext as _
from google import genai
from google.auth.credentials import Credentials
from google.genai import errors, types

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
    status_error,
    timeout_error,
    trimmed,
    unreachable_error,
)

_RETRY_STATUSES = [408, 429, 500, 502, 503, 504]
_RETRY_INITIAL_DELAY = 0.5
_RETRY_MAX_DELAY = 8.0
_RETRY_JITTER = 0.25
# The SDK turns the client timeout into X-Server-Timeout, a deadline for the
# whole answer on Google's side. Ours is a timeout between two chunks, so the
# server gets a deadline of its own, long enough for the longest answer.
_SERVER_DEADLINE_SECONDS = 600
# A gateway in front of Vertex AI still gets the usual resource path, which
# names a project; a local fake does not care which.
_GATEWAY_PROJECT = "local"

# Gemini's reasons for stopping that mean a filter or policy cut the answer.
_FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
}


def normalise_finish_reason(reason: object) -> str:
    """Gemini's FinishReason as the studio's finish_reason word."""
    word = str(getattr(reason, "value", reason)).upper()
    if word == "STOP":
        return "stop"
    if word == "MAX_TOKENS":
        return "length"
    if word in _FILTERED:
        return "content_filter"
    return word.lower()


def vertex_client(
    *,
    credentials: Credentials | None,
    project: str | None,
    location: str | None,
    base_url: str | None,
    default_location: str = "global",
) -> genai.Client:
    """A google-genai client in Vertex mode: project and region as given, else
    from GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION; `base_url` for a gateway."""
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    location = location or os.environ.get("GOOGLE_CLOUD_LOCATION") or default_location
    if location == "global":
        location = default_location
    if base_url and not project:
        project = _GATEWAY_PROJECT
    # With a base_url the SDK only builds the projects/…/locations/… path
    # when both are passed explicitly (otherwise it posts to the bare URL),
    # so they always are.
    return genai.Client(
        vertexai=True,
        project=project,
        location=location,
        credentials=credentials,
        http_options=types.HttpOptions(base_url=base_url),
    )


def misconfigured_error() -> ProviderError:
    return ProviderError(
        "provider_misconfigured",
        _("Vertex AI is not set up on this site. Please tell the site administrator."),
    )


class VertexClients:
    """A provider's google-genai client, built on first use and again when
    STUDIO_VERTEX_BASE_URL changes. One client serves every thread and event
    loop: the SDK keeps an HTTP pool per loop itself."""

    def __init__(
        self,
        *,
        credentials: Credentials | None,
        project: str | None,
        location: str | None,
        base_url: str | None,
        default_location: str = "global",
    ) -> None:
        self._options = {
            "credentials": credentials,
            "project": project,
            "location": location,
            "default_location": default_location,
        }
        self._base_url = base_url
        self._client: genai.Client | None = None
        self._client_base_url: str | None = None
        self._lock = threading.Lock()

    def _wanted_base_url(self) -> str | None:
        return self._base_url or settings.STUDIO_VERTEX_BASE_URL or None

    def built(self) -> genai.Client | None:
        """The client if it is built for the current settings (no waiting)."""
        if self._client is not None and self._client_base_url == self._wanted_base_url():
            return self._client
        return None

    def get(self) -> genai.Client:
        """The client; building it may read credentials from disk or the metadata
        server, so call it off the event loop. A ProviderError if Vertex is not set up."""
        base_url = self._wanted_base_url()
        with self._lock:
            if self._client is None or self._client_base_url != base_url:
                try:
                    self._client = vertex_client(base_url=base_url, **self._options)
                except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
                    raise misconfigured_error() from exc
                self._client_base_url = base_url
            return self._client


class VertexGeminiProvider(TextProvider):
    name = "vertex"

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        project: str | None = None,
        location: str | None = None,
        base_url: str | None = None,
    ) -> None:
        self._clients = VertexClients(
            credentials=credentials, project=project, location=location, base_url=base_url
        )

    @property
    def model(self) -> str:  # type: ignore[override]
        return settings.STUDIO_VERTEX_MODEL

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"Gemini {self.model}"

    def model_for(self, tier: str) -> str:
        if tier == "advanced" and settings.STUDIO_VERTEX_ADVANCED_MODEL:
            return settings.STUDIO_VERTEX_ADVANCED_MODEL
        return self.model

    async def _client_now(self) -> genai.Client:
        return self._clients.built() or await asyncio.to_thread(self._clients.get)

    def _config(self, system: str | None, max_tokens: int) -> types.GenerateContentConfig:
        # Settings are read for every request, so changing them needs no new client.
        retry = types.HttpRetryOptions(
            attempts=settings.STUDIO_PROVIDER_RETRIES + 1,
            initial_delay=_RETRY_INITIAL_DELAY,
            max_delay=_RETRY_MAX_DELAY,
            jitter=_RETRY_JITTER,
            http_status_codes=_RETRY_STATUSES,
        )
        http_options = types.HttpOptions(
            timeout=int(settings.STUDIO_PROVIDER_READ_TIMEOUT * 1000),
            retry_options=retry,
            headers={"X-Server-Timeout": str(_SERVER_DEADLINE_SECONDS)},
        )
        return types.GenerateContentConfig(
            system_instruction=system,
            # No tools are offered, so there is nothing for the SDK to call.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            max_output_tokens=max_tokens or None,
            http_options=http_options,
        )

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta | TextResult]:
        model = self.model_for(request.tier)
        system, contents = _contents(request)
        client = await self._client_now()
        streamed: list[str] = []
        finish_reason: str | None = None
        usage: types.GenerateContentResponseUsageMetadata | None = None
        blocked = False
        chunks: asyncio.Queue[types.GenerateContentResponse | BaseException | None]
        chunks = asyncio.Queue()
        pump = asyncio.create_task(
            _pump(
                client.aio.models.generate_content_stream(
                    model=model,
                    contents=contents,
                    config=self._config(system, request.output_token_limit),
                ),
                chunks,
            )
        )
        try:
            while (chunk := await chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                usage = chunk.usage_metadata or usage
                if not chunk.candidates:
                    feedback = chunk.prompt_feedback
                    blocked = blocked or bool(feedback and feedback.block_reason)
                    continue
                candidate = chunk.candidates[0]
                for part in (candidate.content.parts or []) if candidate.content else []:
                    if part.text and not part.thought:
                        streamed.append(part.text)
                        yield TextDelta(part.text)
                if candidate.finish_reason:
                    finish_reason = normalise_finish_reason(candidate.finish_reason)
        except Exception as exc:
            raise _provider_error(exc, model=model, started=bool(streamed)) from exc
        finally:
            if not pump.done():
                # Stopped early: cancelled, or closed by the consumer. See _pump.
                pump.cancel()
                await asyncio.wait({pump})
        if blocked and not streamed:
            finish_reason = "content_filter"
        if finish_reason is None:
            raise incomplete_error()
        input_tokens = (usage.prompt_token_count if usage else 0) or 0
        # Thinking tokens are billed as output, though never shown.
        output_tokens = (
            (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0) if usage else 0
        )
        yield TextResult(
            finish_reason=finish_reason,
            input_tokens=input_tokens or estimate_tokens(request.system + request.prompt),
            output_tokens=output_tokens or estimate_tokens("".join(streamed)),
        )


async def _pump(
    request: Awaitable[AsyncIterator[types.GenerateContentResponse]],
    chunks: asyncio.Queue[types.GenerateContentResponse | BaseException | None],
) -> None:
    """Read the SDK's stream into `chunks`, then None (or the exception that ended it).

    The SDK's stream is a chain of async generators, and closing the outer one
    leaves the inner ones (and the HTTP response) open until they are garbage
    collected. Read on a task of its own, the stream is almost always waiting on
    the socket, so cancelling the task unwinds the whole chain at once and
    closes the connection: Google then stops generating (and billing).
    """
    try:
        async for chunk in await request:
            chunks.put_nowait(chunk)
    except Exception as exc:
        chunks.put_nowait(exc)
    else:
        chunks.put_nowait(None)


def _contents(request: TextRequest) -> tuple[str | None, list[types.Content]]:
    """The chat messages as Gemini contents, with the system message set apart."""
    system = None
    contents = []
    for message in chat_messages(request):
        if message["role"] == "system":
            system = message["content"]
            continue
        role = "model" if message["role"] == "assistant" else "user"
        contents.append(types.Content(role=role, parts=[types.Part(text=message["content"])]))
    return system, contents


def _provider_error(exc: Exception, *, model: str, started: bool) -> ProviderError:
    """What to tell the person about `exc`."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, errors.APIError):
        if started:
            return interrupted_error()
        return status_error(exc.code or 500, exc.message or str(exc), model=model)
    if isinstance(exc, TIMEOUT_ERRORS):
        return timeout_error()
    if isinstance(exc, google.auth.exceptions.GoogleAuthError):
        return ProviderError(
            "provider_auth",
            _("The model service refused our credentials. Please tell the site administrator."),
        )
    if isinstance(exc, TRANSPORT_ERRORS):
        if isinstance(exc, CONNECT_ERRORS) and not started:
            return unreachable_error()
        return interrupted_error()
    if started:
        return interrupted_error()
    return ProviderError(
        "provider_error",
        _("The model service reported an error: %(detail)s") % {"detail": trimmed(exc)},
    )
