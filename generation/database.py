"""Threads that do the database work of streams and runs, off any event loop.

Neither the runner nor a stream reader should hold a database connection per
generation or per open stream: a thousand open streams would need a thousand
connections. Instead each pool below has a few threads with one long-lived
connection each, and every reader and run in the process shares them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connections


def _call_with_usable_connection(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Keep the connection across calls (reconnecting costs more than most of
    # these queries), but drop one that broke.
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()
    return func(*args, **kwargs)


class DatabaseThreads:
    """A named pool of database threads; `pool(func)` is `func` as a coroutine
    function that runs on one of them."""

    def __init__(self, name: str, workers: int) -> None:
        self.name = name
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, lambda: _call_with_usable_connection(func, *args, **kwargs)
            )

        return call

    def close_connections(self) -> None:
        """Close every thread's connections (at shutdown, and between test databases)."""
        # One task per thread: the barrier holds each until all are running,
        # so no thread can take two and leave another's connection open.
        barrier = threading.Barrier(self.workers)

        def close() -> None:
            barrier.wait(timeout=10)
            connections.close_all()

        for future in [self._executor.submit(close) for _ in range(self.workers)]:
            future.result()


class OrderedDatabaseThreads:
    """Database threads where the work for one key (a generation) always goes to
    the same thread, so that its writes stay in order, while different keys'
    commits wait for the disk side by side. `pool(func)` runs on any of them."""

    def __init__(self, name: str, workers: int) -> None:
        self.shards = [DatabaseThreads(f"{name}-{n}", 1) for n in range(workers)]
        self._next = itertools.cycle(self.shards)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return next(self._next)(func)

    def ordered(self, key: Any) -> DatabaseThreads:
        """The one thread that does all the work for `key`."""
        return self.shards[hash(key) % len(self.shards)]

    def close_connections(self) -> None:
        for shard in self.shards:
            shard.close_connections()


# The runner's writes: a generation's always on the same thread, in order.
runner_db = OrderedDatabaseThreads("generation-db", 4)
# Stream readers' queries (polling, delivery records, the final render).
reader_db = DatabaseThreads("stream-db", 4)
