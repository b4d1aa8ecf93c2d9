"""The Vertex AI Gemini provider against a local server speaking Vertex AI's streaming protocol."""

from __future__ import annotations

import asyncio
import time

import google.auth.exceptions
import pytest
from asgiref.sync import sync_to_async

from generation.events.log import InProcessEventLog
from generation.models import Generation
from generation.providers.base import TextRequest, TextResult
from generation.providers.vertex import VertexGeminiProvider, normalise_finish_reason
from generation.text.runs import run_generation
from tests.factories import GenerationFactory
from tests.fakeservers.credentials import FakeCredentials
from tests.fakeservers.openai_server import default_tokens
from tests.fakeservers.vertex_server import Behaviour, VertexFakeServer
from tests.support.provider_streams import REQUEST, collect, collect_until_error, wait_for

TOKENS = default_tokens(30)
STREAM_PATH = (
    "/v1beta1/projects/studio-test/locations/us-central1"
    "/publishers/google/models/{model}:streamGenerateContent"
)


@pytest.fixture
def server():
    with VertexFakeServer(Behaviour(tokens=TOKENS)) as fake:
        yield fake


@pytest.fixture
def credentials():
    return FakeCredentials()


@pytest.fixture
def vertex_settings(settings):
    settings.STUDIO_VERTEX_MODEL = "gemini-test"
    settings.STUDIO_VERTEX_ADVANCED_MODEL = ""
    settings.STUDIO_VERTEX_BASE_URL = ""
    settings.STUDIO_MAX_OUTPUT_TOKENS = 512
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 5.0
    settings.STUDIO_PROVIDER_RETRIES = 2
    return settings


@pytest.fixture
def provider(server, credentials, vertex_settings):
    return VertexGeminiProvider(
        credentials=credentials, project="studio-test", location="us-central1", base_url=server.url
    )


async def test_streams_the_text_exactly_and_takes_usage_from_the_usage_metadata(provider, server):
    text, result = await collect(provider)
    assert text == "".join(TOKENS)
    assert result == TextResult(finish_reason="stop", input_tokens=17, output_tokens=30)
    [request] = server.requests
    assert request.path == STREAM_PATH.format(model="gemini-test")
    assert request.query == "alt=sse"
    assert request.body["contents"] == [{"role": "user", "parts": [{"text": REQUEST.prompt}]}]
    assert request.body["systemInstruction"]["parts"] == [{"text": REQUEST.system}]
    assert request.body["generationConfig"] == {"maxOutputTokens": 512}
    assert "tools" not in request.body


async def test_the_base_url_project_and_location_can_come_from_settings_and_environment(
    server, credentials, vertex_settings, monkeypatch
):
    vertex_settings.STUDIO_VERTEX_BASE_URL = server.url
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    await collect(VertexGeminiProvider(credentials=credentials))
    assert server.requests[0].path.startswith(
        "/v1beta1/projects/env-project/locations/europe-west4/"
    )


async def test_a_gateway_without_a_project_still_gets_the_usual_path(
    server, credentials, vertex_settings, monkeypatch
):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    await collect(VertexGeminiProvider(credentials=credentials, base_url=server.url))
    assert server.requests[0].path.startswith("/v1beta1/projects/local/locations/global/")


async def test_japanese_text_arrives_intact(provider, server):
    tokens = ["佐藤", "様", "、", "先日", "は", "ありがとう", "ございました", "。", "\u2028", "🙇"]
    server.enqueue(Behaviour(tokens=tokens))
    text, result = await collect(provider)
    assert text == "".join(tokens)
    assert result.output_tokens == len(tokens)


async def test_max_tokens_is_a_length_finish(provider, server):
    server.enqueue(Behaviour(tokens=["Part", " of it"], finish_reason="MAX_TOKENS"))
    text, result = await collect(provider)
    assert (text, result.finish_reason) == ("Part of it", "length")


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
async def test_a_filtered_answer_keeps_its_text_and_says_content_filter(provider, server, reason):
    server.enqueue(Behaviour(tokens=["Up to", " here"], finish_reason=reason))
    text, result = await collect(provider)
    assert (text, result.finish_reason) == ("Up to here", "content_filter")


def test_finish_reasons_are_normalised():
    assert normalise_finish_reason("STOP") == "stop"
    assert normalise_finish_reason("MAX_TOKENS") == "length"
    assert normalise_finish_reason("SPII") == "content_filter"
    assert normalise_finish_reason("MALFORMED_FUNCTION_CALL") == "malformed_function_call"


async def test_a_blocked_prompt_is_a_content_filter_finish_without_text(provider, server):
    server.enqueue(Behaviour(block_reason="PROHIBITED_CONTENT"))
    text, result = await collect(provider)
    assert text == ""
    assert result.finish_reason == "content_filter"
    assert result.input_tokens == 17


async def test_a_429_is_retried_by_the_sdk(provider, server):
    server.enqueue(Behaviour(status=429))
    text, _result = await collect(provider)
    assert text == "".join(TOKENS)
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.45  # the first backoff is 0.5 s


async def test_a_server_error_is_retried_by_the_sdk(provider, server):
    server.enqueue(Behaviour(status=503))
    text, _result = await collect(provider)
    assert text == "".join(TOKENS)
    assert len(server.requests) == 2


async def test_rate_limiting_that_outlasts_the_retries_is_reported_without_a_long_wait(
    provider, server, vertex_settings
):
    vertex_settings.STUDIO_PROVIDER_RETRIES = 1
    limited = Behaviour(status=429, headers={"Retry-After": "3600"})
    server.enqueue(limited, limited)
    started = time.monotonic()
    _deltas, error = await collect_until_error(provider)
    assert time.monotonic() - started < 2
    assert error.code == "rate_limited"
    assert len(server.requests) == 2


