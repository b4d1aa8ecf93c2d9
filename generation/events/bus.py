"""Which Redis event bus this process has, if any. The runner installs its bus
when it starts; readers find it here, without reaching up into the runner."""

from __future__ import annotations

from generation.events.redis_bus import RedisEventBus

_bus: RedisEventBus | None = None


def install_bus(bus: RedisEventBus | None) -> None:
    global _bus
    _bus = bus


def current_bus() -> RedisEventBus | None:
    return _bus
