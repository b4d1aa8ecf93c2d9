"""A generation's events for one client connection, as Server-Sent Events: one
loop for every client, and an encoder per kind of client (JSON for the API,
HTML fragments for the page's htmx)."""

from __future__ import annotations

import json
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
from generation.reading.follow import follow_generation
from generation.text.runner import runner
from studio.sse import sse_comment, sse_event, sse_retry


def _render_output(generation_id, request: HttpRequest, language: str) -> str:
    generation = Generation.objects.select_related("template").get(pk=generation_id)
    with translation.override(language):
        return render_to_string(
            "generation/detail.html#output", {"generation": generation}, request=request
        )


async def _html(generation_id, event: Event, request: HttpRequest, language: str) -> str:
    match event.name:
        case EventName.DELTA:
            return escape(event.data["text"])
        case EventName.ERROR:
            return escape(event.data["message"])
        case EventName.DONE:
            return await reader_db(_render_output)(generation_id, request, language)
        case EventName.QUEUED | EventName.PROGRESS:
            with translation.override(language):
                return render_to_string(
                    "generation/detail.html#progress",
                    {"state": {"event": event.name.value, "data": event.data}},
                )
    return ""


async def client_events(generation_id, after: int) -> AsyncIterator[Event | None]:
    """The generation's events for one client connection, noting how far it got:
    a client that received `done` settles the delivery as a success; one that
    leaves early records the last event it had (generation.signals)."""
    runner.reader_joined(generation_id)
    delivered = after
    got_done = False
    try:
        async for event in follow_generation(generation_id, after):
            yield event
            if event is not None:
                delivered = event.id
                got_done = event.name is EventName.DONE
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


# How a client wants an event's data: the event in, the `data:` text out.
EventEncoder = Callable[[Event], Awaitable[str]]


async def event_stream(generation_id, after: int, encode: EventEncoder) -> AsyncIterator[bytes]:
    """The generation's events after id `after`, each encoded by `encode`, with
    keep-alive comments while it is quiet, until `done`."""
    # Daphne sends the headers only with the first body bytes: send some now.
    yield sse_retry(settings.STUDIO_SSE_RETRY_MS)
    async for event in client_events(generation_id, after):
        if event is None:
            yield sse_comment("ping")
        else:
            yield sse_event(event.id, event.name, await encode(event))


async def json_data(event: Event) -> str:
    """The API's encoding: the event's data as JSON."""
    return json.dumps(event.data, ensure_ascii=False)


def page_data(generation_id, request: HttpRequest) -> EventEncoder:
    """The page's encoding: escaped text, and rendered fragments for the rest,
    in the language of the page that asked."""
    language = translation.get_language()

    async def encode(event: Event) -> str:
        return await _html(generation_id, event, request, language)

    return encode
