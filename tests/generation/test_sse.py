"""The page's event stream: headers, the answer delivered as formatted HTML as it
is written, reconnects that never double text, isolation, disconnects, and what
`done` updates around the answer."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from generation.events.log import Event, EventName, log
from generation.models import Generation
from generation.reading.streams import PARSE_INTERVAL, PageStream
from generation.rendering import render_markdown
from generation.services import generation_create
from generation.text.runner import runner
from studio.models import Plan
from studio.sse import sse_event
from tests.factories import GenerationFactory, UserFactory, template_with_fields
from tests.fakes import GatedProvider, ScriptedProvider
from tests.support.waiting import wait_for, wait_for_runs

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = re.compile(r"id: (\d+)\nevent: (\w+)\n((?:data: .*\n)+)\n")
# The blocks that became final, out of band, before the tail (PageStream).
COMMITTED = re.compile(
    r'<div hx-swap-oob="(innerHTML|beforeend):#answer-[0-9a-f-]+-committed">(.*?)</div>', re.S
)
FINISHED_ANSWER = re.compile(r'<div class="markdown answer">(.*?)</div>', re.S)


def parse(body: str) -> list[tuple[int, str, str]]:
    return [
        (int(m[1]), m[2], "\n".join(line[6:] for line in m[3].splitlines()))
        for m in EVENT.finditer(body)
    ]


class Answer:
    """The answer as the page shows it while it streams: htmx appends the final
    blocks (or replaces them all, on a connection's first delta) and replaces
    the tail."""

    def __init__(self) -> None:
        self.committed = ""
        self.tail = ""
        self.replaced = 0

    def apply(self, data: str) -> None:
        if match := COMMITTED.match(data):
            if match[1] == "innerHTML":
                self.committed, self.replaced = "", self.replaced + 1
            self.committed += match[2]
            data = data[match.end() :]
        self.tail = data

    @property
    def html(self) -> str:
        return self.committed + self.tail


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


# A Markdown answer with something of everything, and model output that must stay text.
ANSWER = [
    "## Plan\n\n",
    "We **will**",
    " ship",
    " soon.\n\n",
    "- one\n",
    "- two <script>alert(1)</script>\n\n",
    "| a | b |\n|---|---|\n",
    "| 1 | 2 |\n\n",
    "Thanks",
    " again.",
]


@pytest.fixture
def gated(monkeypatch):
    """Generations started here answer ANSWER, holding after its fifth delta until
    the test releases the rest."""
    provider = GatedProvider(ANSWER, hold_after=5)
    monkeypatch.setattr(runner, "provider", provider)
    yield provider
    provider.release.set()
    wait_for_runs()


async def start(user) -> Generation:
    template = await sync_to_async(template_with_fields)()
    return await sync_to_async(generation_create)(
        user=user, template=template, inputs={"recipient": "Ms Sato"}
    )


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


async def read_until(stream, answer: Answer, condition) -> list[tuple[int, str, str]]:
    """Read a stream's events, applying its deltas to `answer`, until
    `condition(events)` holds."""
    events, buffer = [], ""
    while not condition(events):
        buffer += (await asyncio.wait_for(anext(stream), 30)).decode()
        *complete, buffer = buffer.split("\n\n")
        for event in parse("".join(f"{frame}\n\n" for frame in complete)):
            events.append(event)
            if event[1] == "delta":
                answer.apply(event[2])
    return events


def ended(events) -> bool:
    return bool(events) and events[-1][1] == "done"


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
    assert len(deltas) > 20
    delta_times = [t for t, c in chunks if b"event: delta" in c]
    assert delta_times[-1] - delta_times[0] > 0.2  # spread over time, not one lump
    assert events[-1][1] == "done"
    assert 'id="output-' in events[-1][2]  # the finished answer's HTML replaces the stream
    ids = [e[0] for e in events]
    assert ids == sorted(set(ids))


async def test_model_html_in_the_streamed_answer_is_escaped(async_client, started):
    user, generation = started
    await async_client.aforce_login(user)
    _response, chunks = await read_stream(async_client, generation)
    body = b"".join(c for _t, c in chunks).decode()
    answer = Answer()
    for _id, name, data in parse(body):
        if name == "delta":
            answer.apply(data)
    assert "Ms &lt;b&gt;Sato&lt;/b&gt;" in answer.html
    assert "<b>" not in answer.html


async def test_the_answer_arrives_formatted_and_the_finished_article_is_what_was_shown(
    async_client, gated
):
    user = await sync_to_async(UserFactory)()
    generation = await start(user)
    await async_client.aforce_login(user)
    response = await async_client.get(reverse("generation:stream", args=[generation.pk]))
    stream, answer = aiter(response.streaming_content), Answer()
    await read_until(stream, answer, lambda _events: "<strong>will</strong>" in answer.html)
    assert answer.html.startswith("<h2>Plan</h2>\n<p>We <strong>will</strong>")
    gated.release.set()
    events = await read_until(stream, answer, ended)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.html  # shown as text
    assert "<script" not in answer.html
    assert "<table>" in answer.html
    finished = await Generation.objects.aget(pk=generation.pk)
    assert answer.html == render_markdown(finished.output)
    # `done` swaps in the finished article: its answer is exactly what was shown.
    assert FINISHED_ANSWER.search(events[-1][2])[1] == answer.html


@pytest.mark.parametrize("resume", [True, False], ids=["last-event-id", "new-connection"])
async def test_a_reconnect_mid_answer_shows_everything_so_far_once(async_client, gated, resume):
    user = await sync_to_async(UserFactory)()
    generation = await start(user)
    await async_client.aforce_login(user)
    url = reverse("generation:stream", args=[generation.pk])
    answer = Answer()
    response = await async_client.get(url)
    first = aiter(response.streaming_content)
    events = await read_until(first, answer, lambda _events: "<li>one" in answer.html)
    await first.aclose()  # the connection drops mid-answer
    shown = answer.html

    headers = {"Last-Event-ID": str(events[-1][0])} if resume else {}
    response = await async_client.get(url, headers=headers)
    second = aiter(response.streaming_content)
    resumed = await read_until(second, answer, bool)
    # Its first event replaces all the text shown with all the text so far.
    assert resumed[0][1] == "delta"
    assert answer.replaced == 2
    assert answer.html == shown
    gated.release.set()
    await read_until(second, answer, ended)
    finished = await Generation.objects.aget(pk=generation.pk)
    assert answer.html == render_markdown(finished.output)
    assert answer.html.count("<h2>Plan</h2>") == answer.html.count("<li>one</li>") == 1


async def test_deltas_that_arrive_together_are_rendered_once(async_client, gated):
    user = await sync_to_async(UserFactory)()
    generation = await start(user)
    held = "".join(ANSWER[: gated.hold_after])
    await asyncio.to_thread(
        wait_for, lambda: Generation.objects.get(pk=generation.pk).output == held
    )
    await async_client.aforce_login(user)
    response = await async_client.get(reverse("generation:stream", args=[generation.pk]))
    answer, stream = Answer(), aiter(response.streaming_content)
    events = await read_until(stream, answer, bool)
    await stream.aclose()
    # A reader who comes late gets what was written in one rendering, under the
    # id of the last delta (the API's ids).
    assert [name for _id, name, _data in events] == ["delta"]
    assert events[0][0] == log.last_id(str(generation.pk))
    assert answer.html == render_markdown(held)


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
    for headers in ({}, {"Last-Event-ID": "12"}):
        _response, chunks = await read_stream(async_client, generation, **headers)
        events = parse(b"".join(c for _t, c in chunks).decode())
        assert [name for _id, name, _data in events] == ["delta", "done"]
        answer = Answer()
        answer.apply(events[0][2])
        assert answer.html == "<p>Line one<br>\nLine two<br>\nThree</p>\n"
        assert FINISHED_ANSWER.search(events[1][2])[1] == answer.html


async def test_while_it_streams_the_answer_is_busy_and_a_status_line_says_so(async_client, gated):
    user = await sync_to_async(UserFactory)()
    generation = await start(user)
    await async_client.aforce_login(user)
    page = (await async_client.get(generation.get_absolute_url())).content.decode()
    assert '<div class="stream-text markdown" aria-busy="true"' in page
    status = f'<p id="answer-{generation.pk}-status" class="visually-hidden" role="status">'
    assert f"{status}Writing…</p>" in page
    stream = page[page.index('<div class="stream"') :]
    assert "aria-live" not in stream  # nothing read out token by token


async def test_done_says_in_the_live_region_that_the_answer_ended(async_client, started):
    user, generation = started
    await async_client.aforce_login(user)
    _response, chunks = await read_stream(async_client, generation)
    done = parse(b"".join(c for _t, c in chunks).decode())[-1][2]
    status = f'<p id="answer-{generation.pk}-status" class="visually-hidden" role="status"'
    assert f'{status} hx-swap-oob="innerHTML">Completed</p>' in done


@pytest.fixture
def small_plan(settings):
    settings.STUDIO_ENFORCE_PLANS = True
    settings.STUDIO_QUOTA_TOKEN_RESERVATION = 500
    Plan.objects.update(is_default=False)
    # 1,400 tokens a day at 500 a generation: one more while an answer holds its
    # reservation, two once it is over having used only a few.
    return Plan.objects.create(name="Small", is_default=True, daily_output_tokens=1400)


async def test_done_updates_the_allowance_beside_the_form(async_client, monkeypatch, small_plan):
    """While it runs, an answer holds its whole reservation; when it ends, the
    allowance under the form shows what is really left."""
    monkeypatch.setattr(runner, "provider", ScriptedProvider(["One", " two", " three."]))
    user = await sync_to_async(UserFactory)()
    generation = await start(user)
    await async_client.aforce_login(user)
    _response, chunks = await read_stream(async_client, generation)
    done = parse(b"".join(c for _t, c in chunks).decode())[-1][2]
    assert 'id="allowance"' not in done  # the details page has no allowance to update
    url = reverse("generation:stream", args=[generation.pk]) + "?allowance=1"
    response = await async_client.get(url)
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    done = parse(body)[-1][2]
    allowance = done[done.index('<p id="allowance"') :]
    assert 'hx-swap-oob="true"' in allowance[: allowance.index(">")]
    assert "About 2 more generations today." in allowance  # 3 tokens used, not 500 reserved


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


async def test_formatting_catches_up_within_the_interval_and_when_the_stream_is_quiet():
    encode, answer, now, last_id = PageStream(uuid.uuid4(), None), Answer(), 0.0, 0
    encode.clock = lambda: now

    async def arrive(*texts: str) -> list:
        nonlocal last_id
        events = []
        for text in texts:
            last_id += len(text)
            events.append(Event(last_id, EventName.DELTA, {"text": text}))
        frames = parse((await encode(events)).decode())
        for _id, _name, data in frames:
            answer.apply(data)
        return frames

    assert await arrive("## Plan", "\n\nWe ")  # the first delta shows everything at once
    assert answer.html == "<h2>Plan</h2>\n<p>We</p>\n"
    now += 0.01
    assert await arrive("ship")  # plain text goes out at once
    assert answer.html.endswith("<p>We ship</p>\n")
    now += 0.01
    assert not await arrive(" **soon")  # a change of form waits for the interval...
    now += 0.01
    assert not await arrive("**")
    frames = parse((await encode([])).decode())  # ...or for a quiet moment
    answer.apply(frames[0][2])
    assert frames[0][0] == last_id
    assert answer.html == render_markdown("## Plan\n\nWe ship **soon**")
    now += 2 * PARSE_INTERVAL
    assert await arrive(".\n\n- one")
    assert answer.html == render_markdown("## Plan\n\nWe ship **soon**.\n\n- one")


async def test_a_huge_table_held_back_is_shown_whole_when_the_stream_is_quiet():
    encode, answer, now, last_id = PageStream(uuid.uuid4(), None), Answer(), 0.0, 0
    encode.clock = lambda: now
    rows = "".join(f"| row {n} | value {n} |\n" for n in range(400))
    text = "| a | b |\n|---|---|\n" + rows
    for start in range(0, len(text), 8):
        now += 0.04
        last_id += len(text[start : start + 8])
        frames = await encode([Event(last_id, EventName.DELTA, {"text": text[start : start + 8]})])
        for _id, _name, data in parse(frames.decode()):
            answer.apply(data)
    assert answer.html != render_markdown(text)  # a tail this long is parsed now and then
    for _id, _name, data in parse((await encode([])).decode()):
        answer.apply(data)
    assert answer.html == render_markdown(text)
