"""Event logs and stop requests shared between processes through Redis.

Each generation's events go to a Redis stream whose entry ids are `0-<event
id>`, so "the events after N" is one XREAD from `0-N`. A process that serves
readers of generations running elsewhere copies those streams into a local
mirror (an InProcessEventLog) that its readers follow exactly as they follow
local generations.

Connections are few and fixed, whatever the number of readers: one pool for
writes and catch-up reads, one connection that blocks on XREAD for every
mirrored stream at once (a blocking read per reader would exhaust redis-py's
pool of 100 and put a round trip behind every event), and one pub/sub
connection for stop requests. Tokens never travel over a channel layer, which
drops messages when a channel is over capacity.

Everything here runs on the runner's event loop; other loops call in through
`watch()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable

import redis.asyncio as redis
from django.conf import settings

from generation.events.log import Event, EventName, InProcessEventLog
from generation.events.redis_clients import BLOCK_MS, REDIS_AWAY, async_redis

logger = logging.getLogger(__name__)

CANCEL_CHANNEL = "studio:cancel"
# A stream outlives its generation by the log retention; a running one is
# refreshed with every write, so an abandoned stream is gone within the hour.
RUNNING_TTL_SECONDS = 3600
_BATCH = 500
# Connections for writes and catch-up reads. Callers wait for a free one rather
# than fail: a burst of new readers must queue, not error.
_POOL_SIZE = 20


def stream_key(key: str) -> str:
    return f"studio:events:{key}"


def readers_key(key: str) -> str:
    return f"studio:readers:{key}"


def encode_event(event: Event) -> dict[str, str]:
    return {"e": event.name.value, "d": json.dumps(event.data, ensure_ascii=False)}


def queue_stream_writes(pipe, key: str, events: list[Event]) -> None:
    """Queue the commands that store `events` in the generation's stream on a
    pipeline (async or blocking: the commands are the same): each under its own
    id, and the stream's expiry, which a finished generation's `done` shortens."""
    name = stream_key(key)
    for event in events:
        pipe.xadd(name, encode_event(event), id=f"0-{event.id}")
    finished = events[-1].name is EventName.DONE
    ttl = settings.STUDIO_EVENT_LOG_RETENTION_SECONDS if finished else RUNNING_TTL_SECONDS
    pipe.expire(name, max(1, int(ttl)))


def _already_stored(error: Exception) -> bool:
    """XADD's refusal of an id at or below the stream's last: a batch sent again
    after an outage, whose first part had been stored."""
    return "equal or smaller than the target stream top item" in str(error)


def _decode(entry_id: str, fields: dict[str, str]) -> Event:
    return Event(int(entry_id.split("-", 1)[1]), EventName(fields["e"]), json.loads(fields["d"]))


class RedisEventBus:
    """This process's link to the other processes' generations."""

    def __init__(
        self,
        url: str,
        *,
        loop: asyncio.AbstractEventLoop,
        on_cancel: Callable[[str], object],
    ) -> None:
        self.url = url
        self.loop = loop
        self.on_cancel = on_cancel
        self.mirror = InProcessEventLog()
        self._outbox: asyncio.Queue[Event | tuple[str, Event]] | None = None
        self._client: redis.Redis | None = None
        self._watched: dict[str, int] = {}
        self._wake_key = f"studio:wake:{uuid.uuid4().hex}"
        self._wake_id = "0-0"
        # Loops that found Redis away: the outage is logged once, not per retry.
        self._away: set[str] = set()

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = async_redis(self.url, pool_size=_POOL_SIZE)
        return self._client

    @property
    def outbox(self) -> asyncio.Queue:
        if self._outbox is None:
            self._outbox = asyncio.Queue()
        return self._outbox

    async def run(self) -> None:
        """The bus's three loops; each survives Redis going away and coming back."""
        await asyncio.gather(
            self._forever(self._write), self._forever(self._read), self._forever(self._listen)
        )

    async def _forever(self, loop_body) -> None:
        while True:
            try:
                await loop_body()
            except asyncio.CancelledError:
                raise
            except REDIS_AWAY as exc:
                self._note_away(loop_body.__name__, exc)
                await asyncio.sleep(1)
            except Exception:
                logger.exception("Redis event bus: %s failed; retrying", loop_body.__name__)
                await asyncio.sleep(1)

    def _note_away(self, where: str, exc: BaseException) -> None:
        """Redis went away (a restart, the network): say so once, at WARNING."""
        if not self._away:
            logger.warning("Redis is unreachable (%s); the event bus retries until it is back", exc)
        self._away.add(where)

    def _note_back(self, where: str) -> None:
        if where in self._away:
            self._away.discard(where)
            if not self._away:
                logger.warning("Redis is reachable again; the event bus carries on")

    # --- writing -----------------------------------------------------------

    def publish(self, key: str, event: Event) -> None:
        """Queue an event for Redis (call on the runner loop; never blocks)."""
        self.outbox.put_nowait((key, event))

    async def _write(self) -> None:
        """Send queued events in pipelined batches, in order. While Redis is away
        a batch is held and sent again once it is back: nothing is lost, and an
        event already stored is refused by its id, so none is stored twice."""
        while True:
            batch = [await self.outbox.get()]
            while len(batch) < _BATCH and not self.outbox.empty():
                batch.append(self.outbox.get_nowait())
            while True:
                try:
                    await self._send(batch)
                    self._note_back("_write")
                    break
                except REDIS_AWAY as exc:
                    self._note_away("_write", exc)
                    await asyncio.sleep(1)

    async def _send(self, batch: list[tuple[str, Event]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, event in batch:
            try:
                queue_stream_writes(pipe, key, [event])
            except (TypeError, ValueError):
                # One event that cannot be encoded must not hold back the others.
                logger.exception("Redis event bus: event %s of %s cannot be sent", event.id, key)
        results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, REDIS_AWAY):
                raise result
            if isinstance(result, Exception) and not _already_stored(result):
                logger.error("Redis event bus: a write failed: %s", result)

    # --- reading -----------------------------------------------------------

    async def watch(self, key: str) -> bool:
        """Mirror a generation's stream here; False if Redis has no such stream.

        Callable from any event loop."""
        if self.mirror.has(key):
            return True
        future = asyncio.run_coroutine_threadsafe(self._watch(key), self.loop)
        return await asyncio.wrap_future(future)

    async def _watch(self, key: str) -> bool:
        if self.mirror.has(key):
            return True
        try:
            return await self._start_mirror(key)
        except REDIS_AWAY as exc:
            # The reader follows the database meanwhile, and tries again.
            self._note_away("_watch", exc)
            return False

    async def _start_mirror(self, key: str) -> bool:
        entries = await self.client.xrange(stream_key(key))
        if not entries:
            return False
        events = [_decode(entry_id, fields) for entry_id, fields in entries]
        self.mirror.open(key)
        self.mirror.extend(key, events)
        if events[-1].name is EventName.DONE:
            self.mirror.close(key)
            return True
        self._watched[key] = events[-1].id
        # Wake the blocking read so that it includes this stream from now on.
        await self.client.xadd(self._wake_key, {"w": "1"}, maxlen=10, approximate=True)
        await self.client.expire(self._wake_key, 3600)
        return True

    async def _read(self) -> None:
        """One blocking XREAD for every mirrored stream, copied into the mirror.
        After an outage it reads on from the last event each mirror holds."""
        connection = async_redis(self.url)
        try:
            while True:
                streams = {self._wake_key: self._wake_id}
                streams.update({stream_key(k): f"0-{last}" for k, last in self._watched.items()})
                response = await connection.xread(streams, block=BLOCK_MS, count=_BATCH)
                self._note_back("_read")
                for name, entries in response or []:
                    if name == self._wake_key:
                        self._wake_id = entries[-1][0]
                        continue
                    self._mirror(name.removeprefix("studio:events:"), entries)
        finally:
            await connection.aclose()

    def _mirror(self, key: str, entries: list) -> None:
        if key not in self._watched:
            return
        events = [_decode(entry_id, fields) for entry_id, fields in entries]
        self.mirror.extend(key, events)
        self._watched[key] = events[-1].id
        if events[-1].name is EventName.DONE:
            self.mirror.close(key)
            del self._watched[key]

    # --- stopping and readers ----------------------------------------------

    def request_cancel(self, key: str) -> None:
        """Tell every process to stop this generation if it runs there."""
        self._in_background(self.client.publish(CANCEL_CHANNEL, key), "a stop request")

    def _in_background(self, coroutine, what: str) -> None:
        """Fire and forget, but never an unretrieved exception: a Redis outage is
        noted once; the stop is also in the database, which every runner polls."""

        def done(task: asyncio.Task) -> None:
            if task.cancelled():
                return
            exc = task.exception()
            if isinstance(exc, REDIS_AWAY):
                self._note_away("background", exc)
            elif exc is not None:
                logger.error("Redis event bus: %s failed: %s", what, exc)

        asyncio.ensure_future(coroutine).add_done_callback(done)

    async def _listen(self) -> None:
        pubsub = async_redis(self.url).pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CANCEL_CHANNEL)
            self._note_back("_listen")
            async for message in pubsub.listen():
                if isinstance(message.get("data"), str):
                    self.on_cancel(message["data"])
        finally:
            await pubsub.aclose()

    def count_reader(self, key: str, change: int) -> None:
        """Count readers across processes (for STUDIO_CANCEL_ON_DISCONNECT)."""

        async def count() -> None:
            pipe = self.client.pipeline(transaction=False)
            pipe.incrby(readers_key(key), change)
            pipe.expire(readers_key(key), RUNNING_TTL_SECONDS)
            await pipe.execute()

        self._in_background(count(), "counting readers")

    async def reader_count(self, key: str) -> int | None:
        """Readers of `key` across processes; None while Redis is away."""
        try:
            value = await self.client.get(readers_key(key))
        except REDIS_AWAY as exc:
            self._note_away("reader_count", exc)
            return None
        return int(value or 0)
