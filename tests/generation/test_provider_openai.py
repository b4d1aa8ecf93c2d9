"""The OpenAI provider against a local server speaking OpenAI's streaming protocol."""

from __future__ import annotations

import asyncio
import email.utils
import json
import resource
import time

import pytest
from asgiref.sync import sync_to_async

from generation.events.log import InProcessEventLog
from generation.models import Generation
from generation.providers.base import (
    TextRequest,
    TextResult,
    chat_messages,
    estimate_tokens,
)
from generation.providers.failures import retry_after
from generation.providers.openai import OpenAIChatProvider
from generation.text.runs import run_generation
from tests.factories import GenerationFactory
from tests.fakeservers.openai_server import Behaviour, OpenAIFakeServer, default_tokens
from tests.support.provider_streams import REQUEST, collect, collect_until_error, wait_for

TOKENS = default_tokens(30)


@pytest.fixture
def server():
    with OpenAIFakeServer(Behaviour(tokens=TOKENS)) as fake:
        yield fake


@pytest.fixture
def provider(server, monkeypatch, settings):
    # The SDK finds the server the way a deployment would: through its environment.
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    settings.STUDIO_OPENAI_MODEL = "gpt-test"
    settings.STUDIO_OPENAI_ADVANCED_MODEL = ""
    settings.STUDIO_MAX_OUTPUT_TOKENS = 512
    settings.STUDIO_PROVIDER_CONNECT_TIMEOUT = 2.0
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 5.0
    settings.STUDIO_PROVIDER_RETRIES = 2
    settings.STUDIO_PROVIDER_MAX_RETRY_AFTER = 20.0
    return OpenAIChatProvider()


async def test_streams_the_text_exactly_and_takes_usage_from_the_usage_chunk(provider, server):
    text, result = await collect(provider)
    assert text == "".join(TOKENS)
    assert result == TextResult(finish_reason="stop", input_tokens=21, output_tokens=30)
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.body["model"] == "gpt-test"
    assert request.body["messages"] == chat_messages(REQUEST)
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["max_completion_tokens"] == 512
    assert server.completed == 1


async def test_no_output_limit_is_sent_when_it_is_zero(provider, server, settings):
    settings.STUDIO_MAX_OUTPUT_TOKENS = 0
    await collect(provider)
    assert "max_completion_tokens" not in server.requests[0].body


async def test_without_a_key_a_placeholder_is_sent_for_keyless_local_servers(
    server, monkeypatch, settings
):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    text, _result = await collect(OpenAIChatProvider())
    assert text == "".join(TOKENS)
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


async def test_japanese_text_arrives_intact(provider, server):
    tokens = ["佐藤", "様", "、", "先日", "は", "ありがとう", "ございました", "。", "\u2028", "🙇"]
    server.enqueue(Behaviour(tokens=tokens))
    text, result = await collect(provider)
    assert text == "佐藤様、先日はありがとうございました。\u2028🙇"
    assert result.output_tokens == len(tokens)


@pytest.mark.parametrize("finish_reason", ["length", "content_filter"])
async def test_the_finish_reason_is_passed_on_with_the_text_so_far(provider, server, finish_reason):
    server.enqueue(Behaviour(tokens=["Part", " of it"], finish_reason=finish_reason))
    text, result = await collect(provider)
    assert (text, result.finish_reason) == ("Part of it", finish_reason)


async def test_without_a_usage_chunk_the_tokens_are_estimated(provider, server):
    server.enqueue(Behaviour(tokens=["Short", " answer", "."], include_usage=False))
    _text, result = await collect(provider)
    assert result.input_tokens == estimate_tokens(REQUEST.system + REQUEST.prompt)
    assert result.output_tokens == estimate_tokens("Short answer.")


async def test_a_429_is_retried_after_the_wait_its_retry_after_asks_for(provider, server):
    server.enqueue(Behaviour(status=429, headers={"Retry-After": "1"}))
    text, _result = await collect(provider)
    assert text == "".join(TOKENS)
    first, second = server.requests
    assert 0.95 <= second.received_at - first.received_at < 1.5


async def test_retry_after_ms_is_preferred_to_retry_after(provider, server):
    server.enqueue(Behaviour(status=429, headers={"retry-after-ms": "150", "Retry-After": "9"}))
    await collect(provider)
    first, second = server.requests
    assert 0.14 <= second.received_at - first.received_at < 0.6


