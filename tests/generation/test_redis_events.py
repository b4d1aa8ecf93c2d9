"""The Redis event bus carries a generation's events between processes exactly.

Two buses on two event loops stand in for two processes; they share only Redis.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
import redis

from generation.events.log import EventName, InProcessEventLog
from generation.events.redis_bus import RedisEventBus, stream_key
from tests.support.services import redis_url


class Process:
    """An event loop on its own thread with a bus, like one web process's runner."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cancelled: list[str] = []
        self.bus = RedisEventBus(url, loop=self.loop, on_cancel=self.cancelled.append)
        self.task = asyncio.run_coroutine_threadsafe(self.bus.run(), self.loop)
        self.log = InProcessEventLog(retention_seconds=60)

    def call(self, func, *args):
        async def run():
            return func(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def write(self, key: str, name: EventName, data: dict):
        """Append to this process's log and publish, as the runner does."""

        def append():
            event = self.log.append(key, name, data)
            self.bus.publish(key, event)
            return event

        return self.call(append)

    def stop(self):
        async def cancel():
            self.task.cancel()
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def url():
    address = redis_url()
    yield address
    redis.Redis.from_url(address).flushdb()


@pytest.fixture
def processes(url):
    started = [Process(url), Process(url)]
    yield started
    for process in started:
        process.stop()


async def read(bus: RedisEventBus, key: str, after: int = 0):
    assert await bus.watch(key)
    events = []
    async for event in bus.mirror.follow(key, after, heartbeat=5):
        assert event is not None, "no event for 5 s"
        events.append(event)
        if event.name is EventName.DONE:
            return events
    return events


def texts(events):
    return "".join(e.data["text"] for e in events if e.name is EventName.DELTA)


async def wait_for_redis(url, key, count):
    client = redis.asyncio.Redis.from_url(url)
    for _ in range(200):
        if await client.xlen(stream_key(key)) >= count:
            break
        await asyncio.sleep(0.01)
    await client.aclose()


async def test_a_reader_in_another_process_gets_every_event_once_while_it_runs(url, processes):
    writer, reader = processes
    key = str(uuid.uuid4())
    writer.log.open(key)
    parts = ["こんにちは", "、", "world\r\n", "data: forged\n\n", "end"]
    writer.write(key, EventName.DELTA, {"text": parts[0]})
    writer.write(key, EventName.DELTA, {"text": parts[1]})
    await wait_for_redis(url, key, 2)
    reading = asyncio.create_task(read(reader.bus, key))
    await asyncio.sleep(0.1)  # the reader is now following live
    for part in parts[2:]:
        writer.write(key, EventName.DELTA, {"text": part})
        await asyncio.sleep(0.01)
    writer.write(key, EventName.DONE, {"status": "completed"})
    events = await asyncio.wait_for(reading, 5)
    local = writer.log._streams[key].events
    assert [(e.id, e.name, e.data) for e in events] == [(e.id, e.name, e.data) for e in local]
    assert texts(events) == "".join(parts)


async def test_a_finished_stream_replays_and_ends_with_done(url, processes):
    writer, reader = processes
    key = str(uuid.uuid4())
    writer.log.open(key)
    writer.write(key, EventName.DELTA, {"text": "all of it"})
    writer.write(key, EventName.DONE, {"status": "completed"})
    await wait_for_redis(url, key, 2)
    events = await asyncio.wait_for(read(reader.bus, key), 5)
    assert [e.name for e in events] == ["delta", "done"]


async def test_a_reader_resuming_mid_event_gets_only_what_it_lacks(url, processes):
    writer, reader = processes
    key = str(uuid.uuid4())
    writer.log.open(key)
    writer.write(key, EventName.DELTA, {"text": "abcdef"})  # id 6
    writer.write(key, EventName.DONE, {"status": "completed"})
    await wait_for_redis(url, key, 2)
    events = await asyncio.wait_for(read(reader.bus, key, after=4), 5)
    assert texts(events) == "ef"
    assert events[0].id == 6


async def test_a_stream_redis_does_not_have_is_not_watched(processes):
    _, reader = processes
    assert await reader.bus.watch(str(uuid.uuid4())) is False


async def test_many_readers_share_one_blocking_connection(url, processes):
    writer, reader = processes
    keys = [str(uuid.uuid4()) for _ in range(150)]
    for key in keys:
        writer.log.open(key)
        writer.write(key, EventName.DELTA, {"text": "start "})
    await wait_for_redis(url, keys[-1], 1)
    readings = [asyncio.create_task(read(reader.bus, key)) for key in keys]
    await asyncio.sleep(0.3)
    for key in keys:
        writer.write(key, EventName.DELTA, {"text": "end"})
        writer.write(key, EventName.DONE, {"status": "completed"})
    results = await asyncio.wait_for(asyncio.gather(*readings), 10)
    assert all(texts(events) == "start end" for events in results)
    clients = redis.Redis.from_url(url).client_list()
    # A bounded pool, the one blocking read and pub/sub per process: far fewer
    # connections than the 150 readers (one blocking read each would need 150).
    assert len(clients) < len(keys) / 2


async def test_a_stop_request_reaches_the_other_process(processes):
    asker, runner_process = processes
    await asyncio.sleep(0.2)  # both are subscribed
    asker.call(asker.bus.request_cancel, "some-generation")
    for _ in range(100):
        if runner_process.cancelled:
            break
        await asyncio.sleep(0.01)
    assert runner_process.cancelled == ["some-generation"]
