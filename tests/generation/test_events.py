"""The event log: ordered ids, exact resumption, and the database able to replay any suffix."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from generation.events.log import Event, EventName, InProcessEventLog, events_from_database
from generation.models import Generation


def replay_text(events: list[Event]) -> str:
    return "".join(e.data["text"] for e in events if e.name is EventName.DELTA)


async def collect(log: InProcessEventLog, key: str, after: int) -> list[Event]:
    return [e async for e in log.follow(key, after, heartbeat=5) if e is not None]


def write(log: InProcessEventLog, key: str, deltas: list[str]) -> None:
    log.open(key)
    for text in deltas:
        log.append(key, EventName.DELTA, {"text": text})
    log.append(key, EventName.DONE, {"status": "completed"})
    log.close(key)


async def test_ids_advance_by_text_length_so_they_mark_offsets():
    log = InProcessEventLog(retention_seconds=60)
    write(log, "g", ["Hello", ", ", "world"])
    events = await collect(log, "g", 0)
    assert [e.id for e in events] == [5, 7, 12, 13]
    assert events[-1].name is EventName.DONE


async def test_a_reader_resumes_exactly_after_the_last_id_it_saw():
    log = InProcessEventLog(retention_seconds=60)
    write(log, "g", ["Hello", ", ", "world"])
    assert replay_text(await collect(log, "g", 7)) == "world"
    assert [e.name for e in await collect(log, "g", 12)] == [EventName.DONE]
    assert await collect(log, "g", 13) == []


async def test_live_readers_get_events_as_they_are_appended_from_another_thread():
    log = InProcessEventLog(retention_seconds=60)
    log.open("g")
    received: list[str] = []

    async def reader():
        async for event in log.follow("g", 0, heartbeat=5):
            received.append(event.name)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    assert received == []
    await asyncio.to_thread(log.append, "g", EventName.DELTA, {"text": "a"})
    await asyncio.sleep(0.05)
    assert received == ["delta"]
    await asyncio.to_thread(log.append, "g", EventName.DONE, {})
    await asyncio.to_thread(log.close, "g")
    await asyncio.wait_for(task, 2)
    assert received == ["delta", "done"]


async def test_an_idle_stream_yields_heartbeats():
    log = InProcessEventLog(retention_seconds=60)
    log.open("g")
    iterator = log.follow("g", 0, heartbeat=0.05)
    assert await asyncio.wait_for(anext(iterator), 1) is None
    await iterator.aclose()


def test_finished_logs_expire_after_retention():
    log = InProcessEventLog(retention_seconds=0)
    write(log, "g", ["x"])
    assert not log.has("g")


@given(
    deltas=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=12),
    before=st.integers(min_value=0, max_value=3),
    data=st.data(),
)
def test_database_replay_matches_the_live_log_from_any_point(deltas, before, data):
    log = InProcessEventLog(retention_seconds=60)
    log.open("g")
    for number in range(before):
        log.append("g", EventName.QUEUED, {"position": before - number})
    for text in deltas:
        log.append("g", EventName.DELTA, {"text": text})
    log.append("g", EventName.DONE, {"status": "completed"})
    log.close("g")
    live = asyncio.run(collect(log, "g", 0))
    row = Generation(
        output="".join(deltas), events_before_text=before, status=Generation.Status.COMPLETED
    )
    ids = [0, *[e.id for e in live]]
    after = data.draw(st.sampled_from(ids))
    from_live = [e for e in live if e.id > after]
    from_db = events_from_database(row, after)
    assert replay_text(from_db) == replay_text(from_live)
    # Both end with the same `done` (or both are empty after it).
    assert [(e.id, e.name) for e in from_db[-1:]] == [(e.id, e.name) for e in from_live[-1:]]


def test_database_replay_of_a_failed_generation_ends_with_error_then_done():
    row = Generation(
        output="partial",
        status=Generation.Status.FAILED,
        error_code="upstream_error",
        error_message="The model service failed.",
    )
    events = events_from_database(row, 0)
    assert [e.name for e in events] == ["delta", "error", "done"]
    assert [e.id for e in events] == [7, 8, 9]
    assert events_from_database(row, 8)[0].name is EventName.DONE


def test_database_replay_of_a_running_generation_has_no_done():
    row = Generation(output="so far", status=Generation.Status.RUNNING)
    assert [e.name for e in events_from_database(row, 2)] == ["delta"]
    assert events_from_database(row, 2)[0].data["text"] == " far"
