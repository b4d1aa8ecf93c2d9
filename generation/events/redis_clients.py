"""The one place Redis clients are made, with timeouts that fit how we use them.

redis-py 8 gives every socket a 5 s read timeout by default. Our blocking reads
(XREAD BLOCK) wait up to BLOCK_MS on the server, so with that default an idle
process timed out, logged an error and reconnected every few seconds. Here a
socket waits for a reply longer than any blocking command can take; a pub/sub
listener blocks without a timeout (redis-py's own rule for `listen()`).
"""

from __future__ import annotations

import redis
import redis.asyncio

# The longest a blocking command (XREAD BLOCK) waits on the server.
BLOCK_MS = 5_000
# A reply may take that long, plus a loaded machine's delay.
SOCKET_TIMEOUT = BLOCK_MS / 1000 + 10
CONNECT_TIMEOUT = 5
_OPTIONS = {
    "decode_responses": True,
    "socket_timeout": SOCKET_TIMEOUT,
    "socket_connect_timeout": CONNECT_TIMEOUT,
    # A connection idle for this long is checked before it is used again.
    "health_check_interval": 30,
}


def async_redis(url: str, *, pool_size: int | None = None) -> redis.asyncio.Redis:
    """A client for an event loop. With `pool_size`, callers wait for a free
    connection rather than fail: a burst must queue, not error."""
    if pool_size is None:
        return redis.asyncio.Redis.from_url(url, **_OPTIONS)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=None, **_OPTIONS
    )
    return redis.asyncio.Redis(connection_pool=pool)


def sync_redis(url: str) -> redis.Redis:
    """A blocking client, for threads and worker processes."""
    return redis.Redis.from_url(url, **_OPTIONS)


# What a client raises when Redis is away (restarting, unreachable), rather
# than refusing a command.
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError, OSError)
