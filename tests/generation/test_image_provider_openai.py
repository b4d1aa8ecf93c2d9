"""The OpenAI image provider against a local server speaking the Images API."""

from __future__ import annotations

import base64
import io
import json

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
from generation.providers.openai_images import OpenAIImageProvider
from tests.fakeservers.openai_server import (
    MODERATION_ERROR,
    MODERATION_MESSAGE,
    Behaviour,
    OpenAIFakeServer,
    partial_png,
    png,
)

REQUEST = ImageRequest(prompt="A lighthouse at dawn, watercolour.", language="en")


@pytest.fixture
def server():
    with OpenAIFakeServer() as fake:
        yield fake


@pytest.fixture
def provider(server, monkeypatch, settings):
    # The SDK finds the server the way a deployment would: through its environment.
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    settings.STUDIO_OPENAI_IMAGE_MODEL = "gpt-image-test"
    settings.STUDIO_OPENAI_ADVANCED_IMAGE_MODEL = ""
    settings.STUDIO_IMAGE_PARTIAL_PREVIEWS = 2
    settings.STUDIO_IMAGE_REQUEST_TIMEOUT = 5.0
    settings.STUDIO_PROVIDER_CONNECT_TIMEOUT = 2.0
    return OpenAIImageProvider()


def draw(
    provider: OpenAIImageProvider, request: ImageRequest = REQUEST
) -> tuple[ImageResult, list[ImagePreview]]:
    previews: list[ImagePreview] = []
    result = provider.generate(request, on_preview=previews.append)
    return result, previews


def draw_until_error(
    provider: OpenAIImageProvider, request: ImageRequest = REQUEST
) -> tuple[ProviderError, list[ImagePreview]]:
    previews: list[ImagePreview] = []
    with pytest.raises(ProviderError) as caught:
        provider.generate(request, on_preview=previews.append)
    return caught.value, previews


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_streams_one_image_with_its_partial_renderings_in_order(provider, server):
    result, previews = draw(provider)
    [image] = result.images
    assert decoded(image).size == (64, 64)
    assert decoded(image).format == "PNG"
    assert image == png()
    assert result.model == "gpt-image-test"
    assert result.filtered == []
    assert [(preview.index, preview.step) for preview in previews] == [(0, 1), (0, 2)]
    assert [preview.data for preview in previews] == [partial_png(0), partial_png(1)]
    [request] = server.requests
    assert request.path == "/v1/images/generations"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.body == {
        "model": "gpt-image-test",
        "prompt": REQUEST.prompt,
        "n": 1,
        "size": "1024x1024",
        "output_format": "png",
        "stream": True,
        "partial_images": 2,
    }


def test_the_negative_prompt_is_added_to_the_prompt_as_an_avoid_line(provider, server):
    request = ImageRequest(prompt="A quiet harbour.", negative_prompt="people,\n  text")
    draw(provider, request)
    assert server.requests[0].body["prompt"] == "A quiet harbour.\n\nAvoid: people, text"


@pytest.mark.parametrize(
    ("aspect_ratio", "size"),
    [
        ("1:1", "1024x1024"),
        ("16:9", "1536x1024"),
        ("4:3", "1536x1024"),
        ("9:16", "1024x1536"),
        ("3:4", "1024x1536"),
    ],
)
def test_each_aspect_ratio_asks_for_the_nearest_standard_size(provider, server, aspect_ratio, size):
    draw(provider, ImageRequest(prompt="A tree.", aspect_ratio=aspect_ratio))
    assert server.requests[0].body["size"] == size


def test_several_images_with_previews_take_one_streamed_request_each(provider, server):
    result, previews = draw(provider, ImageRequest(prompt="Three logos.", count=3))
    assert len(result.images) == 3
    assert all(decoded(image).size == (64, 64) for image in result.images)
    assert [(preview.index, preview.step) for preview in previews] == [
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
    ]
    assert len(server.requests) == 3
    assert all(request.body["n"] == 1 for request in server.requests)
    assert all(request.body["stream"] is True for request in server.requests)


def test_without_previews_one_plain_request_asks_for_every_image(provider, server, settings):
    settings.STUDIO_IMAGE_PARTIAL_PREVIEWS = 0
    result, previews = draw(provider, ImageRequest(prompt="Two icons.", count=2))
    assert [decoded(image).size for image in result.images] == [(64, 64), (64, 64)]
    assert previews == []
    [request] = server.requests
    assert request.body["n"] == 2
    assert "stream" not in request.body
    assert "partial_images" not in request.body


def test_the_configured_image_is_returned_as_sent(provider, server):
    picture = png(32, 16, (200, 10, 10))
    server.enqueue(Behaviour(image=picture, partial_images=0))
    result, previews = draw(provider)
    assert result.images == [picture]
    assert decoded(result.images[0]).size == (32, 16)
    assert previews == []


def test_the_advanced_tier_uses_the_advanced_model_when_there_is_one(provider, server, settings):
    advanced = ImageRequest(prompt="A poster.", tier="advanced")
    draw(provider, advanced)
    settings.STUDIO_OPENAI_ADVANCED_IMAGE_MODEL = "gpt-image-test-pro"
    result, _previews = draw(provider, advanced)
    draw(provider, REQUEST)
    assert [request.body["model"] for request in server.requests] == [
        "gpt-image-test",
        "gpt-image-test-pro",
        "gpt-image-test",
    ]
    assert result.model == "gpt-image-test-pro"
    assert provider.label == "gpt-image-test"


