"""One run of a text generation: from its provider into the event log and the database.

`run_generation` streams one queued generation: it sends deltas as they come
(coalescing bursts), keeps what it sent in a RunState for the runner's
checkpoints, and ends every run, however it ends, with a stored status and a
`done` event. The runner (generation.text.runner) decides where and when runs happen.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from generation.database import runner_db
from generation.events.log import Event, EventName, InProcessEventLog
from generation.events.redis_bus import RedisEventBus
from generation.lifecycle import transitions
from generation.lifecycle.slots import slots_for
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
from generation.text.requests import generation_text_request
from studio.text import ModelTextCleaner, clean_model_text

logger = logging.getLogger(__name__)
Status = Generation.Status
_GENERIC_ERROR = gettext_lazy("Something went wrong while generating. Please try again.")
# A run whose text the database refused: the others carry on, this one ends.
UNSAVABLE = "unsavable_output"
_UNSAVABLE_ERROR = gettext_lazy(
    "The answer could not be saved, so this generation was stopped. "
    "The text saved before that is kept. Please try again."
)
# A run's database work happens on the runner's database threads: never on
# asgiref's shared thread (where a blocked caller would stall every generation),
# never on the event loop; each generation's on one thread, so in order.


@dataclass
class RunState:
    """What a running generation has sent so far, for checkpoints."""

    generation_id: UUID
    emitted: list[str] = field(default_factory=list)
    events_before_text: int = 0
    first_token_at: datetime | None = None
    saved_parts: int = 0  # how many of `emitted` the last checkpoint held
    # Set by the runner when the database refused this run's checkpoint.
    unsavable: bool = False

    @property
    def dirty(self) -> bool:
        return len(self.emitted) != self.saved_parts

    def checkpoint(self) -> transitions.Checkpoint:
        self.saved_parts = len(self.emitted)
        return transitions.Checkpoint(
            generation_id=self.generation_id,
            output="".join(self.emitted),
            events_before_text=self.events_before_text,
            first_token_at=self.first_token_at,
        )


class Publisher:
    """Where a run's events go: this process's log, and other processes through Redis."""

    def __init__(self, log: InProcessEventLog, bus: RedisEventBus | None = None) -> None:
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
    request: TextRequest | None = None,
) -> str | None:
    """Stream one queued generation from its provider into the event log and the
    database. `request` is what to ask the model, when the caller has it already
    (the request that queued the generation does). Returns the delivery outcome
    when the run itself decides it (an unexpected error), None otherwise."""
    publisher = log if isinstance(log, Publisher) else Publisher(log)
    key = str(generation_id)
    provider = provider or get_text_provider()
    state = state or RunState(generation_id)
    db = runner_db.ordered(generation_id)
    publisher.open(key)

    def tell_position(position: int) -> None:
        publisher.append(key, EventName.QUEUED, {"position": position})

    started = False
    try:
        async with slots_for(provider.name).slot(key, tell_position):
            try:
                if request is None:
                    request = await db(_load_text_request)(generation_id)
                started = request is not None and await db(transitions.generation_start)(
                    generation_id=generation_id,
                    provider=provider.name,
                    model=provider.model_for(request.tier),
                )
                if not started:
                    return None
            except Exception:
                # Never leave a generation queued or running with nobody working on it.
                logger.exception("generation %s could not be started", generation_id)
                await db(transitions.generation_finish)(
                    generation_id=generation_id,
                    status=Status.FAILED,
                    output="",
                    error_code="unknown_error",
                    error_message=str(_GENERIC_ERROR),
                    events_before_text=publisher.last_id(key),
                )
                return Generation.Delivery.UNKNOWN_ERROR
            # Messages the run stores (errors) are read by the person who started it.
            with translation.override(request.language):
                return await _stream_into(key, request, publisher, provider, state)
    except asyncio.CancelledError:
        if not started:
            # Stopped while it waited in line: it never reached the model.
            generation = await db(transitions.generation_cancel_waiting)(
                generation_id=generation_id, events_before_text=publisher.last_id(key)
            )
            if generation is not None:
                publisher.append(key, EventName.DONE, done_payload(generation))
        raise
    finally:
        publisher.close(key)


def _load_text_request(generation_id: UUID) -> TextRequest | None:
    generation = Generation.objects.select_related("template").filter(pk=generation_id).first()
    return generation_text_request(generation) if generation else None


class _TextStream:
    """A run's text on its way from the provider to the log and the row: deltas
    coalesced in a short window, the text cleaned once (studio.text), and the
    end stored however the run ends."""

    def __init__(
        self,
        key: str,
        request: TextRequest,
        publisher: Publisher,
        provider: TextProvider,
        state: RunState,
    ) -> None:
        self.key = key
        self.request = request
        self.publisher = publisher
        self.provider = provider
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.window = settings.STUDIO_COALESCE_MS / 1000
        self.pending: list[str] = []
        self.last_sent = -self.window
        self.flush_timer: asyncio.TimerHandle | None = None
        # The one place a model's text is made safe to store and send.
        self.cleaner = ModelTextCleaner()

    def take(self, raw: str) -> None:
        """A delta from the provider: out at once after a quiet spell; in a burst,
        it waits for the rest of the window and goes out with the others."""
        text = self.cleaner.feed(raw)
        if not text:
            return
        self.pending.append(text)
        if self.loop.time() - self.last_sent >= self.window:
            self.flush()
        elif self.flush_timer is None:
            self.flush_timer = self.loop.call_at(self.last_sent + self.window, self.flush)

    def flush(self) -> None:
        """Send the text that waited for the coalescing window as one delta."""
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if not self.pending:
            return
        text = "".join(self.pending)
        self.pending.clear()
        state = self.state
        if not state.emitted:
            state.events_before_text = self.publisher.last_id(self.key)
            state.first_token_at = timezone.now()
        state.emitted.append(text)
        self.publisher.append(self.key, EventName.DELTA, {"text": text})
        self.last_sent = self.loop.time()

    async def finish(self, status: str, **fields: Any) -> None:
        """Store how the run ended, then send `error` (if any) and `done`."""
        if tail := self.cleaner.flush():
            self.pending.append(tail)
        self.flush()
        state = self.state
        if not state.emitted:
            # No text: every event so far (its place in line) came before it.
            state.events_before_text = self.publisher.last_id(self.key)
        output = "".join(state.emitted)
        fields.setdefault("output_tokens", estimate_tokens(output))
        fields.setdefault(
            "input_tokens", estimate_tokens(self.request.system + self.request.prompt)
        )
        db = runner_db.ordered(state.generation_id)
        try:
            generation = await db(transitions.generation_finish)(
                generation_id=state.generation_id,
                status=status,
                output=output,
                model=self.provider.model_for(self.request.tier),
                events_before_text=state.events_before_text,
                first_token_at=state.first_token_at,
                **fields,
            )
        except Exception:
            # The row refused this end (its text, most likely): end it failed,
            # keeping the text of its last checkpoint, so that it never stays
            # running with nobody working on it.
            logger.exception("generation %s: its end could not be stored", state.generation_id)
            generation = await db(transitions.generation_fail)(
                generation_id=state.generation_id,
                error_code=UNSAVABLE,
                error_message=str(_UNSAVABLE_ERROR),
            )
        if generation.error_code:
            self.publisher.append(self.key, EventName.ERROR, error_payload(generation))
        self.publisher.append(self.key, EventName.DONE, done_payload(generation))


async def _stream_into(
    key: str,
    request: TextRequest,
    publisher: Publisher,
    provider: TextProvider,
    state: RunState,
) -> str | None:
    stream = _TextStream(key, request, publisher, provider, state)
    result: TextResult | None = None
    try:
        async for item in provider.stream(request):
            if isinstance(item, TextResult):
                result = item
            else:
                stream.take(item.text)
    except asyncio.CancelledError:
        if state.unsavable:
            # The runner stopped it: its text could not be saved.
            await stream.finish(
                Status.FAILED, error_code=UNSAVABLE, error_message=str(_UNSAVABLE_ERROR)
            )
        else:
            await stream.finish(Status.CANCELLED, finish_reason="cancelled")
        raise
    except ProviderError as exc:
        await stream.finish(
            Status.FAILED, error_code=exc.code, error_message=clean_model_text(exc.message)
        )
    except Exception:
        logger.exception("generation %s failed", state.generation_id)
        await stream.finish(
            Status.FAILED, error_code="unknown_error", error_message=str(_GENERIC_ERROR)
        )
        return Generation.Delivery.UNKNOWN_ERROR
    else:
        if result is None:
            await stream.finish(
                Status.FAILED,
                error_code="incomplete_stream",
                error_message=_("The model stopped without finishing its answer."),
            )
        else:
            await stream.finish(
                Status.COMPLETED,
                finish_reason=result.finish_reason,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
            )
    return None
