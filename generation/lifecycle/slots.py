"""The line for the model: at most STUDIO_MAX_CONCURRENT_GENERATIONS text
generations per provider talk to it at once; the others wait their turn, first
come first served, and are told their place.

With REDIS_URL the slots and the line are shared by every process through
Redis (`RedisSlots`), each holder and waiter with a lease its process renews,
so that a process that dies gives its places back when the lease lapses.
Without it they are this process's own (`LocalSlots`).

A generation waits in `run_generation` (generation.text.runs) before it starts; the
runner renews the leases of everything it holds (generation.text.runner). Waiters
of one process are served by one pump: a single call to Redis a tick asks for
all of them, in their order, so that a thousand waiters cost no more round
trips than one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from django.conf import settings

from generation.events.redis_clients import async_redis, sync_redis

logger = logging.getLogger(__name__)
PositionCallback = Callable[[int], object]
# How often waiters ask again (a local release wakes them at once) and how often
# a waiter's changed place is told, at most.
_TICK_SECONDS = 0.1
_POSITION_EVERY_SECONDS = 1.0


class _Waiter:
    __slots__ = ("granted", "on_position", "position", "told", "told_at")

    def __init__(self, on_position: PositionCallback) -> None:
        self.granted = asyncio.get_running_loop().create_future()
        self.on_position = on_position
        self.position = 0
        self.told = 0
        self.told_at = 0.0

    def tell(self, position: int, now: float) -> None:
        """Report a changed place, but not more than once a second (a line of a
        thousand moves with every slot that frees)."""
        self.position = position
        if position != self.told and (
            not self.told or now - self.told_at >= _POSITION_EVERY_SECONDS
        ):
            self.told, self.told_at = position, now
            self.on_position(position)


class Slots:
    """What LocalSlots and RedisSlots share: the waiting and the pump."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._waiters: OrderedDict[str, _Waiter] = OrderedDict()
        self._wake: asyncio.Event | None = None
        self._pump: asyncio.Task | None = None

    @property
    def capacity(self) -> int:
        return settings.STUDIO_MAX_CONCURRENT_GENERATIONS

    @contextlib.asynccontextmanager
    async def slot(self, key: str, on_position: PositionCallback) -> AsyncIterator[None]:
        """Hold a slot for `key` while the block runs; wait in line for it first,
        calling `on_position(n)` as the place in line changes."""
        try:
            await self._acquire(key, on_position)
            yield
        finally:
            self._waiters.pop(key, None)
            try:
                await self._release(key)
            except Exception:
                # Redis away: the place comes back when its lease lapses.
                logger.warning("could not give back the slot of %s", key, exc_info=True)
            if self._wake is not None:
                self._wake.set()

    async def _acquire(self, key: str, on_position: PositionCallback) -> None:
        if not self._waiters and await self._try([key]) == [0]:
            return
        waiter = self._waiters[key] = _Waiter(on_position)
        await self._enqueue(key)
        self._ensure_pump()
        self._wake.set()
        await waiter.granted

    def _ensure_pump(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _run_pump(self) -> None:
        while self._waiters:
            self._wake.clear()
            keys = list(self._waiters)
            try:
                positions = await self._try(keys)
            except Exception:  # Redis away for a moment: the waiters wait on
                positions = [waiter.position for waiter in self._waiters.values()]
            now = time.monotonic()
            for key, position in zip(keys, positions, strict=True):
                waiter = self._waiters.get(key)
                if waiter is None:
                    continue
                if position == 0:
                    del self._waiters[key]
                    if not waiter.granted.done():
                        waiter.granted.set_result(None)
                else:
                    waiter.tell(position, now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK_SECONDS)

    # The store: a slot for each of `keys` that may have one (in order), else its place.
    async def _try(self, keys: list[str]) -> list[int]:
        raise NotImplementedError

    async def _enqueue(self, key: str) -> None:
        raise NotImplementedError

    async def _release(self, key: str) -> None:
        raise NotImplementedError

    async def renew(self, keys: list[str]) -> None:
        """Extend the leases of these holders and waiters (the runner's upkeep)."""

    def waiting(self) -> int:
        """How many wait in line (every process's), from any thread."""
        raise NotImplementedError


class LocalSlots(Slots):
    """One process's slots and line."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        self._holders: set[str] = set()
        self._line: OrderedDict[str, None] = OrderedDict()

    async def _try(self, keys: list[str]) -> list[int]:
        for key in keys:
            if key not in self._holders:
                self._line.setdefault(key, None)
        free = self.capacity - len(self._holders)
        for key in list(self._line)[: max(free, 0)]:
            del self._line[key]
            self._holders.add(key)
        rank = {key: index for index, key in enumerate(self._line)}
        return [0 if key in self._holders else rank[key] + 1 for key in keys]

    async def _enqueue(self, key: str) -> None:
        self._line.setdefault(key, None)

    async def _release(self, key: str) -> None:
        self._holders.discard(key)
        self._line.pop(key, None)

    def waiting(self) -> int:
        return len(self._line)


# Redis: `holders` and `lease` are sorted sets scored by lease expiry (ms);
# `line` is scored by a ticket from `tickets`, which keeps the order across
# processes. Expired holders and waiters are dropped before every decision.
_PURGE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, key in ipairs(gone) do
  redis.call('ZREM', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
end
"""
_TRY = (
    _PURGE
    + """
local expiry = now + tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local result = {}
for i = 4, #ARGV do
  local key = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], key) then
    result[#result + 1] = 0
  else
    if not redis.call('ZSCORE', KEYS[2], key) then
      redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), key)
    end
    redis.call('ZADD', KEYS[3], expiry, key)
    local free = capacity - redis.call('ZCARD', KEYS[1])
    local rank = redis.call('ZRANK', KEYS[2], key)
    if rank < free then
      redis.call('ZREM', KEYS[2], key)
      redis.call('ZREM', KEYS[3], key)
      redis.call('ZADD', KEYS[1], expiry, key)
      result[#result + 1] = 0
    else
      result[#result + 1] = rank - math.max(free, 0) + 1
    end
  end
end
return result
"""
)
_WAITING = (
    _PURGE
    + """
return redis.call('ZCARD', KEYS[2])
"""
)


class RedisSlots(Slots):
    """Slots and a line shared by every process through Redis."""

    def __init__(self, provider: str, url: str) -> None:
        super().__init__(provider)
        self.url = url
        prefix = f"studio:slots:{provider}"
        self.keys = [f"{prefix}:holders", f"{prefix}:line", f"{prefix}:lease", f"{prefix}:tickets"]
        self._client = None
        self._sync_client = None

    @property
    def client(self):
        if self._client is None:
            self._client = async_redis(self.url)
            self._try_script = self._client.register_script(_TRY)
        return self._client

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    @staticmethod
    def _lease_ms() -> int:
        return int(settings.STUDIO_LEASE_SECONDS * 1000)

    async def _try(self, keys: list[str]) -> list[int]:
        self.client  # noqa: B018  (registers the script)
        args = [self._now_ms(), self._lease_ms(), self.capacity, *keys]
        return [int(position) for position in await self._try_script(keys=self.keys, args=args)]

    async def _enqueue(self, key: str) -> None:
        """Nothing to do: asking for a slot takes a place in line."""

    async def _release(self, key: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys[0], key).zrem(self.keys[1], key).zrem(self.keys[2], key)
            await pipe.execute()

    async def renew(self, keys: list[str]) -> None:
        if not keys:
            return
        expiry = self._now_ms() + self._lease_ms()
        mapping = dict.fromkeys(keys, expiry)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys[0], mapping, xx=True).zadd(self.keys[2], mapping, xx=True)
            await pipe.execute()

    # From threads and worker processes (image generations in Celery): the
    # same line through a blocking client.

    @property
    def sync_client(self):
        if self._sync_client is None:
            self._sync_client = sync_redis(self.url)
            self._sync_try = self._sync_client.register_script(_TRY)
            self._waiting_script = self._sync_client.register_script(_WAITING)
        return self._sync_client

    def take(self, key: str) -> int:
        """A slot for `key` now (0), or its place in line, which it keeps while
        it asks again before its lease lapses."""
        self.sync_client  # noqa: B018  (registers the scripts)
        args = [self._now_ms(), self._lease_ms(), self.capacity, key]
        return int(self._sync_try(keys=self.keys, args=args)[0])

    def give_back(self, key: str) -> None:
        pipe = self.sync_client.pipeline(transaction=True)
        pipe.zrem(self.keys[0], key).zrem(self.keys[1], key).zrem(self.keys[2], key)
        pipe.execute()

    def keep(self, key: str) -> None:
        """Renew the lease of `key`'s slot (while a long request runs)."""
        expiry = self._now_ms() + self._lease_ms()
        self.sync_client.zadd(self.keys[0], {key: expiry}, xx=True)

    def waiting(self) -> int:
        self.sync_client  # noqa: B018
        return int(self._waiting_script(keys=self.keys, args=[self._now_ms()]))


_slots: dict[str, Slots] = {}


def slots_for(provider: str) -> Slots:
    """This process's slots for a provider (shared through Redis with REDIS_URL)."""
    slots = _slots.get(provider)
    if slots is None:
        if settings.REDIS_URL:
            slots = RedisSlots(provider, settings.REDIS_URL)
        else:
            slots = LocalSlots(provider)
        _slots[provider] = slots
    return slots


async def renew_slots(keys: list[str]) -> None:
    """Extend the leases of this process's holders and waiters, for every provider."""
    for slots in list(_slots.values()):
        try:
            await slots.renew(keys)
        except Exception:
            logger.warning("could not renew the slot leases", exc_info=True)


def image_slots_for(provider: str) -> RedisSlots | None:
    """The line of an image provider, shared by every worker through Redis; None
    without Redis (the workers' own concurrency is the limit then)."""
    if not settings.REDIS_URL:
        return None
    slots = _slots.get(f"image:{provider}")
    if slots is None:
        slots = _slots[f"image:{provider}"] = RedisSlots(f"image:{provider}", settings.REDIS_URL)
    return slots  # type: ignore[return-value]


def reset_slots() -> None:
    """Forget every process-local slot and line (between tests)."""
    _slots.clear()
