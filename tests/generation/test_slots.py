"""The line for the model: a cap on generations in flight, first come first
served, places told, slots given back however a holder ends."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio
from asgiref.sync import sync_to_async

from generation.events.log import EventName
from generation.lifecycle.limits import LimitExceeded
from generation.lifecycle.slots import LocalSlots, RedisSlots
from generation.models import Generation
from generation.reading.follow import follow_generation
from generation.services import generation_cancel, generation_create
from generation.text.runner import runner
from tests.factories import UserFactory, template_with_fields
from tests.fakes import ScriptedProvider
from tests.support.services import redis_url


def assert_first_come_first_served(order: list[str], arrivals: list[str], capacity: int) -> None:
    """Slots that free together go to the first `capacity` in line in any order
    between them; nobody overtakes anyone further ahead."""
    for started, key in enumerate(order):
        assert abs(started - arrivals.index(key)) < capacity, (key, order)


class Upstream:
    """Counts how many hold a slot at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.order: list[str] = []

    async def call(
        self, slots, key: str, positions: dict, seconds: float = 0.05, arrived=None, gate=None
    ) -> None:
        """Hold a slot for `seconds` (after `gate` opens, if given); `arrived` is
        set once `key` has a slot or has been told its place in line."""
        arrived = arrived or asyncio.Event()

        def told(place: int) -> None:
            positions.setdefault(key, []).append(place)
            arrived.set()

        async with slots.slot(key, told):
            arrived.set()
            self.order.append(key)
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(seconds)
            self.in_flight -= 1


@pytest.fixture
def redis_slots(settings):
    url = redis_url()
    redis.Redis.from_url(url).flushdb()
    settings.REDIS_URL = url
    yield lambda: RedisSlots("test", url)
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(params=["local", "redis"])
def make_slots(request, settings):
    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 3
    if request.param == "local":
        slots = LocalSlots("test")
        return lambda: slots
    return request.getfixturevalue("redis_slots")


async def test_no_more_than_the_cap_run_at_once_and_the_line_is_first_come_first_served(
    make_slots,
):
    slots = make_slots()
    upstream, positions = Upstream(), {}
    keys = [f"g{n:02d}" for n in range(12)]
    tasks, everyone_came = [], asyncio.Event()
    for key in keys:
        # They arrive in this order: each is in line before the next comes, and
        # the first three hold their slots until all are in.
        arrived = asyncio.Event()
        call = upstream.call(slots, key, positions, arrived=arrived, gate=everyone_came)
        tasks.append(asyncio.create_task(call))
        await asyncio.wait_for(arrived.wait(), 10)
    everyone_came.set()
    await asyncio.gather(*tasks)
    assert upstream.most == 3
    assert_first_come_first_served(upstream.order, keys, 3)
    # The first three never waited; the rest were told their place, first the
    # one they had on arrival, and it only ever went down.
    assert not any(key in positions for key in keys[:3])
    # On arrival nobody is told a place behind more people than arrived before it.
    for arrival, key in enumerate(keys[3:]):
        assert 1 <= positions[key][0] <= arrival + 1
    assert positions[keys[3]][0] == 1
    for told in positions.values():
        assert told == sorted(told, reverse=True)
    assert slots.waiting() == 0


async def test_a_holder_that_fails_or_is_cancelled_gives_its_slot_back(make_slots, settings):
    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 1
    slots = make_slots()
    with pytest.raises(RuntimeError):
        async with slots.slot("broken", print):
            raise RuntimeError("the model broke")
    holder = asyncio.create_task(Upstream().call(slots, "holder", {}, seconds=5))
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(Upstream().call(slots, "waiter", {}, seconds=0))
    await asyncio.sleep(0.3)
    assert slots.waiting() == 1
    waiter.cancel()  # stopped while it waited: it leaves the line
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert slots.waiting() == 0
    async with asyncio.timeout(2), slots.slot("next", print):
        pass


async def test_two_processes_share_the_cap_and_one_order(redis_slots, settings):
    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 3
    first, second = redis_slots(), redis_slots()  # as two processes would have
    upstream, positions = Upstream(), {}
    keys = [f"g{n:02d}" for n in range(20)]
    tasks = []
    store = redis.asyncio.Redis.from_url(redis_url())
    for number, key in enumerate(keys):
        slots = first if number % 2 else second
        tasks.append(asyncio.create_task(upstream.call(slots, key, positions)))
        # Its turn is its arrival in Redis: let it arrive before the next one.
        for _ in range(5000):
            if any([await store.zscore(name, key) for name in slots.keys[:2]]):
                break
            await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    await store.aclose()
    assert upstream.most == 3
    assert_first_come_first_served(upstream.order, keys, 3)


