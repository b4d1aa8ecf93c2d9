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

from generation.events import Event, EventName, InProcessEventLog

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


def _decode(entry_id: str, fields: dict[str, str]) -> Event:
    return Event(int(entry_id.split("-", 1)[1]), EventName(fields["e"]), json.loads(fields["d"]))


def _connect(url: str, **kwargs) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, **kwargs)


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

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            pool = redis.BlockingConnectionPool.from_url(
                self.url, max_connections=_POOL_SIZE, timeout=None, decode_responses=True
            )
            self._client = redis.Redis(connection_pool=pool)
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
            except Exception:
                logger.exception("Redis event bus: %s failed; retrying", loop_body.__name__)
                await asyncio.sleep(1)

    # --- writing -----------------------------------------------------------

    def publish(self, key: str, event: Event) -> None:
        """Queue an event for Redis (call on the runner loop; never blocks)."""
        self.outbox.put_nowait((key, event))

    async def _write(self) -> None:
        """Send queued events in pipelined batches, in order."""
        while True:
            batch = [await self.outbox.get()]
            while len(batch) < _BATCH and not self.outbox.empty():
                batch.append(self.outbox.get_nowait())
            pipe = self.client.pipeline(transaction=False)
            for key, event in batch:
                name = stream_key(key)
                pipe.xadd(name, encode_event(event), id=f"0-{event.id}")
                finished = event.name is EventName.DONE
                ttl = (
                    settings.STUDIO_EVENT_LOG_RETENTION_SECONDS if finished else RUNNING_TTL_SECONDS
                )
                pipe.expire(name, max(1, int(ttl)))
            results = await pipe.execute(raise_on_error=False)
            for result in results:
                if isinstance(result, Exception):
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
        """One blocking XREAD for every mirrored stream, copied into the mirror."""
        connection = _connect(self.url)
        try:
            while True:
                streams = {self._wake_key: self._wake_id}
                streams.update({stream_key(k): f"0-{last}" for k, last in self._watched.items()})
                response = await connection.xread(streams, block=5000, count=_BATCH)
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
        asyncio.ensure_future(self.client.publish(CANCEL_CHANNEL, key))

    async def _listen(self) -> None:
        pubsub = _connect(self.url).pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CANCEL_CHANNEL)
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

        asyncio.ensure_future(count())

    async def reader_count(self, key: str) -> int:
        value = await self.client.get(readers_key(key))
        return int(value or 0)
