"""Events of image generations, written by whichever process changes them.

A text generation's events come from the one process that runs it. An image
generation's come from several: the web process that queues it (`queued`),
any Celery worker (`progress`, positions in line, `error` and `done`). So the
database row numbers them: each event takes the next id under a row lock and
is stored as the row's latest state (`progress`), which is all that a page
opened mid-run needs (generation.events.events_from_database). With
REDIS_URL the event is also added to the generation's Redis stream, in the
same order, and web processes follow it live exactly as they follow text
(generation.events.redis_bus); without Redis, readers poll the row.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction

from generation.events.log import Event, EventName, events_from_database
from generation.events.redis_bus import queue_stream_writes
from generation.events.redis_clients import sync_redis
from generation.models import Generation
from templates_catalog.models import Template

logger = logging.getLogger(__name__)
Status = Generation.Status
Kind = Template.Kind
# The positions in line that one worker refreshes when it takes a job.
POSITION_UPDATE_LIMIT = 100

_clients: dict[str, Any] = {}


def _redis():
    """This process's Redis client for event streams (redis-py pools per process,
    and reconnects after a fork)."""
    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = sync_redis(url)
    return _clients[url]


def _send_to_redis(key: str, events: list[Event]) -> None:
    if not settings.REDIS_URL or not events:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        queue_stream_writes(pipe, key, events)
        pipe.execute()
    except Exception:
        # Readers fall back to the database when the stream has a gap or ends.
        logger.exception("image events of %s could not be sent to Redis", key)


def queued_state(position: int) -> dict[str, Any]:
    """The row's `progress` for a generation waiting `position`th in line."""
    return {"event": EventName.QUEUED.value, "data": {"position": position}}


def image_event_publish(
    *, generation_id: UUID, name: EventName, data: dict[str, Any], claim: str | None = None
) -> Event | None:
    """Give an event the generation's next id, store it as its latest state and
    send it to Redis. With `claim`, only while that attempt still holds the
    generation (None otherwise); events of finished generations are dropped."""
    with transaction.atomic():
        row = (
            Generation.objects.select_for_update()
            .only("events_before_text", "claim", "status")
            .filter(pk=generation_id)
            .first()
        )
        if row is None or row.is_finished or (claim is not None and row.claim != claim):
            return None
        event = Event(row.events_before_text + 1, name, data)
        Generation.objects.filter(pk=generation_id).update(
            events_before_text=event.id, progress={"event": name.value, "data": data}
        )
        # Under the row lock, so that Redis gets the events in id order.
        _send_to_redis(str(generation_id), [event])
    return event


def image_events_publish_queued(*, generation: Generation) -> None:
    """Send the `queued` event a new generation was created with."""
    state = generation.progress
    if state:
        event = Event(generation.events_before_text, EventName(state["event"]), state["data"])
        _send_to_redis(str(generation.pk), [event])


def image_events_publish_end(*, generation_id: UUID) -> None:
    """Send the `error` (if any) and `done` that a finished generation's row implies."""
    generation = Generation.objects.get(pk=generation_id)
    if generation.is_finished:
        _send_to_redis(
            str(generation_id), events_from_database(generation, generation.events_before_text)
        )


def image_queue_positions_publish() -> None:
    """Tell every image generation still in line where it stands now."""
    queued = Generation.objects.filter(kind=Kind.IMAGE, status=Status.QUEUED).order_by("created_at")
    for position, (generation_id, state) in enumerate(
        queued.values_list("pk", "progress")[:POSITION_UPDATE_LIMIT], start=1
    ):
        if state == queued_state(position):
            continue
        image_event_publish(
            generation_id=generation_id, name=EventName.QUEUED, data={"position": position}
        )


def image_queue_position(*, created_at) -> int:
    """Where a generation queued at `created_at` would stand in line."""
    ahead = Generation.objects.filter(
        kind=Kind.IMAGE, status=Status.QUEUED, created_at__lt=created_at
    ).count()
    return ahead + 1
