"""How a reader follows a generation, wherever it runs: live from this
process's event log, from the Redis mirror when another process runs it, and
from the database otherwise (polling while it runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.conf import settings

from generation.database import reader_db
from generation.events.bus import current_bus
from generation.events.log import (
    INTERRUPTED,
    Event,
    EventName,
    InProcessEventLog,
    events_from_database,
    log,
)
from generation.models import Generation
from generation.payloads import done_payload, error_payload


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
    async for batch in follow_generation_batches(
        generation_id, after, heartbeat=heartbeat, poll_interval=poll_interval
    ):
        if batch is None:
            yield None
            continue
        for event in batch:
            yield event


async def follow_generation_batches(
    generation_id, after: int, *, heartbeat: float | None = None, poll_interval: float = 1.0
) -> AsyncIterator[list[Event] | None]:
    """As `follow_generation`, but the events that are there together come as
    one list (what a reader that arrives late has to catch up on, a burst), so
    that a reader can handle them at once."""
    heartbeat = settings.STUDIO_SSE_HEARTBEAT_SECONDS if heartbeat is None else heartbeat
    reader = _Reader(generation_id, after, heartbeat=heartbeat, poll_interval=poll_interval)
    async for batch in reader.batches():
        yield batch


class _Reader:
    """One reader's place in one generation, and where it looks next."""

    def __init__(self, generation_id, after: int, *, heartbeat: float, poll_interval: float):
        self.generation_id = generation_id
        self.key = str(generation_id)
        self.after = after
        self.heartbeat = heartbeat
        self.poll_interval = poll_interval
        self.bus = current_bus()
        # With Redis, a live log usually appears within moments: look often.
        self.pause = min(poll_interval, 0.1) if self.bus is not None else poll_interval
        self.since_database = poll_interval  # the first look includes the database
        self.quiet = 0.0
        self.ended = False

    async def batches(self) -> AsyncIterator[list[Event] | None]:
        while True:
            if (source := await self._live_log()) is not None:
                async for batch in self._read_live(source):
                    yield batch
                if self.ended:
                    return
                # Closed without `done` (the run never started here), expired, or
                # abandoned: the database has the rest.
                self.since_database = self.poll_interval
            if self.bus is None or self.since_database >= self.poll_interval:
                if batch := await self._read_database():
                    yield batch
                if self.ended:
                    return
            if await self._wait():
                yield None

    async def _live_log(self) -> InProcessEventLog | None:
        if log.has(self.key):
            return log
        if self.bus is not None and await self.bus.watch(self.key):
            return self.bus.mirror
        return None

    async def _read_live(self, source: InProcessEventLog) -> AsyncIterator[list[Event] | None]:
        async for batch in source.follow_batches(self.key, self.after, heartbeat=self.heartbeat):
            if batch is None:
                # Quiet for a while: did the process running it die? Its
                # generation is then failed in the database, with no `done` here.
                if await _finished_in_database(self.generation_id):
                    return
                yield None
                continue
            self.after = batch[-1].id
            yield batch
            if batch[-1].name is EventName.DONE:
                self.ended = True
                return

    async def _read_database(self) -> list[Event]:
        self.since_database = 0.0
        events, self.ended = await _database_events(self.generation_id, self.after)
        if events:
            self.after = events[-1].id
            self.quiet = 0.0
        return events

    async def _wait(self) -> bool:
        """Pause before looking again; True when a keep-alive is due."""
        await asyncio.sleep(self.pause)
        self.since_database += self.pause
        self.quiet += self.pause
        if self.quiet >= self.heartbeat:
            self.quiet = 0.0
            return True
        return False


async def _database_events(generation_id, after: int) -> tuple[list[Event], bool]:
    generation = await reader_db(Generation.objects.get)(pk=generation_id)
    events = events_from_database(generation, after)
    text_end = generation.events_before_text + len(generation.output)
    if generation.error_code == INTERRUPTED and after > text_end:
        # The reader saw text past the last checkpoint of a generation whose
        # process died, so the stored ids are behind it: end after what it has.
        events = _ending_after(generation, after)
    return events, generation.is_finished


async def _finished_in_database(generation_id) -> bool:
    status = await reader_db(
        Generation.objects.filter(pk=generation_id).values_list("status", flat=True).first
    )()
    return status is None or status not in Generation.UNFINISHED


def _ending_after(generation, after: int) -> list[Event]:
    events = []
    if generation.error_code:
        after += 1
        events.append(Event(after, EventName.ERROR, error_payload(generation)))
    events.append(Event(after + 1, EventName.DONE, done_payload(generation)))
    return events
