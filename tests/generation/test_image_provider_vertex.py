"""The Imagen provider against a local server speaking Vertex AI's :predict protocol."""

from __future__ import annotations

import io

import google.auth.exceptions
import httpx
import pytest
from django.utils.module_loading import import_string
from PIL import Image

from generation.providers.base import ProviderError
from generation.providers.images import (
    IMAGE_PROVIDERS,
    ImagePreview,
    ImageRequest,
    ImageResult,
    is_retryable,
    retry_after_of,
)
from generation.providers.vertex_images import VertexImagenProvider
from tests.fakeservers.credentials import FakeCredentials
from tests.fakeservers.openai_server import png
from tests.fakeservers.vertex_server import RAI_REASON, Behaviour, VertexFakeServer

# google-genai marks generate_images deprecated (Imagen is giving way to Gemini
# image models); the provider is built on it all the same, so the tests say so once.
pytestmark = pytest.mark.filterwarnings("ignore:The generate_images method is deprecated")

PREDICT_PATH = (
    "/v1beta1/projects/studio-test/locations/us-central1/publishers/google/models/{model}:predict"
)
REQUEST = ImageRequest(prompt="A lighthouse at dawn, watercolour.", language="en")


@pytest.fixture
def server():
    with VertexFakeServer() as fake:
        yield fake


@pytest.fixture
def credentials():
    return FakeCredentials()


@pytest.fixture
def vertex_settings(settings):
    settings.STUDIO_VERTEX_IMAGE_MODEL = "imagen-test"
    settings.STUDIO_VERTEX_ADVANCED_IMAGE_MODEL = ""
    settings.STUDIO_VERTEX_BASE_URL = ""
    settings.STUDIO_IMAGE_REQUEST_TIMEOUT = 5.0
    return settings


@pytest.fixture
def provider(server, credentials, vertex_settings):
    return VertexImagenProvider(
        credentials=credentials, project="studio-test", location="us-central1", base_url=server.url
    )


def draw(
    provider: VertexImagenProvider, request: ImageRequest = REQUEST
) -> tuple[ImageResult, list[ImagePreview]]:
    previews: list[ImagePreview] = []
    result = provider.generate(request, on_preview=previews.append)
    return result, previews