async def test_a_dead_processs_slot_comes_back_when_its_lease_lapses(redis_slots, settings):
    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 1
    settings.STUDIO_LEASE_SECONDS = 1
    dead, alive = redis_slots(), redis_slots()
    loop = asyncio.get_running_loop()
    taken = loop.time()
    # The dead process took the slot and then stopped renewing it (it was killed).
    assert await dead._try(["held-by-the-dead"]) == [0]
    upstream, positions = Upstream(), {}
    await asyncio.wait_for(upstream.call(alive, "waiting", positions), timeout=10)
    assert positions["waiting"] == [1]
    assert loop.time() - taken >= 1  # not before the lease lapsed


async def test_renewed_leases_keep_their_slot(redis_slots, settings):
    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 1
    settings.STUDIO_LEASE_SECONDS = 0.5
    slots = redis_slots()
    assert await slots._try(["holder"]) == [0]
    for _ in range(4):
        await asyncio.sleep(0.2)
        await slots.renew(["holder"])
    assert await slots._try(["other"]) == [1]


# --- Generations in line ---------------------------------------------------------


@pytest.fixture
def slow_model(monkeypatch, settings):
    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 1
    monkeypatch.setattr(runner, "provider", ScriptedProvider(["word "] * 20, delay=0.05))


@pytest.mark.django_db(transaction=True)
async def test_generations_beyond_the_cap_are_told_their_place_then_run(slow_model):
    user = await sync_to_async(UserFactory)()
    template = await sync_to_async(template_with_fields)()
    generations = [
        await sync_to_async(generation_create)(
            user=user, template=template, inputs={"recipient": "Sato"}, language="en"
        )
        for _ in range(3)
    ]
    for generation in generations:
        await asyncio.to_thread(runner.wait, generation.pk, 30)
    places = []
    for generation in generations:
        events = [e async for e in follow_generation(generation.pk, 0) if e is not None]
        assert events[-1].name is EventName.DONE
        places.append([e.data["position"] for e in events if e.name is EventName.QUEUED])
    assert places[0] == []
    assert places[1][0] == 1
    assert places[2][0] == 2
    for generation in generations:
        await generation.arefresh_from_db()
        assert generation.status == Generation.Status.COMPLETED
        assert generation.started_at >= generations[0].started_at


@pytest.mark.django_db(transaction=True)
async def test_stopping_a_generation_in_line_ends_it_without_calling_the_model(slow_model):
    user = await sync_to_async(UserFactory)()
    template = await sync_to_async(template_with_fields)()

    async def create():
        return await sync_to_async(generation_create)(
            user=user, template=template, inputs={"recipient": "Sato"}, language="en"
        )

    running, waiting = await create(), await create()
    await asyncio.sleep(0.3)
    await sync_to_async(generation_cancel)(generation=waiting)
    await asyncio.to_thread(runner.wait, waiting.pk, 10)
    await waiting.arefresh_from_db()
    assert waiting.status == Generation.Status.CANCELLED
    assert waiting.started_at is None
    await asyncio.to_thread(runner.wait, running.pk, 30)
    await running.arefresh_from_db()
    assert running.status == Generation.Status.COMPLETED
    assert len(runner.provider.requests) == 1  # only the running one reached the model
    events = [e async for e in follow_generation(waiting.pk, 0) if e is not None]
    assert [e.name for e in events] == [EventName.QUEUED, EventName.DONE]
    assert events[-1].data["status"] == "cancelled"


@pytest.mark.django_db(transaction=True)
async def test_a_full_line_refuses_new_generations_with_a_clear_message(slow_model, settings):
    settings.STUDIO_MAX_QUEUED_GENERATIONS = 1
    user = await sync_to_async(UserFactory)()
    template = await sync_to_async(template_with_fields)()

    async def create():
        return await sync_to_async(generation_create)(
            user=user, template=template, inputs={"recipient": "Sato"}, language="en"
        )

    running, waiting = await create(), await create()
    await asyncio.sleep(0.3)
    with pytest.raises(LimitExceeded, match="1 generation is waiting") as refused:
        await create()
    assert refused.value.retry_after == 30
    assert await Generation.objects.acount() == 2
    for generation in (running, waiting):
        await asyncio.to_thread(runner.wait, generation.pk, 30)
    await create()  # the line is empty again