def test_retry_after_is_read_as_seconds_milliseconds_or_an_http_date():
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert retry_after({"retry-after": "7"}) == 7
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert 58 <= retry_after({"retry-after": in_a_minute}) <= 60
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


async def test_a_server_error_is_retried_with_backoff(provider, server):
    server.enqueue(Behaviour(status=500))
    text, _result = await collect(provider)
    assert text == "".join(TOKENS)
    first, second = server.requests
    assert 0.2 <= second.received_at - first.received_at < 1.0  # 0.5 s, jittered down to half


async def test_a_retry_after_beyond_the_limit_is_reported_at_once(provider, server):
    server.enqueue(Behaviour(status=429, headers={"Retry-After": "120"}))
    started = time.monotonic()
    _deltas, error = await collect_until_error(provider)
    assert time.monotonic() - started < 0.5
    assert error.code == "rate_limited"
    assert "try again" in error.message
    assert len(server.requests) == 1


async def test_rate_limiting_that_outlasts_the_retries_is_reported(provider, server, settings):
    settings.STUDIO_PROVIDER_RETRIES = 1
    limited = Behaviour(status=429, headers={"retry-after-ms": "20"})
    server.enqueue(limited, limited)
    _deltas, error = await collect_until_error(provider)
    assert error.code == "rate_limited"
    assert len(server.requests) == 2


async def test_an_exhausted_quota_is_not_retried(provider, server):
    server.enqueue(Behaviour(status=429, error_code="insufficient_quota"))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "quota_exceeded"
    assert len(server.requests) == 1


async def test_a_rejected_key_is_an_auth_error_and_not_retried(provider, server):
    server.enqueue(Behaviour(status=401))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "provider_auth"
    assert "sk-" not in error.message
    assert len(server.requests) == 1


async def test_a_bad_request_quotes_the_service_and_is_not_retried(provider, server):
    message = "This model's maximum context length is 128000 tokens."
    server.enqueue(Behaviour(status=400, error_message=message, error_code="context_length"))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "bad_request"
    assert message in error.message
    assert len(server.requests) == 1


async def test_an_unknown_model_is_named(provider, server):
    server.enqueue(Behaviour(status=404))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "model_not_found"
    assert "gpt-test" in error.message


async def test_a_service_that_stays_down_is_reported_as_unavailable(provider, server, settings):
    settings.STUDIO_PROVIDER_RETRIES = 0
    server.enqueue(Behaviour(status=503))
    _deltas, error = await collect_until_error(provider)
    assert error.code == "provider_unavailable"


async def test_an_unreachable_service_is_reported(monkeypatch, settings, unused_tcp_port):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{unused_tcp_port}/v1")
    settings.STUDIO_PROVIDER_RETRIES = 1
    _deltas, error = await collect_until_error(OpenAIChatProvider())
    assert error.code == "provider_unreachable"


