"""Runs text generations apart from any HTTP connection.

Each process has one runner with its own event loop on a background thread.
A generation started there (generation.text.runs) keeps going when its page is
closed or refreshed; readers follow it through the event log
(generation.events.log), in this process or, through Redis
(generation.events.redis_bus), in any other.

Besides the generations, the runner's loop keeps their rows honest: it saves
the text of every running generation once a second in one statement, renews
their leases, stops the ones someone asked to stop from another process, and
fails the ones whose process died.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from generation.database import reader_db, runner_db
from generation.events.bus import install_bus
from generation.events.log import InProcessEventLog
from generation.events.log import log as default_log
from generation.events.redis_bus import RedisEventBus
from generation.lifecycle import transitions
from generation.lifecycle.delivery import (
    generation_settle_delivery,
    generation_settle_overdue,
)
from generation.lifecycle.slots import renew_slots
from generation.models import Generation
from generation.providers.base import TextProvider, TextRequest
from generation.text.runs import Publisher, RunState, run_generation

logger = logging.getLogger(__name__)
db = runner_db
_Item = TypeVar("_Item")
# The database is not there (rather than refusing a row): retry later, whole.
_DATABASE_AWAY = (OperationalError, InterfaceError)


def close_database_connections() -> None:
    """Close the runner's and the readers' connections (at shutdown, and between
    test databases)."""
    runner_db.close_connections()
    reader_db.close_connections()


class GenerationRunner:
    """This process's background event loop for generations, and their upkeep."""

    def __init__(self, log: InProcessEventLog) -> None:
        self.log = log
        self.bus: RedisEventBus | None = None
        # A provider for every generation here instead of STUDIO_LLM_PROVIDER (tests).
        self.provider: TextProvider | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._futures: dict[UUID, concurrent.futures.Future] = {}
        self._states: dict[UUID, RunState] = {}
        self._tasks: dict[UUID, asyncio.Task] = {}
        self._readers: dict[UUID, int] = {}
        self._failing_steps: set[str] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.start()

    def start(self) -> asyncio.AbstractEventLoop:
        """Start the loop thread, the upkeep and (with REDIS_URL) the Redis bus; idempotent."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="generation-runner", daemon=True
                )
                thread.start()
                self._loop = loop
                if settings.REDIS_URL:
                    self.bus = RedisEventBus(
                        settings.REDIS_URL, loop=loop, on_cancel=self._cancel_here
                    )
                    install_bus(self.bus)
                self._spawn(self._upkeep())
                if self.bus is not None:
                    self._spawn(self.bus.run())
            return self._loop

    def _spawn(self, coroutine) -> concurrent.futures.Future:
        assert self._loop is not None
        # Start from an empty context: the caller's (a request's) context
        # variables would tie sync_to_async to that request's executor, which
        # is gone once the response is sent.
        return contextvars.Context().run(asyncio.run_coroutine_threadsafe, coroutine, self._loop)

    def submit(self, generation_id: UUID, *, request: TextRequest | None = None) -> None:
        # Open the log now, so a reader that arrives before the loop gets to
        # the generation already follows it live.
        self.log.open(str(generation_id))
        self.start()
        future = self._spawn(self._run(generation_id, request))
        self._futures[generation_id] = future
        future.add_done_callback(lambda f: self._finished(generation_id, f))

    async def _run(self, generation_id: UUID, request: TextRequest | None) -> None:
        state = self._states[generation_id] = RunState(generation_id)
        self._tasks[generation_id] = asyncio.current_task()
        delivery = None
        try:
            delivery = await run_generation(
                generation_id,
                log=Publisher(self.log, self.bus),
                provider=self.provider,
                state=state,
                request=request,
            )
        finally:
            self._states.pop(generation_id, None)
            self._tasks.pop(generation_id, None)
            settle = runner_db.ordered(generation_id)(generation_settle_delivery)
            if delivery is not None:
                await settle(generation_id=generation_id, delivery=delivery)
            else:
                # Readers that are there get the end within moments; settle
                # once they had the chance.
                self.loop.call_later(
                    settings.STUDIO_DELIVERY_GRACE_SECONDS,
                    lambda: self._spawn(settle(generation_id=generation_id)),
                )

    def _finished(self, generation_id: UUID, future: concurrent.futures.Future) -> None:
        self._futures.pop(generation_id, None)
        if not future.cancelled() and future.exception() is not None:
            logger.error("generation %s crashed", generation_id, exc_info=future.exception())

    def cancel(self, generation_id: UUID) -> None:
        """Stop a generation, wherever it runs (its row already says so)."""
        if not self._cancel_here(generation_id) and self.bus is not None:
            self.start()
            self.loop.call_soon_threadsafe(self.bus.request_cancel, str(generation_id))

    def _cancel_here(self, generation_id: UUID | str) -> bool:
        generation_id = UUID(str(generation_id))
        if generation_id not in self._futures:
            return False
        # Cancelling the task closes the provider's HTTP stream at once; the
        # task then saves the text so far and sends `done`.
        self.loop.call_soon_threadsafe(self._cancel_task, generation_id)
        return True

    def _cancel_task(self, generation_id: UUID, tries: int = 20) -> None:
        task = self._tasks.get(generation_id)
        if task is not None:
            task.cancel()
        elif generation_id in self._futures and tries:
            # Submitted, and its task about to start: cancel it once it has
            # (it then leaves the line and sends `done`).
            self.loop.call_soon(self._cancel_task, generation_id, tries - 1)
        elif generation_id in self._futures:
            self._futures[generation_id].cancel()

    def wait(self, generation_id: UUID, timeout: float | None = None) -> None:
        """Block until the generation has finished here (for commands and tests)."""
        future = self._futures.get(generation_id)
        if future is not None:
            with contextlib.suppress(concurrent.futures.CancelledError):
                future.result(timeout=timeout)

    # --- readers -----------------------------------------------------------

    def reader_joined(self, generation_id: UUID) -> None:
        self._readers[generation_id] = self._readers.get(generation_id, 0) + 1
        if self.bus is not None:
            self.loop.call_soon_threadsafe(self.bus.count_reader, str(generation_id), 1)

    def reader_left(self, generation_id: UUID) -> None:
        """A reader went away; with STUDIO_CANCEL_ON_DISCONNECT, stop the generation
        if nobody is reading it once the grace period is over."""
        left = self._readers.get(generation_id, 1) - 1
        if left > 0:
            self._readers[generation_id] = left
        else:
            self._readers.pop(generation_id, None)
        if self.bus is not None:
            self.loop.call_soon_threadsafe(self.bus.count_reader, str(generation_id), -1)
        if settings.STUDIO_CANCEL_ON_DISCONNECT:
            self.loop.call_later(
                settings.STUDIO_DISCONNECT_GRACE_SECONDS,
                lambda: self._spawn(self._cancel_if_unread(generation_id)),
            )

    async def _cancel_if_unread(self, generation_id: UUID) -> None:
        readers = self._readers.get(generation_id, 0)
        if self.bus is not None:
            readers = await self.bus.reader_count(str(generation_id))
        if readers is None or readers > 0:
            return  # read somewhere, or nobody can tell now
        generation = await db(Generation.objects.filter(pk=generation_id).first)()
        if generation is not None and not generation.is_finished:
            logger.info("generation %s cancelled: its reader left", generation_id)
            # The same transition as Stop, then this runner's own cancel.
            await db(transitions.generation_request_cancel)(generation_id=generation_id)
            self.cancel(generation_id)

    # --- upkeep ------------------------------------------------------------

    async def _upkeep(self) -> None:
        """Checkpoints, leases, cancels from elsewhere, and the dead's generations.

        Each step on its own: one that fails (the database refused a statement,
        or went away) must not keep the others from running. A checkpoint that
        fails must never stop this process's leases from being renewed, or
        another process would take its healthy generations for dead."""
        last_lease = last_cancel_check = 0.0
        while True:
            interval = min(settings.STUDIO_CHECKPOINT_SECONDS, 0.5)
            await asyncio.sleep(interval)
            now = time.monotonic()
            await self._upkeep_step(self._save_checkpoints)
            if self._states and now - last_cancel_check >= 0.5:
                last_cancel_check = now
                await self._upkeep_step(self._stop_cancelled_elsewhere)
            if now - last_lease >= settings.STUDIO_LEASE_SECONDS / 3:
                last_lease = now
                await self._upkeep_step(self._keep_leases)

    async def _upkeep_step(self, step: Callable[[], Awaitable[None]]) -> None:
        """One step of upkeep; a failure is logged once until the step works again
        (a database or Redis that is away is not news every half second)."""
        name = step.__name__
        try:
            await step()
        except Exception:
            if name not in self._failing_steps:
                self._failing_steps.add(name)
                logger.warning("generation upkeep: %s failed; trying again", name, exc_info=True)
        else:
            if name in self._failing_steps:
                self._failing_steps.discard(name)
                logger.warning("generation upkeep: %s works again", name)

    async def _one_by_one_on_refusal(
        self, write: Callable[..., None], items: list[_Item], *, what: str
    ) -> list[_Item]:
        """`write(items)` as one statement; if the database refuses it, each item
        on its own, so that one bad row cannot hold back the others. Returns the
        items refused on their own. A database that is away refuses everything
        and raises: the caller tries again later, whole."""
        try:
            await db(write)(items)
            return []
        except _DATABASE_AWAY:
            raise
        except Exception:
            if len(items) == 1:
                logger.exception("generation upkeep: %s refused for %s", what, items[0])
                return items
            logger.warning("generation upkeep: %s refused for a batch; one by one", what)
        refused = []
        for item in items:
            try:
                await db(write)([item])
            except _DATABASE_AWAY:
                raise
            except Exception:
                logger.exception("generation upkeep: %s refused for %s", what, item)
                refused.append(item)
        return refused

    def _stop_unsavable(self, generation_id: UUID) -> None:
        """The database refuses this generation's row: stop it, failed, alone."""
        state = self._states.get(generation_id)
        if state is not None:
            state.unsavable = True
        self._cancel_here(generation_id)

    async def _save_checkpoints(self) -> None:
        states = [state for state in self._states.values() if state.dirty]
        if not states:
            return
        before = [state.saved_parts for state in states]
        checkpoints = [state.checkpoint() for state in states]
        try:
            refused = await self._one_by_one_on_refusal(
                lambda items: transitions.generation_checkpoint(checkpoints=items),
                checkpoints,
                what="checkpoint",
            )
        except Exception:
            # Nothing was saved: save it all next time.
            for state, saved_parts in zip(states, before, strict=True):
                state.saved_parts = saved_parts
            raise
        for checkpoint in refused:
            self._stop_unsavable(checkpoint.generation_id)

    async def _stop_cancelled_elsewhere(self) -> None:
        active = list(self._states)
        for generation_id in await db(transitions.generation_cancel_requested)(
            generation_ids=active
        ):
            self._cancel_here(generation_id)

    async def _keep_leases(self) -> None:
        # Unfinished generations this process holds: running ones, and queued
        # ones that were submitted here and have not started yet.
        held = list(self._futures)
        if held:
            refused = await self._one_by_one_on_refusal(
                lambda items: transitions.generation_renew_leases(generation_ids=items),
                held,
                what="lease renewal",
            )
            for generation_id in refused:
                self._stop_unsavable(generation_id)
            await renew_slots([str(generation_id) for generation_id in held])
        for generation_id in await db(transitions.generation_reap)():
            logger.warning("generation %s failed: the process running it stopped", generation_id)
            await db(generation_settle_delivery)(generation_id=generation_id)
        overdue = timezone.now() - timedelta(seconds=settings.STUDIO_DELIVERY_GRACE_SECONDS * 2)
        await db(generation_settle_overdue)(older_than=overdue)


runner = GenerationRunner(default_log)
