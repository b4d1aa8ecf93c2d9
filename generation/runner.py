"""Runs text generations apart from any HTTP connection.

Each process has one runner with its own event loop on a background thread.
A generation started there keeps going when its page is closed or refreshed;
readers follow it through the event log (generation.events), in this process
or, through Redis (generation.redis_events), in any other.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from generation import services
from generation.database import reader_db, runner_db
from generation.events import Event, EventName, InProcessEventLog
from generation.events import log as default_log
from generation.models import Generation
from generation.payloads import done_payload, error_payload
from generation.providers import get_text_provider
from generation.providers.base import (
    ProviderError,
    TextProvider,
    TextRequest,
    TextResult,
    estimate_tokens,
)
from templates_catalog.forms import labelled_values

logger = logging.getLogger(__name__)
Status = Generation.Status
_GENERIC_ERROR = gettext_lazy("Something went wrong while generating. Please try again.")


# The runner's database work happens on a thread of its own: never on asgiref's
# shared thread (where a blocked caller would stall every generation), never
# on the event loop; one thread keeps each generation's writes in order.
db = runner_db


def close_database_connections() -> None:
    """Close the runner's and the readers' connections (at shutdown, and between
    test databases)."""
    runner_db.close_connections()
    reader_db.close_connections()


def _text_request(generation: Generation) -> TextRequest:
    fields = list(generation.template.fields.all()) if generation.template else []
    return TextRequest(
        system=generation.system_prompt,
        prompt=generation.prompt,
        language=generation.language,
        template_title=generation.template_title,
        inputs=labelled_values(generation.inputs, fields, generation.language),
        tier=generation.template.tier if generation.template else "standard",
        continue_from=services.answer_so_far(generation),
    )


@dataclass
class RunState:
    """What a running generation has sent so far, for checkpoints."""

    generation_id: UUID
    emitted: list[str] = field(default_factory=list)
    events_before_text: int = 0
    first_token_at: datetime | None = None
    saved_parts: int = 0  # how many of `emitted` the last checkpoint held

    @property
    def dirty(self) -> bool:
        return len(self.emitted) != self.saved_parts

    def checkpoint(self) -> services.Checkpoint:
        self.saved_parts = len(self.emitted)
        return services.Checkpoint(
            generation_id=self.generation_id,
            output="".join(self.emitted),
            events_before_text=self.events_before_text,
            first_token_at=self.first_token_at,
        )


class Publisher:
    """Where a run's events go: this process's log, and other processes through Redis."""

    def __init__(self, log: InProcessEventLog, bus: Any = None) -> None:
        self.log = log
        self.bus = bus

    def open(self, key: str) -> None:
        self.log.open(key)

    def append(self, key: str, name: EventName, data: dict[str, Any]) -> Event:
        event = self.log.append(key, name, data)
        if self.bus is not None:
            self.bus.publish(key, event)
        return event

    def last_id(self, key: str) -> int:
        return self.log.last_id(key)

    def close(self, key: str) -> None:
        self.log.close(key)


async def run_generation(
    generation_id: UUID,
    *,
    log: InProcessEventLog | Publisher,
    provider: TextProvider | None = None,
    state: RunState | None = None,
) -> str | None:
    """Stream one queued generation from its provider into the event log and the
    database. Returns the delivery outcome when the run itself decides it (an
    unexpected error), None otherwise."""
    publisher = log if isinstance(log, Publisher) else Publisher(log)
    key = str(generation_id)
    provider = provider or get_text_provider()
    state = state or RunState(generation_id)
    publisher.open(key)
    try:
        try:
            generation = await db(services.generation_start)(
                generation_id=generation_id, provider=provider.name, model=provider.model
            )
            if generation is None:
                return None
            request = await db(_text_request)(generation)
            model = provider.model_for(request.tier)
            if model != provider.model:
                await db(Generation.objects.filter(pk=generation_id).update)(model=model)
        except Exception:
            # Never leave a generation queued or running with nobody working on it.
            logger.exception("generation %s could not be started", generation_id)
            await db(services.generation_finish)(
                generation_id=generation_id,
                status=Status.FAILED,
                output="",
                error_code="unknown_error",
                error_message=str(_GENERIC_ERROR),
            )
            return Generation.Delivery.UNKNOWN_ERROR
        # Messages the run stores (errors) are read by the person who started it.
        with translation.override(request.language):
            return await _stream_into(key, request, publisher, provider, state)
    finally:
        publisher.close(key)


async def _stream_into(
    key: str,
    request: TextRequest,
    publisher: Publisher,
    provider: TextProvider,
    state: RunState,
) -> str | None:
    loop = asyncio.get_running_loop()
    window = settings.STUDIO_COALESCE_MS / 1000
    pending: list[str] = []
    last_sent = -window
    flush_timer: asyncio.TimerHandle | None = None
    result: TextResult | None = None

    def flush() -> None:
        """Send the text that waited for the coalescing window as one delta."""
        nonlocal flush_timer, last_sent
        if flush_timer is not None:
            flush_timer.cancel()
            flush_timer = None
        if not pending:
            return
        text = "".join(pending)
        pending.clear()
        if not state.emitted:
            state.events_before_text = publisher.last_id(key)
            state.first_token_at = timezone.now()
        state.emitted.append(text)
        publisher.append(key, EventName.DELTA, {"text": text})
        last_sent = loop.time()

    async def finish(status: str, **fields) -> None:
        flush()
        output = "".join(state.emitted)
        fields.setdefault("output_tokens", estimate_tokens(output))
        fields.setdefault("input_tokens", estimate_tokens(request.system + request.prompt))
        generation = await db(services.generation_finish)(
            generation_id=state.generation_id,
            status=status,
            output=output,
            events_before_text=state.events_before_text,
            first_token_at=state.first_token_at,
            **fields,
        )
        if generation.error_code:
            publisher.append(key, EventName.ERROR, error_payload(generation))
        publisher.append(key, EventName.DONE, done_payload(generation))

    try:
        async for item in provider.stream(request):
            if isinstance(item, TextResult):
                result = item
                continue
            # PostgreSQL text cannot hold NUL; nothing else is changed.
            text = item.text.replace("\x00", "")
            if not text:
                continue
            pending.append(text)
            # A token after a quiet spell goes out at once; tokens in a burst
            # wait for the rest of the window and go out together.
            if loop.time() - last_sent >= window:
                flush()
            elif flush_timer is None:
                flush_timer = loop.call_at(last_sent + window, flush)
    except asyncio.CancelledError:
        await finish(Status.CANCELLED, finish_reason="cancelled")
        raise
    except ProviderError as exc:
        await finish(Status.FAILED, error_code=exc.code, error_message=exc.message)
    except Exception:
        logger.exception("generation %s failed", state.generation_id)
        await finish(
            Status.FAILED,
            error_code="unknown_error",
            error_message=str(_GENERIC_ERROR),
        )
        return Generation.Delivery.UNKNOWN_ERROR
    else:
        if result is None:
            await finish(
                Status.FAILED,
                error_code="incomplete_stream",
                error_message=_("The model stopped without finishing its answer."),
            )
        else:
            await finish(
                Status.COMPLETED,
                finish_reason=result.finish_reason,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
            )
    return None


class GenerationRunner:
    """This process's background event loop for generations, and their upkeep."""

    def __init__(self, log: InProcessEventLog) -> None:
        self.log = log
        self.bus: Any = None
        # A provider for every generation here instead of STUDIO_LLM_PROVIDER (tests).
        self.provider: TextProvider | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._futures: dict[UUID, concurrent.futures.Future] = {}
        self._states: dict[UUID, RunState] = {}
        self._tasks: dict[UUID, asyncio.Task] = {}
        self._readers: dict[UUID, int] = {}

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
                    from generation.redis_events import RedisEventBus

                    self.bus = RedisEventBus(
                        settings.REDIS_URL, loop=loop, on_cancel=self._cancel_here
                    )
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

    def submit(self, generation_id: UUID) -> None:
        # Open the log now, so a reader that arrives before the loop gets to
        # the generation already follows it live.
        self.log.open(str(generation_id))
        self.start()
        future = self._spawn(self._run(generation_id))
        self._futures[generation_id] = future
        future.add_done_callback(lambda f: self._finished(generation_id, f))

    async def _run(self, generation_id: UUID) -> None:
        state = self._states[generation_id] = RunState(generation_id)
        self._tasks[generation_id] = asyncio.current_task()
        delivery = None
        try:
            delivery = await run_generation(
                generation_id,
                log=Publisher(self.log, self.bus),
                provider=self.provider,
                state=state,
            )
        finally:
            self._states.pop(generation_id, None)
            self._tasks.pop(generation_id, None)
            if delivery is not None:
                await db(services.generation_settle_delivery)(
                    generation_id=generation_id, delivery=delivery
                )
            else:
                # Readers that are there get the end within moments; settle
                # once they had the chance.
                self.loop.call_later(
                    settings.STUDIO_DELIVERY_GRACE_SECONDS,
                    lambda: self._spawn(
                        db(services.generation_settle_delivery)(generation_id=generation_id)
                    ),
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

    def _cancel_task(self, generation_id: UUID) -> None:
        task = self._tasks.get(generation_id)
        if task is not None:
            task.cancel()
        elif generation_id in self._futures:
            # Submitted but not started yet: it is cancelled in the database
            # already, or will see the request when it starts.
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
        if readers > 0:
            return
        generation = await db(Generation.objects.filter(pk=generation_id).first)()
        if generation is not None and not generation.is_finished:
            logger.info("generation %s cancelled: its reader left", generation_id)
            await db(services.generation_cancel)(generation=generation)

    # --- upkeep ------------------------------------------------------------

    async def _upkeep(self) -> None:
        """Checkpoints, leases, cancels from elsewhere, and the dead's generations."""
        last_lease = last_cancel_check = 0.0
        while True:
            interval = min(settings.STUDIO_CHECKPOINT_SECONDS, 0.5)
            await asyncio.sleep(interval)
            try:
                now = time.monotonic()
                await self._save_checkpoints()
                active = list(self._states)
                if active and now - last_cancel_check >= 0.5:
                    last_cancel_check = now
                    for generation_id in await db(services.generation_cancel_requested)(
                        generation_ids=active
                    ):
                        self._cancel_here(generation_id)
                if now - last_lease >= settings.STUDIO_LEASE_SECONDS / 3:
                    last_lease = now
                    await self._keep_leases()
            except Exception:
                logger.exception("generation upkeep failed; trying again")

    async def _save_checkpoints(self) -> None:
        checkpoints = [state.checkpoint() for state in self._states.values() if state.dirty]
        if checkpoints:
            await db(services.generation_checkpoint)(checkpoints=checkpoints)

    async def _keep_leases(self) -> None:
        # Unfinished generations this process holds: running ones, and queued
        # ones that were submitted here and have not started yet.
        held = list(self._futures)
        if held:
            await db(services.generation_renew_leases)(generation_ids=held)
        for generation_id in await db(services.generation_reap)():
            logger.warning("generation %s failed: the process running it stopped", generation_id)
            await db(services.generation_settle_delivery)(generation_id=generation_id)
        overdue = timezone.now() - timedelta(seconds=settings.STUDIO_DELIVERY_GRACE_SECONDS * 2)
        await db(services.generation_settle_overdue)(older_than=overdue)


runner = GenerationRunner(default_log)
