"""Imagen on Vertex AI, through the google-genai SDK.

The client is built as the Gemini text provider builds it: Application Default
Credentials, the project from GOOGLE_CLOUD_PROJECT, STUDIO_VERTEX_BASE_URL for
a gateway or the local fake. The region comes from GOOGLE_CLOUD_LOCATION, but
Imagen is served from regions only, not from the "global" endpoint that suits
Gemini, so "global" (or nothing) means us-central1 here. The model is a setting
(STUDIO_VERTEX_IMAGE_MODEL, and STUDIO_VERTEX_ADVANCED_IMAGE_MODEL for the
advanced tier).

Imagen does not stream, so there are no previews: one request draws every
image. Images the Responsible AI filter withheld come back as reasons without
bytes; they are reported in `ImageResult.filtered`, and when nothing is left
the request is a content_filter failure quoting the service's reason.

No retry options are given to the SDK, so it makes one attempt: the Celery
task owns retries, and gets the service's Retry-After on the error.
"""

from __future__ import annotations

import google.auth.exceptions
from django.conf import settings
from django.utils.translation import gettext as _
from google.auth.credentials import Credentials
from google.genai import errors, types

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
    ImageProvider,
    ImageRequest,
    ImageResult,
    PreviewCallback,
)
from generation.providers.vertex import VertexClients

# A gateway in front of Vertex AI still gets the usual resource path, which
# names a project; a local fake does not care which.
_DEFAULT_LOCATION = "us-central1"
# ValueError: a body that is not JSON, or image bytes that are not base64.
_FAILURES = (
    errors.APIError,
    google.auth.exceptions.GoogleAuthError,
    *TIMEOUT_ERRORS,
    *TRANSPORT_ERRORS,
    ValueError,
)


class VertexImagenProvider(ImageProvider):
    name = "vertex"

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        project: str | None = None,
        location: str | None = None,
        base_url: str | None = None,
    ) -> None:
        # Imagen is served by regions, not by the "global" endpoint.
        self._clients = VertexClients(
            credentials=credentials,
            project=project,
            location=location,
            base_url=base_url,
            default_location=_DEFAULT_LOCATION,
        )

    @property
    def label(self) -> str:  # type: ignore[override]
        return settings.STUDIO_VERTEX_IMAGE_MODEL

    def model_for(self, tier: str) -> str:
        if tier == "advanced" and settings.STUDIO_VERTEX_ADVANCED_IMAGE_MODEL:
            return settings.STUDIO_VERTEX_ADVANCED_IMAGE_MODEL
        return settings.STUDIO_VERTEX_IMAGE_MODEL

    def generate(self, request: ImageRequest, *, on_preview: PreviewCallback) -> ImageResult:
        model = self.model_for(request.tier)
        client = self._clients.get()
        config = types.GenerateImagesConfig(
            number_of_images=request.count,
            aspect_ratio=request.aspect_ratio,
            negative_prompt=" ".join(request.negative_prompt.split()) or None,
            # Without it a withheld image simply goes missing from the answer.
            include_rai_reason=True,
            output_mime_type="image/png",
            # Read for every request, so changed settings need no new client. The SDK
            # also sends it as X-Server-Timeout, so Google gives up when we do.
            http_options=types.HttpOptions(
                timeout=int(settings.STUDIO_IMAGE_REQUEST_TIMEOUT * 1000)
            ),
        )
        try:
            response = client.models.generate_images(
                model=model, prompt=request.prompt, config=config
            )
        # Only what the SDK and HTTP client raise: anything else (the task's soft
        # time limit, say) passes through for the task to handle.
        except _FAILURES as exc:
            raise _provider_error(exc, model=model) from exc
        return _result(response, model=model)


def _result(response: types.GenerateImagesResponse, *, model: str) -> ImageResult:
    images: list[bytes] = []
    filtered: list[str] = []
    revised_prompt = ""
    for generated in response.generated_images or []:
        data = generated.image.image_bytes if generated.image else None
        if data:
            images.append(data)
            revised_prompt = revised_prompt or generated.enhanced_prompt or ""
        elif generated.rai_filtered_reason:
            filtered.append(trimmed(generated.rai_filtered_reason))
        else:
            raise _bad_response()
    if not images:
        if filtered:
            message = _(
                "The image service's safety filter withheld every image. Please describe "
                "the image differently and try again. (The service said: %(reason)s)"
            ) % {"reason": filtered[0]}
        else:  # Imagen sends no predictions at all when it withheld every image unsaid
            message = _(
                "The image service's safety filter withheld every image. "
                "Please describe the image differently and try again."
            )
        raise ProviderError("content_filter", message)
    return ImageResult(images=images, model=model, filtered=filtered, revised_prompt=revised_prompt)


def _provider_error(exc: Exception, *, model: str) -> ProviderError:
    """What to tell the person about `exc`."""
    if isinstance(exc, errors.APIError):
        error = _status_error(exc, model=model)
        headers = getattr(exc.response, "headers", None)
        wait = retry_after(headers) if headers is not None else None
        if wait is not None:
            error.retry_after = wait  # type: ignore[attr-defined]
        return error
    if isinstance(exc, TIMEOUT_ERRORS):
        return timeout_error()
    if isinstance(exc, google.auth.exceptions.GoogleAuthError):
        return ProviderError(
            "provider_auth",
            _("The model service refused our credentials. Please tell the site administrator."),
        )
    if isinstance(exc, CONNECT_ERRORS):
        return unreachable_error()
    if isinstance(exc, TRANSPORT_ERRORS):
        # Nothing of a broken answer is kept, so another attempt is worth making:
        # hence a code that `is_retryable` accepts.
        return ProviderError(
            "provider_unreachable",
            _("The connection to the model service broke off before the image was finished."),
        )
    return _bad_response()


def _status_error(exc: errors.APIError, *, model: str) -> ProviderError:
    message = exc.message or str(exc)
    # A prompt Imagen refuses outright is a 400 that names the Responsible AI practices.
    if exc.code == 400 and "responsible ai" in message.lower():
        return ProviderError(
            "content_filter",
            _(
                "The image service's safety filter refused this request. Please describe "
                "the image differently and try again. (The service said: %(reason)s)"
            )
            % {"reason": trimmed(message)},
        )
    return status_error(exc.code or 500, message, model=model)


def _bad_response() -> ProviderError:
    return ProviderError(
        "bad_response", _("The model service sent an image that could not be read.")
    )