async def test_a_slow_first_token_within_the_read_timeout_still_streams(provider, server, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 1.0
    server.enqueue(Behaviour(tokens=["Late", " but", " fine"], first_token_delay=0.3))
    text, _result = await collect(provider)
    assert text == "Late but fine"
    assert len(server.requests) == 1


async def test_a_first_token_slower_than_the_read_timeout_is_a_timeout(provider, server, settings):
    settings.STUDIO_PROVIDER_READ_TIMEOUT = 0.1
    settings.STUDIO_PROVIDER_RETRIES = 1
    slow = Behaviour(tokens=["never"], first_token_delay=2)
    server.enqueue(slow, slow)
    _deltas, error = await collect_until_error(provider)
    assert error.code == "timeout"
    assert len(server.requests) == 2  # nothing had been shown, so it was tried again


async def test_a_stream_that_dies_after_some_tokens_fails_after_them_without_a_retry(
    provider, server
):
    server.enqueue(Behaviour(tokens=TOKENS, die_after=5))
    deltas, error = await collect_until_error(provider)
    assert deltas == TOKENS[:5]
    assert error.code == "stream_interrupted"
    assert len(server.requests) == 1


async def test_a_stream_that_dies_before_its_first_token_is_tried_again(provider, server):
    server.enqueue(Behaviour(die_after=0))
    text, _result = await collect(provider)
    assert text == "".join(TOKENS)
    assert len(server.requests) == 2


async def test_a_stream_that_ends_without_a_finish_reason_is_incomplete(provider, server):
    server.enqueue(Behaviour(tokens=["Half", " an answer"], finish_reason=None))
    deltas, error = await collect_until_error(provider)
    assert deltas == ["Half", " an answer"]
    assert error.code == "incomplete_stream"
    assert len(server.requests) == 1


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
    assert disconnect.request_index == 0
    assert disconnect.at - cancelled_at < 1.0
    assert server.in_flight == 0
    assert server.completed == 0


async def test_closing_the_stream_early_closes_the_upstream_connection(provider, server):
    server.enqueue(Behaviour(tokens=default_tokens(500), token_interval=0.01))
    stream = provider.stream(REQUEST)
    await anext(stream)
    await stream.aclose()
    await wait_for(lambda: server.disconnects, within=1.0)


async def test_the_advanced_tier_uses_the_advanced_model(provider, server, settings):
    advanced = TextRequest(system="", prompt="Plan it.", language="en", tier="advanced")
    await collect(provider, advanced)
    settings.STUDIO_OPENAI_ADVANCED_MODEL = "gpt-test-advanced"
    await collect(provider, advanced)
    await collect(provider, REQUEST)
    assert [r.body["model"] for r in server.requests] == [
        "gpt-test",
        "gpt-test-advanced",
        "gpt-test",
    ]
    assert provider.model_for("advanced") == "gpt-test-advanced"


async def test_a_continuation_sends_the_cut_off_answer_and_asks_to_go_on(provider, server):
    request = TextRequest(system="", prompt="Write.", language="en", continue_from="Dear Ms")
    await collect(provider, request)
    roles = [message["role"] for message in server.requests[0].body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert server.requests[0].body["messages"][1]["content"] == "Dear Ms"


async def test_one_provider_serves_streams_on_several_event_loops(provider, server):
    """The runner has a loop of its own; the SDK's connection pool must not be shared with it."""
    here = await collect(provider)
    elsewhere = await asyncio.to_thread(asyncio.run, collect(provider))
    assert here == elsewhere
    assert len(server.requests) == 2


async def test_concurrent_streams_each_get_their_own_answer(provider, server):
    server.default = Behaviour(tokens=default_tokens(5), first_token_delay=0.5)
    results = await asyncio.gather(*(collect(provider) for _ in range(100)))
    assert {text for text, _result in results} == {"".join(default_tokens(5))}
    # Streams overlap rather than queue (how many depends on how fast the SDK starts them).
    assert server.max_in_flight >= 50
    assert server.completed == 100


async def test_the_fake_server_holds_a_thousand_streams_at_once(server):
    """What the benchmark relies on, checked with bare sockets (the SDK would be the bottleneck)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2500:
        if hard != resource.RLIM_INFINITY and hard < 2500:
            pytest.skip("needs 2,500 open files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2500, hard))
    server.default = Behaviour(tokens=default_tokens(3), first_token_delay=1.5)
    body = json.dumps({"model": "m", "stream": True, "messages": []}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: fake\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(head + body)
        reply = await reader.read()  # to the end: the server closes the connection
        writer.close()
        return reply

    replies = await asyncio.gather(*(one() for _ in range(1000)))
    assert all(reply.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n") for reply in replies)
    assert server.max_in_flight == 1000
    assert server.completed == 1000


@pytest.mark.django_db(transaction=True)
async def test_the_runner_stores_a_streamed_answer(provider, server):
    generation = await sync_to_async(GenerationFactory)()
    await run_generation(
        generation.pk, log=InProcessEventLog(retention_seconds=60), provider=provider
    )
    generation = await Generation.objects.aget(pk=generation.pk)
    assert generation.status == Generation.Status.COMPLETED
    assert generation.output == "".join(TOKENS)
    assert (generation.input_tokens, generation.output_tokens) == (21, 30)
    assert server.requests[0].body["messages"][-1]["content"] == generation.prompt


@pytest.mark.django_db(transaction=True)
async def test_the_runner_keeps_the_text_of_a_stream_that_died(provider, server):
    server.enqueue(Behaviour(tokens=TOKENS, die_after=4))
    generation = await sync_to_async(GenerationFactory)()
    await run_generation(
        generation.pk, log=InProcessEventLog(retention_seconds=60), provider=provider
    )
    generation = await Generation.objects.aget(pk=generation.pk)
    assert generation.status == Generation.Status.FAILED
    assert generation.error_code == "stream_interrupted"
    assert generation.output == "".join(TOKENS[:4])