async def test_rejected_credentials_are_an_auth_error_and_not_retried(provider, server):
    server.enqueue(Behaviour(status=401))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "provider_auth"
    assert len(server.requests) == 1


async def test_an_unknown_model_is_named(provider, server):
    server.enqueue(Behaviour(status=404))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "model_not_found"
    assert "gemini-test" in error.message


async def test_a_bad_request_quotes_the_service(provider, server):
    message = "The input token count (2000000) exceeds the maximum number of tokens allowed."
    server.enqueue(Behaviour(status=400, error_message=message))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "bad_request"
    assert message in error.message


async def test_the_credential_token_is_sent_and_refreshed_when_it_expires(
    provider, server, credentials
):
    await collect(provider)
    await collect(provider)
    credentials.expire()
    await collect(provider)
    tokens = [request.headers["authorization"] for request in server.requests]
    assert tokens == ["Bearer fake-token-1", "Bearer fake-token-1", "Bearer fake-token-2"]
    assert credentials.refreshes == 2


async def test_a_credential_that_cannot_refresh_is_an_auth_error(server, vertex_settings):
    class RevokedCredentials(FakeCredentials):
        def refresh(self, request):
            raise google.auth.exceptions.RefreshError("invalid_grant: Token has been revoked.")

    provider = VertexGeminiProvider(
        credentials=RevokedCredentials(), project="studio-test", base_url=server.url
    )
    _deltas, error = await collect_until_error(provider)
    assert error.code == "provider_auth"
    assert server.requests == []


async def test_a_slow_first_token_within_the_read_timeout_still_streams(
    provider, server, vertex_settings
):
    vertex_settings.STUDIO_PROVIDER_READ_TIMEOUT = 1.0
    server.enqueue(Behaviour(tokens=["Late", " but", " fine"], first_token_delay=0.3))
    text, _result = await collect(provider)
    assert text == "Late but fine"


async def test_a_first_token_slower_than_the_read_timeout_is_a_timeout(
    provider, server, vertex_settings
):
    vertex_settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.1
    server.enqueue(Behaviour(tokens=["never"], first_token_delay=2))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "timeout"


async def test_a_stream_that_dies_after_some_tokens_fails_after_them_without_a_retry(
    provider, server
):
    server.enqueue(Behaviour(tokens=TOKENS, die_after=5))
    deltas, error = await collect_until_error(provider)
    assert deltas == TOKENS[:5]
    assert error.code == "stream_interrupted"
    assert len(server.requests) == 1


async def test_a_stream_that_ends_without_a_finish_reason_is_incomplete(provider, server):
    server.enqueue(Behaviour(tokens=["Half", " an answer"], finish_reason=None))
    deltas, error = await collect_until_error(provider)
    assert deltas == ["Half", " an answer"]
    assert error.code == "incomplete_stream"


async def test_cancelling_the_consumer_closes_the_upstream_connection(provider, server):
    server.enqueue(Behaviour(tokens=default_tokens(500), token_interval=0.01))
    received = asyncio.Event()

    async def consume():
        count = 0
        async for _item in provider.stream(REQUEST):
            count += 1
            if count == 3:
                received.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(received.wait(), 2)
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: server.disconnects, within=1.0)
    [disconnect] = server.disconnects
    assert disconnect.at - cancelled_at < 1.0
    assert server.in_flight == 0


async def test_closing_the_stream_early_closes_the_upstream_connection(provider, server):
    """The SDK's stream is a chain of generators; closing ours must reach the socket."""
    server.enqueue(Behaviour(tokens=default_tokens(500), token_interval=0.01))
    stream = provider.stream(REQUEST)
    await anext(stream)
    await stream.aclose()
    await wait_for(lambda: server.disconnects, within=1.0)


async def test_the_advanced_tier_uses_the_advanced_model(provider, server, vertex_settings):
    vertex_settings.STUDIO_VERTEX_ADVANCED_MODEL = "gemini-test-pro"
    await collect(provider, TextRequest(system="", prompt="Plan.", language="en", tier="advanced"))
    assert server.requests[0].path == STREAM_PATH.format(model="gemini-test-pro")


async def test_a_continuation_sends_the_cut_off_answer_as_the_model_turn(provider, server):
    request = TextRequest(system="", prompt="Write.", language="en", continue_from="Dear Ms")
    await collect(provider, request)
    contents = server.requests[0].body["contents"]
    assert [content["role"] for content in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [{"text": "Dear Ms"}]
    assert "systemInstruction" not in server.requests[0].body


async def test_one_provider_serves_streams_on_several_event_loops(provider, server):
    here = await collect(provider)
    elsewhere = await asyncio.to_thread(asyncio.run, collect(provider))
    assert here == elsewhere


@pytest.mark.django_db(transaction=True)
async def test_the_runner_stores_a_streamed_answer(provider, server):
    server.enqueue(Behaviour(tokens=["Up to", " here"], finish_reason="SAFETY"))
    generation = await sync_to_async(GenerationFactory)()
    await run_generation(
        generation.pk, log=InProcessEventLog(retention_seconds=60), provider=provider
    )
    generation = await Generation.objects.aget(pk=generation.pk)
    assert generation.status == Generation.Status.COMPLETED
    assert generation.output == "Up to here"
    assert generation.finish_reason == "content_filter"
    assert (generation.input_tokens, generation.output_tokens) == (17, 2)
