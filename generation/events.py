"""The ordered event log of a generation, and how readers follow it.

Every event has an integer id, and the ids are chosen so that the database
alone can resume any reader exactly: an event's id is the previous id plus
the length of its text for a `delta`, plus one for any other event. The id of
the last delta is therefore `events_before_text + len(output)`, and a reader
that last saw id N needs `output[N - events_before_text:]` and whatever came
after the text. Deltas concatenate to exactly the stored output.

Generations running in this process write to `InProcessEventLog`; readers of
a generation that is not running here (it finished a while ago, or another
process runs it) are served from the database, polling while it runs.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings

from generation.database import reader_db


class EventName(StrEnum):
    QUEUED = "queued"
    DELTA = "delta"
    PROGRESS = "progress"
    DONE = "done"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    name: EventName
    data: dict[str, Any]


# The error code of a generation whose process died (services.generation_reap).
INTERRUPTED = "interrupted"


def next_event_id(previous_id: int, name: EventName, data: dict[str, Any]) -> int:
    return previous_id + (len(data["text"]) if name is EventName.DELTA else 1)


@dataclass
class _Stream:
    events: list[Event] = field(default_factory=list)
    closed_at: float | None = None
    # (loop, asyncio.Event) of each reader waiting for more.
    waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)

    @property
    def last_id(self) -> int:
        return self.events[-1].id if self.events else 0


class InProcessEventLog:
    """Events of the generations running in this process, shared by all its readers.

    Writers and readers may sit on different threads and event loops (the
    runner has its own loop), so appends take a lock and wake each reader on
    its own loop.
    """

    def __init__(self, retention_seconds: float | None = None) -> None:
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._retention = retention_seconds

    @property
    def retention(self) -> float:
        if self._retention is not None:
            return self._retention
        return settings.STUDIO_EVENT_LOG_RETENTION_SECONDS

    def open(self, key: str) -> None:
        with self._lock:
            self._purge_expired()
            self._streams.setdefault(key, _Stream())

    def has(self, key: str) -> bool:
        with self._lock:
            self._purge_expired()
            return key in self._streams

    def last_id(self, key: str) -> int:
        with self._lock:
            return self._streams[key].last_id

    def append(self, key: str, name: EventName, data: dict[str, Any]) -> Event:
        with self._lock:
            stream = self._streams[key]
            event = Event(next_event_id(stream.last_id, name, data), name, data)
            self._add(key, stream, event)
        return event

    def extend(self, key: str, events: list[Event]) -> None:
        """Add events that already have their ids (copies of another process's log).

        Events at or before the last one held are skipped, so overlapping
        copies are harmless."""
        with self._lock:
            stream = self._streams[key]
            for event in events:
                if event.id > stream.last_id:
                    self._add(key, stream, event)

    def _add(self, key: str, stream: _Stream, event: Event) -> None:
        if stream.closed_at is not None:
            raise RuntimeError(f"event log {key} is closed")
        stream.events.append(event)
        waiters, stream.waiters = stream.waiters, set()
        for loop, wake in waiters:
            loop.call_soon_threadsafe(wake.set)

    def close(self, key: str) -> None:
        """No more events; readers drain what is there and stop."""
        with self._lock:
            stream = self._streams[key]
            stream.closed_at = time.monotonic()
            waiters, stream.waiters = stream.waiters, set()
        for loop, wake in waiters:
            loop.call_soon_threadsafe(wake.set)

    async def follow(
        self, key: str, after: int, *, heartbeat: float
    ) -> AsyncIterator[Event | None]:
        """Yield the events after id `after`, then new ones as they come, until closed.

        Yields None when nothing happened for `heartbeat` seconds, so that the
        caller can keep the connection alive.
        """
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                stream = self._streams.get(key)
                if stream is None:
                    return
                # Ids grow with every event: find the first unseen one without a scan.
                start = bisect.bisect_right(stream.events, after, key=lambda event: event.id)
                pending = stream.events[start:]
                closed = stream.closed_at is not None
                if not pending and not closed:
                    wake = asyncio.Event()
                    stream.waiters.add((loop, wake))
            for event in pending:
                yield resume_within(event, after)
                after = event.id
            if pending:
                continue
            if closed:
                return
            try:
                await asyncio.wait_for(wake.wait(), timeout=heartbeat)
            except TimeoutError:
                with self._lock:
                    stream.waiters.discard((loop, wake))
                yield None

    def _purge_expired(self) -> None:
        horizon = time.monotonic() - self.retention
        expired = [
            key
            for key, stream in self._streams.items()
            if stream.closed_at is not None and stream.closed_at < horizon
        ]
        for key in expired:
            del self._streams[key]


def resume_within(event: Event, after: int) -> Event:
    """`event` for a reader that already has everything up to id `after`: a delta
    that began before that point loses the text the reader has seen."""
    if event.name is EventName.DELTA:
        start = event.id - len(event.data["text"])
        if after > start:
            return Event(event.id, event.name, {"text": event.data["text"][after - start :]})
    return event


def events_from_database(generation, after: int) -> list[Event]:
    """The events after `after` that a generation's row implies: its text so far,
    then (once finished) its error and `done`."""
    from generation.payloads import done_payload, error_payload

    events: list[Event] = []
    state = generation.progress
    if state and not generation.is_finished and after < generation.events_before_text:
        # An image generation in progress: its latest state stands for the
        # steps before it (generation.image_events).
        events.append(
            Event(generation.events_before_text, EventName(state["event"]), state["data"])
        )
    text_end = generation.events_before_text + len(generation.output)
    if generation.output and after < text_end:
        start = max(0, after - generation.events_before_text)
        events.append(Event(text_end, EventName.DELTA, {"text": generation.output[start:]}))
    if generation.is_finished:
        next_id = text_end
        if generation.error_code:
            next_id += 1
            if after < next_id:
                events.append(Event(next_id, EventName.ERROR, error_payload(generation)))
        next_id += 1
        if after < next_id:
            events.append(Event(next_id, EventName.DONE, done_payload(generation)))
    return events


log = InProcessEventLog()


async def follow_generation(
    generation_id, after: int, *, heartbeat: float | None = None, poll_interval: float = 1.0
) -> AsyncIterator[Event | None]:
    """Every event of a generation after id `after`, then the new ones as they come;
    ends after `done`. None marks an idle beat (time for a keep-alive).

    Live from this process's log where the generation runs here, from Redis
    where it runs in another process, and from the database otherwise (it
    finished a while ago, or there is no Redis: then the database is polled).
    A reader that arrives before the run has published anything looks for the
    live log again on every poll, so it joins it as soon as there is one.
    """
    from generation.runner import runner

    heartbeat = settings.STUDIO_SSE_HEARTBEAT_SECONDS if heartbeat is None else heartbeat
    key = str(generation_id)
    bus = runner.bus
    # With Redis, a live log usually appears within moments: look often.
    live_poll = min(poll_interval, 0.1) if bus is not None else poll_interval
    idle = 0.0
    since_database = poll_interval  # the first look includes the database
    while True:
        source = log if log.has(key) else None
        if source is None and bus is not None and await bus.watch(key):
            source = bus.mirror
        if source is not None:
            async for event in source.follow(key, after, heartbeat=heartbeat):
                if event is None:
                    # Quiet for a while: did the process running it die? Its
                    # generation is then failed in the database, with no `done` here.
                    if await _finished_in_database(generation_id):
                        break
                    yield None
                    continue
                after = event.id
                yield event
                if event.name is EventName.DONE:
                    return
            # Closed without `done` (the run never started here), expired, or
            # abandoned: the database has the rest.
            since_database = poll_interval
        if since_database >= poll_interval or bus is None:
            since_database = 0.0
            events, finished = await _database_events(generation_id, after)
            for event in events:
                after = event.id
                idle = 0.0
                yield event
            if finished:
                return
        await asyncio.sleep(live_poll)
        since_database += live_poll
        idle += live_poll
        if idle >= heartbeat:
            idle = 0.0
            yield None


async def _database_events(generation_id, after: int) -> tuple[list[Event], bool]:
    from generation.models import Generation

    generation = await reader_db(Generation.objects.get)(pk=generation_id)
    events = events_from_database(generation, after)
    text_end = generation.events_before_text + len(generation.output)
    if generation.error_code == INTERRUPTED and after > text_end:
        # The reader saw text past the last checkpoint of a generation whose
        # process died, so the stored ids are behind it: end after what it has.
        events = _ending_after(generation, after)
    return events, generation.is_finished


async def _finished_in_database(generation_id) -> bool:
    from generation.models import Generation

    status = await reader_db(
        Generation.objects.filter(pk=generation_id).values_list("status", flat=True).first
    )()
    return status is None or status not in Generation.UNFINISHED


def _ending_after(generation, after: int) -> list[Event]:
    from generation.payloads import done_payload, error_payload

    events = []
    if generation.error_code:
        after += 1
        events.append(Event(after, EventName.ERROR, error_payload(generation)))
    events.append(Event(after + 1, EventName.DONE, done_payload(generation)))
    return events
