"""The page's event stream: headers, incremental delivery, resumption, isolation, disconnects."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from generation.models import Generation
from generation.services import generation_create
from generation.text.runner import runner
from studio.sse import sse_event
from tests.factories import GenerationFactory, UserFactory, template_with_fields

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = re.compile(r"id: (\d+)\nevent: (\w+)\n((?:data: .*\n)+)\n")


def parse(body: str) -> list[tuple[int, str, str]]:
    return [
        (int(m[1]), m[2], "\n".join(line[6:] for line in m[3].splitlines()))
        for m in EVENT.finditer(body)
    ]


@pytest.fixture
def started(settings):
    """A person, and a generation of theirs that the runner is streaming."""
    settings.STUDIO_DEMO_TOKENS_PER_SECOND = 300
    user = UserFactory()
    generation = generation_create(
        user=user,
        template=template_with_fields(),
        inputs={"recipient": "Ms <b>Sato</b>"},
        language="en",
    )
    yield user, generation
    runner.wait(generation.pk, timeout=30)


async def read_stream(
    async_client, generation, **headers
) -> tuple[object, list[tuple[float, bytes]]]:
    response = await async_client.get(
        reverse("generation:stream", args=[generation.pk]), headers=headers
    )
    chunks = []
    async for chunk in response.streaming_content:
        chunks.append((time.monotonic(), chunk))
    return response, chunks


async def test_stream_has_the_sse_headers_and_starts_with_bytes_at_once(async_client, started):
    user, generation = started
    await async_client.aforce_login(user)
    response, chunks = await read_stream(async_client, generation)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache, no-transform"
    assert response["X-Accel-Buffering"] == "no"
    assert chunks[0][1].startswith(b"retry: ")


async def test_text_arrives_incrementally_and_ends_with_done(async_client, started):
    user, generation = started
    await async_client.aforce_login(user)
    _response, chunks = await read_stream(async_client, generation)
    events = parse(b"".join(c for _t, c in chunks).decode())
    deltas = [e for e in events if e[1] == "delta"]
    assert len(deltas) > 50
    delta_times = [t for t, c in chunks if b"event: delta" in c]
    assert delta_times[-1] - delta_times[0] > 0.2  # spread over time, not one lump
    assert events[-1][1] == "done"
    assert 'id="output-' in events[-1][2]  # the finished answer's HTML replaces the stream
    ids = [e[0] for e in events]
    assert ids == sorted(set(ids))


async def test_delta_html_is_escaped_text(async_client, started):
    user, generation = started
    await async_client.aforce_login(user)
    _response, chunks = await read_stream(async_client, generation)
    body = b"".join(c for _t, c in chunks).decode()
    text = "".join(data for _id, name, data in parse(body) if name == "delta")
    assert "Ms &lt;b&gt;Sato&lt;/b&gt;" in text
    assert "<b>" not in text


async def test_reconnecting_with_last_event_id_resumes_without_gap_or_duplicate(
    async_client, started
):
    user, generation = started
    await async_client.aforce_login(user)
    _response, first = await read_stream(async_client, generation)
    events = parse(b"".join(c for _t, c in first).decode())
    cut = events[len(events) // 2][0]
    _response, second = await read_stream(async_client, generation, **{"Last-Event-ID": str(cut)})
    resumed = parse(b"".join(c for _t, c in second).decode())
    assert [e for e in events if e[0] > cut][:-1] == resumed[:-1]
    assert resumed[0][0] > cut


async def test_a_finished_generation_replays_from_the_database_and_ends_with_done(
    async_client, settings
):
    settings.STUDIO_EVENT_LOG_RETENTION_SECONDS = 0
    generation = await sync_to_async(GenerationFactory)(
        status=Generation.Status.COMPLETED,
        output="Line one\r\nLine two\rThree",
        finish_reason="stop",
    )
    await async_client.aforce_login(generation.user)
    _response, chunks = await read_stream(async_client, generation)
    events = parse(b"".join(c for _t, c in chunks).decode())
    assert [name for _id, name, _data in events] == ["delta", "done"]
    assert events[0][2] == "Line one\nLine two\nThree"  # every line break starts a data: line
    _response, chunks = await read_stream(async_client, generation, **{"Last-Event-ID": "12"})
    assert parse(b"".join(c for _t, c in chunks).decode())[0][2] == "ne two\nThree"


async def test_another_persons_stream_is_not_found(async_client, started):
    _owner, generation = started
    await async_client.aforce_login(await sync_to_async(UserFactory)())
    response = await async_client.get(reverse("generation:stream", args=[generation.pk]))
    assert response.status_code == 404


async def test_anonymous_stream_is_not_found(async_client, started):
    _owner, generation = started
    response = await async_client.get(reverse("generation:stream", args=[generation.pk]))
    assert response.status_code == 404


async def test_the_generation_finishes_when_the_reader_goes_away(async_client, started):
    user, generation = started
    await async_client.aforce_login(user)
    response = await async_client.get(reverse("generation:stream", args=[generation.pk]))
    iterator = aiter(response.streaming_content)
    for _ in range(3):
        await anext(iterator)
    await iterator.aclose()  # the browser tab closed
    await asyncio.to_thread(runner.wait, generation.pk, 30)
    finished = await Generation.objects.aget(pk=generation.pk)
    assert finished.status == Generation.Status.COMPLETED
    assert "Ms <b>Sato</b>" in finished.output


async def test_idle_streams_send_heartbeats(async_client, settings):
    settings.STUDIO_SSE_HEARTBEAT_SECONDS = 0.1
    generation = await sync_to_async(GenerationFactory)(status=Generation.Status.RUNNING)
    await async_client.aforce_login(generation.user)
    response = await async_client.get(reverse("generation:stream", args=[generation.pk]))
    iterator = aiter(response.streaming_content)
    assert (await anext(iterator)).startswith(b"retry:")
    assert await asyncio.wait_for(anext(iterator), 5) == b": ping\n\n"
    await iterator.aclose()


@pytest.mark.parametrize("text", ["a\nb", "a\rb", "a\r\nb", "\nid: 99\nevent: done\ndata: x\n\n"])
def test_model_text_cannot_forge_sse_fields(text):
    frame = sse_event(5, "delta", text).decode()
    lines = frame.split("\n")
    assert lines[0] == "id: 5"
    assert lines[1] == "event: delta"
    assert all(line.startswith("data: ") for line in lines[2:-2])
    assert frame.endswith("\n\n")
    assert "\r" not in frame