def draw_until_error(
    provider: VertexImagenProvider, request: ImageRequest = REQUEST
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.generate(request, on_preview=lambda preview: None)
    return caught.value


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_draws_every_image_in_one_request_without_previews(provider, server):
    request = ImageRequest(
        prompt="Two mugs on a desk.", negative_prompt="text,\n  logos", aspect_ratio="16:9", count=2
    )
    result, previews = draw(provider, request)
    assert [decoded(image).size for image in result.images] == [(64, 64), (64, 64)]
    assert all(decoded(image).format == "PNG" for image in result.images)
    assert result.model == "imagen-test"
    assert result.filtered == []
    assert previews == []
    [sent] = server.requests
    assert sent.path == PREDICT_PATH.format(model="imagen-test")
    assert sent.headers["authorization"] == "Bearer fake-token-1"
    assert sent.body == {
        "instances": [{"prompt": "Two mugs on a desk."}],
        "parameters": {
            "sampleCount": 2,
            "aspectRatio": "16:9",
            "negativePrompt": "text, logos",
            "includeRaiReason": True,
            "outputOptions": {"mimeType": "image/png"},
        },
    }


def test_without_a_negative_prompt_none_is_sent(provider, server):
    draw(provider)
    assert "negativePrompt" not in server.requests[0].body["parameters"]


def test_the_request_timeout_is_also_the_servers_deadline(provider, server, vertex_settings):
    vertex_settings.STUDIO_IMAGE_REQUEST_TIMEOUT = 90.0
    draw(provider)
    assert server.requests[0].headers["x-server-timeout"] == "90"


def test_the_image_is_returned_as_sent_with_imagens_rewritten_prompt(provider, server):
    picture = png(48, 27, (10, 200, 10))
    rewrite = "A watercolour lighthouse on a rocky shore at dawn, soft pink light."
    server.enqueue(Behaviour(image=picture, enhanced_prompt=rewrite))
    result, _previews = draw(provider)
    assert result.images == [picture]
    assert result.revised_prompt == rewrite


def test_images_the_filter_withheld_are_listed_with_their_reasons(provider, server):
    server.enqueue(Behaviour(filtered=[RAI_REASON]))
    result, _previews = draw(provider, ImageRequest(prompt="Three faces.", count=3))
    assert len(result.images) == 2
    assert result.filtered == [RAI_REASON]
    assert len(server.requests) == 1


def test_when_every_image_is_withheld_it_is_a_content_filter_failure_quoting_the_reason(
    provider, server
):
    server.enqueue(Behaviour(filtered=[RAI_REASON, RAI_REASON]))
    error = draw_until_error(provider, ImageRequest(prompt="Two faces.", count=2))
    assert error.code == "content_filter"
    assert "58061214" in error.message
    assert not is_retryable(error)
    assert len(server.requests) == 1


def test_a_long_filter_reason_is_trimmed(provider, server):
    server.enqueue(Behaviour(filtered=["Withheld. " * 100]))
    error = draw_until_error(provider)
    assert error.code == "content_filter"
    assert "…" in error.message
    assert len(error.message) < 600


def test_a_prompt_refused_outright_is_a_content_filter_failure(provider, server):
    message = (
        "Image generation failed with the following error: The prompt could not be submitted. "
        "This prompt contains sensitive words that violate Google's Responsible AI practices. "
        "Try rephrasing the prompt. Support codes: 42876398"
    )
    server.enqueue(Behaviour(status=400, error_message=message))
    error = draw_until_error(provider)
    assert error.code == "content_filter"
    assert "42876398" in error.message
    assert not is_retryable(error)


def test_another_bad_request_quotes_the_service(provider, server):
    server.enqueue(Behaviour(status=400, error_message="Unsupported aspect ratio."))
    error = draw_until_error(provider)
    assert error.code == "bad_request"
    assert "Unsupported aspect ratio." in error.message


def test_a_429_is_reported_with_its_retry_after_and_not_retried_here(provider, server):
    server.enqueue(Behaviour(status=429, headers={"Retry-After": "30"}))
    error = draw_until_error(provider)
    assert error.code == "rate_limited"
    assert retry_after_of(error) == 30
    assert is_retryable(error)
    assert len(server.requests) == 1
    # The next attempt (the task's) goes through.
    result, _previews = draw(provider)
    assert len(result.images) == 1
    assert len(server.requests) == 2


def test_a_server_error_is_retryable_and_not_retried_here(provider, server):
    server.enqueue(Behaviour(status=500))
    error = draw_until_error(provider)
    assert error.code == "provider_unavailable"
    assert is_retryable(error)
    assert retry_after_of(error) is None
    assert len(server.requests) == 1


def test_a_connection_dropped_before_the_answer_is_a_retryable_failure(provider, server):
    server.enqueue(Behaviour(die_after=0))
    error = draw_until_error(provider)
    assert error.code == "provider_unreachable"
    assert is_retryable(error)
    assert len(server.requests) == 1


def test_an_image_that_is_not_base64_is_a_bad_response(provider, server):
    server.enqueue(Behaviour(image_b64="this is not base64!"))
    error = draw_until_error(provider)
    assert error.code == "bad_response"
    assert not is_retryable(error)


def test_rejected_credentials_are_an_auth_error(provider, server):
    server.enqueue(Behaviour(status=401))
    error = draw_until_error(provider)
    assert error.code == "provider_auth"
    assert not is_retryable(error)


def test_an_unknown_model_is_named(provider, server):
    server.enqueue(Behaviour(status=404))
    error = draw_until_error(provider)
    assert error.code == "model_not_found"
    assert "imagen-test" in error.message


def test_a_credential_that_cannot_refresh_is_an_auth_error(server, vertex_settings):
    class RevokedCredentials(FakeCredentials):
        def refresh(self, request):
            raise google.auth.exceptions.RefreshError("invalid_grant: Token has been revoked.")

    provider = VertexImagenProvider(
        credentials=RevokedCredentials(), project="studio-test", base_url=server.url
    )
    error = draw_until_error(provider)
    assert error.code == "provider_auth"
    assert server.requests == []


def test_what_is_not_a_service_failure_passes_through_for_the_task(server, vertex_settings):
    """The task's soft time limit, say, must reach the task as itself."""

    class TimeLimit(Exception):
        pass

    class InterruptedCredentials(FakeCredentials):
        def refresh(self, request):
            raise TimeLimit

    provider = VertexImagenProvider(
        credentials=InterruptedCredentials(), project="studio-test", base_url=server.url
    )
    with pytest.raises(TimeLimit):
        provider.generate(REQUEST, on_preview=lambda preview: None)


def test_a_service_slower_than_the_request_timeout_is_a_retryable_timeout(
    provider, server, vertex_settings
):
    vertex_settings.STUDIO_IMAGE_REQUEST_TIMEOUT = 0.3
    server.enqueue(Behaviour(first_token_delay=3))
    error = draw_until_error(provider)
    assert error.code == "timeout"
    assert is_retryable(error)
    assert len(server.requests) == 1


def test_an_unreachable_service_is_retryable(credentials, vertex_settings, unused_tcp_port):
    provider = VertexImagenProvider(
        credentials=credentials,
        project="studio-test",
        base_url=f"http://127.0.0.1:{unused_tcp_port}",
    )
    error = draw_until_error(provider)
    assert error.code == "provider_unreachable"
    assert is_retryable(error)


def test_the_advanced_tier_uses_the_advanced_model_when_there_is_one(
    provider, server, vertex_settings
):
    advanced = ImageRequest(prompt="A poster.", tier="advanced")
    draw(provider, advanced)
    vertex_settings.STUDIO_VERTEX_ADVANCED_IMAGE_MODEL = "imagen-test-ultra"
    result, _previews = draw(provider, advanced)
    assert [request.path for request in server.requests] == [
        PREDICT_PATH.format(model="imagen-test"),
        PREDICT_PATH.format(model="imagen-test-ultra"),
    ]
    assert result.model == "imagen-test-ultra"
    assert provider.label == "imagen-test"


@pytest.mark.parametrize(
    ("location", "expected"),
    [("europe-west4", "europe-west4"), ("global", "us-central1"), (None, "us-central1")],
)
def test_the_region_comes_from_the_environment_but_never_global(
    server, credentials, vertex_settings, monkeypatch, location, expected
):
    vertex_settings.STUDIO_VERTEX_BASE_URL = server.url
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    if location is None:
        monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    else:
        monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", location)
    draw(VertexImagenProvider(credentials=credentials))
    assert server.requests[0].path.startswith(
        f"/v1beta1/projects/env-project/locations/{expected}/"
    )


def test_a_gateway_without_a_project_still_gets_the_usual_path(
    server, credentials, vertex_settings, monkeypatch
):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    draw(VertexImagenProvider(credentials=credentials, base_url=server.url))
    assert server.requests[0].path.startswith("/v1beta1/projects/local/locations/us-central1/")


def test_the_fake_refuses_a_request_imagen_would_refuse(server):
    url = server.url + PREDICT_PATH.format(model="imagen-test")
    body = {"instances": [{"prompt": "A cat."}], "parameters": {"sampleCount": 9}}
    reply = httpx.post(url, json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_the_setting_names_this_provider():
    assert import_string(IMAGE_PROVIDERS["vertex"]) is VertexImagenProvider
