"""The ordered event log of a generation, and how readers follow it.

Every event has an integer id, and the ids are chosen so that the database
alone can resume any reader exactly: an event's id is the previous id plus
the length of its text for a `delta`, plus one for any other event. The id of
the last delta is therefore `events_before_text + len(output)`, and a reader
that last saw id N needs `output[N - events_before_text:]` and whatever came
after the text. Deltas concatenate to exactly the stored output.

Generations running in this process write to `InProcessEventLog`; how readers
follow a generation wherever it runs is generation.reading.follow.
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

from generation.payloads import done_payload, error_payload


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
        async for batch in self.follow_batches(key, after, heartbeat=heartbeat):
            if batch is None:
                yield None
                continue
            for event in batch:
                yield event

    async def follow_batches(
        self, key: str, after: int, *, heartbeat: float
    ) -> AsyncIterator[list[Event] | None]:
        """As `follow`, but the events that are there together come as one list
        (the backlog of a reader that arrives late, a burst), so that a reader
        can handle them at once."""
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
            if pending:
                yield [resume_within(pending[0], after), *pending[1:]]
                after = pending[-1].id
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
    events: list[Event] = []
    state = generation.progress
    if state and not generation.is_finished and after < generation.events_before_text:
        # An image generation in progress: its latest state stands for the
        # steps before it (generation.events.images).
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