def test_without_a_key_a_placeholder_is_sent_for_keyless_local_servers(
    server, monkeypatch, settings
):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    draw(OpenAIImageProvider())
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_a_429_is_reported_with_its_retry_after_and_not_retried_here(provider, server):
    server.enqueue(Behaviour(status=429, headers={"Retry-After": "7"}))
    error, previews = draw_until_error(provider)
    assert error.code == "rate_limited"
    assert retry_after_of(error) == 7
    assert is_retryable(error)
    assert previews == []
    assert len(server.requests) == 1
    # The next attempt (the task's) goes through.
    result, _previews = draw(provider)
    assert len(result.images) == 1
    assert len(server.requests) == 2


def test_a_server_error_is_retryable_and_not_retried_here(provider, server):
    server.enqueue(Behaviour(status=500))
    error, _previews = draw_until_error(provider)
    assert error.code == "provider_unavailable"
    assert is_retryable(error)
    assert retry_after_of(error) is None
    assert len(server.requests) == 1


def test_a_moderation_refusal_is_a_content_filter_failure_not_worth_retrying(provider, server):
    server.enqueue(
        Behaviour(
            status=400,
            error_code="moderation_blocked",
            error_type="image_generation_user_error",
            error_message=MODERATION_MESSAGE,
        )
    )
    error, _previews = draw_until_error(provider)
    assert error.code == "content_filter"
    assert "safety" in error.message
    assert "req_" not in error.message
    assert not is_retryable(error)
    assert len(server.requests) == 1


def test_a_moderation_error_event_in_the_stream_is_a_content_filter_failure(provider, server):
    server.enqueue(Behaviour(stream_error=MODERATION_ERROR))
    error, previews = draw_until_error(provider)
    assert error.code == "content_filter"
    assert not is_retryable(error)
    assert [preview.step for preview in previews] == [1, 2]
    assert len(server.requests) == 1


def test_another_error_event_in_the_stream_quotes_the_service(provider, server):
    server.enqueue(
        Behaviour(
            stream_error={
                "message": "The image could not be rendered.",
                "type": "image_generation_user_error",
                "param": None,
                "code": "render_failed",
            }
        )
    )
    error, _previews = draw_until_error(provider)
    assert error.code == "provider_error"
    assert "The image could not be rendered." in error.message


def test_a_stream_that_dies_midway_is_a_retryable_failure(provider, server):
    server.enqueue(Behaviour(die_after=1))
    error, previews = draw_until_error(provider)
    assert error.code == "provider_unreachable"
    assert is_retryable(error)
    assert [preview.step for preview in previews] == [1]
    assert len(server.requests) == 1


@pytest.mark.parametrize("previews", [0, 2])
def test_an_image_that_is_not_base64_is_a_bad_response(provider, server, settings, previews):
    settings.STUDIO_IMAGE_PARTIAL_PREVIEWS = previews
    server.enqueue(Behaviour(image_b64="this is not base64!"))
    error, _previews = draw_until_error(provider)
    assert error.code == "bad_response"
    assert not is_retryable(error)
    assert len(server.requests) == 1


def test_a_rejected_key_is_an_auth_error_not_worth_retrying(provider, server):
    server.enqueue(Behaviour(status=401))
    error, _previews = draw_until_error(provider)
    assert error.code == "provider_auth"
    assert "sk-" not in error.message
    assert not is_retryable(error)


def test_a_service_slower_than_the_request_timeout_is_a_retryable_timeout(
    provider, server, settings
):
    settings.STUDIO_IMAGE_REQUEST_TIMEOUT = 0.3
    server.enqueue(Behaviour(first_token_delay=3))
    error, _previews = draw_until_error(provider)
    assert error.code == "timeout"
    assert is_retryable(error)
    assert len(server.requests) == 1


def test_an_unreachable_service_is_retryable(monkeypatch, settings, unused_tcp_port):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{unused_tcp_port}/v1")
    settings.STUDIO_PROVIDER_CONNECT_TIMEOUT = 2.0
    error, _previews = draw_until_error(OpenAIImageProvider())
    assert error.code == "provider_unreachable"
    assert is_retryable(error)


def test_a_failing_preview_callback_is_not_mistaken_for_a_service_failure(provider, server):
    def on_preview(preview: ImagePreview) -> None:
        raise RuntimeError("the event log is gone")

    with pytest.raises(RuntimeError, match="event log"):
        provider.generate(ImageRequest(prompt="Two maps.", count=2), on_preview=on_preview)
    # Neither retried nor carried on with the second image.
    assert len(server.requests) == 1


def test_the_fake_sends_the_stream_events_the_sdk_knows(provider, server):
    """The wire format itself: named events whose data carries every field of the SDK's models."""
    body = {"model": "m", "prompt": "p", "stream": True, "partial_images": 1, "size": "1024x1024"}
    reply = httpx.post(server.url + "/v1/images/generations", json=body).text
    blocks = [block for block in reply.split("\n\n") if block]
    assert [block.splitlines()[0] for block in blocks] == [
        "event: image_generation.partial_image",
        "event: image_generation.completed",
    ]
    partial, completed = (
        json.loads(block.splitlines()[1].removeprefix("data: ")) for block in blocks
    )
    assert set(partial) == {
        "type",
        "b64_json",
        "partial_image_index",
        "created_at",
        "size",
        "quality",
        "background",
        "output_format",
    }
    assert set(completed) == {
        "type",
        "b64_json",
        "created_at",
        "size",
        "quality",
        "background",
        "output_format",
        "usage",
    }
    assert base64.b64decode(completed["b64_json"]) == png()


def test_the_setting_names_this_provider():
    assert import_string(IMAGE_PROVIDERS["openai"]) is OpenAIImageProvider
