"""A generation's events for one client connection, as Server-Sent Events: one
loop for every client, and an encoder per kind of client (JSON for the API,
HTML fragments for the page's htmx)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape

from generation.database import reader_db
from generation.events.log import Event, EventName
from generation.lifecycle.delivery import (
    Delivery,
    generation_record_reading,
    generation_settle_delivery,
)
from generation.models import Generation
from generation.reading.follow import follow_generation_batches
from generation.rendering import MarkdownStream, PlainStream, StreamUpdate
from generation.text.runner import runner
from studio.sse import sse_comment, sse_event, sse_retry


async def client_events(generation_id, after: int) -> AsyncIterator[list[Event] | None]:
    """The generation's events for one client connection, the ones that are there
    together in one list, noting how far it got: a client that received `done`
    settles the delivery as a success; one that leaves early records the last
    event it had (generation.signals)."""
    runner.reader_joined(generation_id)
    delivered = after
    got_done = False
    try:
        async for batch in follow_generation_batches(generation_id, after):
            yield batch
            if batch is not None:
                delivered = batch[-1].id
                got_done = batch[-1].name is EventName.DONE
    finally:
        runner.reader_left(generation_id)
        if got_done:
            await reader_db(generation_settle_delivery)(
                generation_id=generation_id, delivery=Delivery.SUCCESS
            )
        elif delivered > after:
            await reader_db(generation_record_reading)(
                generation_id=generation_id, event_id=delivered
            )


# How a client wants events: the events that came together in, their SSE frames out.
EventEncoder = Callable[[list[Event]], Awaitable[bytes]]


async def event_stream(generation_id, after: int, encode: EventEncoder) -> AsyncIterator[bytes]:
    """The generation's events after id `after`, encoded by `encode`, with
    keep-alive comments while it is quiet, until `done`. When it is quiet the
    encoder is given no events: what it held back goes out then."""
    # Daphne sends the headers only with the first body bytes: send some now.
    yield sse_retry(settings.STUDIO_SSE_RETRY_MS)
    async for batch in client_events(generation_id, after):
        if batch is None:
            yield await encode([]) + sse_comment("ping")
        elif frames := await encode(batch):
            yield frames


async def json_frames(events: list[Event]) -> bytes:
    """The API's encoding: every event, its data as JSON."""
    return b"".join(
        sse_event(event.id, event.name, json.dumps(event.data, ensure_ascii=False))
        for event in events
    )


# The tail is parsed again at most every PARSE_INTERVAL seconds, and less often
# as it grows (a long list or table costs more to parse): every PARSE_CHARACTERS
# characters in it add a second. Plain text continuing it needs no parsing and
# goes out at once. What waits goes out with the next event, when the stream is
# quiet, and in any case before `done`.
PARSE_INTERVAL = 0.2
PARSE_CHARACTERS = 10_000


class PageStream:
    """The page's encoding, for one connection: the answer as HTML rendered from
    its Markdown as it arrives (escaped text, for a `plain` answer), and rendered
    fragments for the other events, in the language of the page that asked.

    A `delta` carries the tail of the answer (it replaces the one shown) and,
    out of band, the blocks that became final (appended after the ones shown).
    The deltas that arrive together are rendered once, and the tail is parsed
    again at most every PARSE_INTERVAL or so. The connection reads the
    generation from its start and its first `delta` replaces everything shown,
    so a reconnect or a refresh never doubles or loses text. `done` carries the
    finished answer, the status for the live region and, with `allowance`, what
    the person's plan still allows (for the form beside the answer).
    """

    def __init__(
        self,
        generation_id,
        request: HttpRequest,
        *,
        allowance: bool = False,
        plain: bool = False,
    ) -> None:
        self.generation_id = generation_id
        self.request = request
        self.allowance = allowance
        self.language = translation.get_language()
        # The answer as the page shows it: Markdown rendered, or plain text escaped.
        self.answer: MarkdownStream | PlainStream = PlainStream() if plain else MarkdownStream()
        self.shown = False  # whether this connection has sent the answer's text yet
        self.text_id = 0  # the id of the last delta fed
        self.clock = time.monotonic
        self.parsed_at = 0.0

    async def __call__(self, events: list[Event]) -> bytes:
        frames = []
        for event in events:
            if event.name is EventName.DELTA:
                self.answer.feed(event.data["text"])
                self.text_id = event.id
                continue
            # All the text first: the answer shown before `done` is exactly the
            # finished one it swaps in.
            frames.append(self._text_frame(wait=False))
            frames.append(sse_event(event.id, event.name, await self._html(event)))
        # No events at all means a quiet moment: send what was held back.
        frames.append(self._text_frame(wait=bool(events)))
        return b"".join(frames)

    def _text_frame(self, *, wait: bool) -> bytes:
        """A `delta` with what changed in the answer since the last one, if anything."""
        now = self.clock()
        if not self.shown or self.answer.needs_parse():
            interval = PARSE_INTERVAL + self.answer.tail_length / PARSE_CHARACTERS
            if self.shown and wait and now - self.parsed_at < interval:
                return b""
            self.parsed_at = now
        # Nothing is held back past a quiet moment or another event (`done`).
        update = self.answer.update(final=not (self.shown and wait))
        if update is None:
            return b""
        html = self._text_html(update)
        self.shown = True
        return sse_event(self.text_id, EventName.DELTA, html) if html else b""

    def _text_html(self, update: StreamUpdate) -> str:
        if self.shown and not update.committed:
            return update.tail
        swap = "beforeend" if self.shown else "innerHTML"
        target = f"#answer-{self.generation_id}-committed"
        return f'<div hx-swap-oob="{swap}:{target}">{update.committed}</div>{update.tail}'

    async def _html(self, event: Event) -> str:
        match event.name:
            case EventName.ERROR:
                return escape(event.data["message"])
            case EventName.DONE:
                return await reader_db(self._finished)()
            case EventName.QUEUED | EventName.PROGRESS:
                with translation.override(self.language):
                    return render_to_string(
                        "generation/detail.html#progress",
                        {"state": {"event": event.name.value, "data": event.data}},
                    )
        return ""

    def _finished(self) -> str:
        generation = Generation.objects.select_related("template").get(pk=self.generation_id)
        context = {"generation": generation, "swap_oob": True}
        with translation.override(self.language):
            html = render_to_string("generation/detail.html#output", context, self.request)
            if self.allowance and generation.template is not None:
                html += render_to_string(
                    "templates_catalog/template_detail.html#allowance",
                    {"template": generation.template, "swap_oob": True},
                    self.request,
                )
        return html
