"""OpenAI's Images API (GPT Image models), and any server that speaks it.

As for text, the SDK reads OPENAI_API_KEY and OPENAI_BASE_URL itself. The
model is always a setting (STUDIO_OPENAI_IMAGE_MODEL, and
STUDIO_OPENAI_ADVANCED_IMAGE_MODEL for the advanced tier): image models are
retired on a schedule, as gpt-image-1 was.

With STUDIO_IMAGE_PARTIAL_PREVIEWS above zero each image is streamed, and its
partial renderings are handed to `on_preview` as they arrive. A stream carries
one image: its events name no image, so the partial renderings of several
images could not be told apart. Several images are therefore drawn one request
after another. Without previews one plain request asks for all of them.

The SDK's retries are off: the Celery task owns retries, and gets the
service's Retry-After on the error (`retry_after_of`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import openai
from django.conf import settings
from django.utils.translation import gettext as _

from generation.providers.base import ProviderError
from generation.providers.failures import (
    CONNECT_ERRORS,
    TIMEOUT_ERRORS,
    TRANSPORT_ERRORS,
    retry_after,
    status_error,
    timeout_error,
    trimmed,
    unreachable_error,
)
from generation.providers.images import (
    ImagePreview,
    ImageProvider,
    ImageRequest,
    ImageResult,
    PreviewCallback,
)

# Local OpenAI-compatible servers take no key, but the SDK insists on one.
_KEYLESS_PLACEHOLDER = "not-needed"

# The GPT Image models' standard sizes; the closest one for each aspect ratio.
SIZES = {
    "1:1": "1024x1024",
    "16:9": "1536x1024",
    "4:3": "1536x1024",
    "9:16": "1024x1536",
    "3:4": "1024x1536",
}

# Error codes OpenAI gives a request its safety system refused.
_MODERATION_CODES = {"moderation_blocked", "content_policy_violation"}


class OpenAIImageProvider(ImageProvider):
    name = "openai"

    def __init__(self) -> None:
        # Built on first use, so that a Celery worker builds it after forking.
        self._client: openai.OpenAI | None = None

    @property
    def label(self) -> str:  # type: ignore[override]
        return settings.STUDIO_OPENAI_IMAGE_MODEL

    def model_for(self, tier: str) -> str:
        if tier == "advanced" and settings.STUDIO_OPENAI_ADVANCED_IMAGE_MODEL:
            return settings.STUDIO_OPENAI_ADVANCED_IMAGE_MODEL
        return settings.STUDIO_OPENAI_IMAGE_MODEL

    def _client_now(self) -> openai.OpenAI:
        if self._client is None:
            self._client = openai.OpenAI(
                api_key=os.environ.get("OPENAI_API_KEY") or _KEYLESS_PLACEHOLDER,
                max_retries=0,
            )
        return self._client

    def generate(self, request: ImageRequest, *, on_preview: PreviewCallback) -> ImageResult:
        model = self.model_for(request.tier)
        options: dict[str, Any] = {
            "model": model,
            "prompt": prompt_with_avoidances(request),
            "size": SIZES.get(request.aspect_ratio, SIZES["1:1"]),
            "output_format": "png",
            # Passed with each request, so changed settings apply to a client already built.
            "timeout": openai.Timeout(
                settings.STUDIO_IMAGE_REQUEST_TIMEOUT,
                connect=settings.STUDIO_PROVIDER_CONNECT_TIMEOUT,
            ),
        }
        previews = max(0, min(int(settings.STUDIO_IMAGE_PARTIAL_PREVIEWS), 3))
        client = self._client_now()
        if previews:
            images = [
                self._draw_streamed(client, options, previews, index, on_preview)
                for index in range(request.count)
            ]
            return ImageResult(images=images, model=model)
        return self._draw_at_once(client, options, request.count)

    def _draw_at_once(
        self, client: openai.OpenAI, options: dict[str, Any], count: int
    ) -> ImageResult:
        with _failures_reported(model=options["model"]):
            response = client.images.generate(n=count, **options)
        data = response.data or []
        if not data:
            raise _bad_response()
        return ImageResult(
            images=[_decoded(item.b64_json) for item in data],
            model=options["model"],
            revised_prompt=data[0].revised_prompt or "",
        )

    def _draw_streamed(
        self,
        client: openai.OpenAI,
        options: dict[str, Any],
        previews: int,
        index: int,
        on_preview: PreviewCallback,
    ) -> bytes:
        """One image, streamed, its partial renderings passed to `on_preview` on the way."""
        with _failures_reported(model=options["model"]):
            stream = client.images.generate(n=1, stream=True, partial_images=previews, **options)
            # Leaving this block for any reason closes the HTTP response.
            with stream:
                steps = 0
                for event in stream:
                    kind = getattr(event, "type", None)
                    if kind == "image_generation.partial_image":
                        number = event.partial_image_index
                        steps = number + 1 if isinstance(number, int) else steps + 1
                        data = _decoded(event.b64_json)
                        on_preview(ImagePreview(index=index, step=steps, data=data))
                    elif kind == "image_generation.completed":
                        return _decoded(event.b64_json)
                    elif kind == "error":
                        # The SDK raises an error event that nests an "error" object
                        # (see below); one with the error's fields at the top comes here.
                        raise _stream_error(event.to_dict())
        # The stream ended without its image: as good as a broken connection.
        raise _broken_off_error()


def prompt_with_avoidances(request: ImageRequest) -> str:
    """The prompt, with the negative prompt as a last line: the Images API has no
    parameter for it."""
    avoid = " ".join(request.negative_prompt.split())
    return f"{request.prompt}\n\nAvoid: {avoid}" if avoid else request.prompt


def _decoded(data: str | None) -> bytes:
    if not data:
        raise _bad_response()
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:  # binascii.Error, or text that is not ASCII
        raise _bad_response() from exc


@contextlib.contextmanager
def _failures_reported(*, model: str) -> Iterator[None]:
    """Turn what the SDK and the HTTP client raise into the ProviderError to show.

    Only their exceptions: whatever `on_preview` raises passes through untouched.
    """
    try:
        yield
    except openai.APIStatusError as exc:
        raise _status_error(exc, model=model) from exc
    except openai.APITimeoutError as exc:
        raise timeout_error() from exc
    except openai.APIConnectionError as exc:
        # Not connected at all, or connected and cut off before the image was done.
        if isinstance(exc.__cause__, CONNECT_ERRORS):
            raise unreachable_error() from exc
        raise _broken_off_error() from exc
    except openai.APIResponseValidationError as exc:
        raise _bad_response() from exc
    except openai.APIError as exc:  # an error event in the stream
        raise _stream_error(exc.body if isinstance(exc.body, dict) else {}) from exc
    except TIMEOUT_ERRORS as exc:
        raise timeout_error() from exc
    except CONNECT_ERRORS as exc:
        raise unreachable_error() from exc
    except TRANSPORT_ERRORS as exc:
        raise _broken_off_error() from exc
    except json.JSONDecodeError as exc:  # an event that is not JSON
        raise _bad_response() from exc


def _status_error(exc: openai.APIStatusError, *, model: str) -> ProviderError:
    body = exc.body if isinstance(exc.body, dict) else {}
    if exc.code in _MODERATION_CODES:
        error = _refused_error()
    else:
        error = status_error(
            exc.status_code,
            body.get("message") or exc.message,
            model=model,
            quota_exhausted=exc.code == "insufficient_quota",
        )
    wait = retry_after(exc.response.headers)
    if wait is not None:
        error.retry_after = wait  # type: ignore[attr-defined]
    return error


def _stream_error(error: dict[str, Any]) -> ProviderError:
    """The error for an error event in the stream (`error` is its error object)."""
    if error.get("code") in _MODERATION_CODES:
        return _refused_error()
    if error.get("type") == "server_error":
        return ProviderError(
            "provider_unavailable",
            _("The model service is unavailable right now. Please try again shortly."),
        )
    return ProviderError(
        "provider_error",
        _("The model service reported an error: %(detail)s")
        % {"detail": trimmed(error.get("message") or error.get("code"))},
    )


def _refused_error() -> ProviderError:
    return ProviderError(
        "content_filter",
        _(
            "The image service's safety system declined this request. "
            "Please describe the image differently and try again."
        ),
    )


def _broken_off_error() -> ProviderError:
    # Nothing of a broken image is kept, so unlike a broken text stream this is
    # worth another attempt: hence a code that `is_retryable` accepts.
    return ProviderError(
        "provider_unreachable",
        _("The connection to the model service broke off before the image was finished."),
    )


def _bad_response() -> ProviderError:
    return ProviderError(
        "bad_response", _("The model service sent an image that could not be read.")
    )
