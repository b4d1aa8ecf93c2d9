"""Runs text generations apart from any HTTP connection.

Each process has one runner with its own event loop on a background thread.
A generation started there keeps going when its page is closed or refreshed;
readers follow it through the event log (generation.events).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from generation import services
from generation.events import EventName, InProcessEventLog
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
# on the event loop.
_database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generation-db")


def _fresh_connection_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    close_old_connections()  # drop a connection that broke or outlived CONN_MAX_AGE
    return func(*args, **kwargs)


def db(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a coroutine function that runs on the runner's database thread."""

    async def call(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _database, lambda: _fresh_connection_call(func, *args, **kwargs)
        )

    return call


def close_database_connections() -> None:
    """Close the runner thread's connections (at shutdown, and between test databases)."""
    _database.submit(connections.close_all).result()


def _text_request(generation: Generation) -> TextRequest:
    fields = list(generation.template.fields.all()) if generation.template else []
    return TextRequest(
        system=generation.system_prompt,
        prompt=generation.prompt,
        language=generation.language,
        template_title=generation.template_title,
        inputs=labelled_values(generation.inputs, fields, generation.language),
    )


async def run_generation(
    generation_id: UUID, *, log: InProcessEventLog, provider: TextProvider | None = None
) -> None:
    """Stream one queued generation from its provider into the event log and the database."""
    key = str(generation_id)
    provider = provider or get_text_provider()
    log.open(key)
    try:
        try:
            generation = await db(services.generation_start)(
                generation_id=generation_id, provider=provider.name, model=provider.model
            )
            if generation is None:
                return
            request = await db(_text_request)(generation)
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
            return
        # Messages the run stores (errors) are read by the person who started it.
        with translation.override(request.language):
            await _stream_into(generation_id, key, request, log=log, provider=provider)
    finally:
        log.close(key)


async def _stream_into(
    generation_id: UUID,
    key: str,
    request: TextRequest,
    *,
    log: InProcessEventLog,
    provider: TextProvider,
) -> None:
    parts: list[str] = []
    result: TextResult | None = None
    last_checkpoint = time.monotonic()

    async def finish(status: str, **fields) -> None:
        output = "".join(parts)
        fields.setdefault("output_tokens", estimate_tokens(output))
        fields.setdefault("input_tokens", estimate_tokens(request.system + request.prompt))
        generation = await db(services.generation_finish)(
            generation_id=generation_id, status=status, output=output, **fields
        )
        if generation.error_code:
            log.append(key, EventName.ERROR, error_payload(generation))
        log.append(key, EventName.DONE, done_payload(generation))

    try:
        async for item in provider.stream(request):
            if isinstance(item, TextResult):
                result = item
                continue
            # PostgreSQL text cannot hold NUL; nothing else is changed.
            text = item.text.replace("\x00", "")
            if not text:
                continue
            if not parts:
                await db(services.generation_record_first_token)(
                    generation_id=generation_id, events_before_text=log.last_id(key)
                )
            parts.append(text)
            log.append(key, EventName.DELTA, {"text": text})
            if time.monotonic() - last_checkpoint >= settings.STUDIO_CHECKPOINT_SECONDS:
                last_checkpoint = time.monotonic()
                await db(services.generation_checkpoint)(
                    generation_id=generation_id, output="".join(parts)
                )
    except asyncio.CancelledError:
        await finish(Status.CANCELLED, finish_reason="cancelled")
        raise
    except ProviderError as exc:
        await finish(Status.FAILED, error_code=exc.code, error_message=exc.message)
    except Exception:
        logger.exception("generation %s failed", generation_id)
        await finish(
            Status.FAILED,
            error_code="unknown_error",
            error_message=str(_GENERIC_ERROR),
        )
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


class GenerationRunner:
    """This process's background event loop for generations."""

    def __init__(self, log: InProcessEventLog) -> None:
        self.log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._futures: dict[UUID, concurrent.futures.Future] = {}

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="generation-runner", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop

    def submit(self, generation_id: UUID) -> None:
        # Open the log now, so a reader that arrives before the loop gets to
        # the generation already follows it live.
        self.log.open(str(generation_id))
        loop = self._ensure_loop()
        # Start from an empty context: the caller's (a request's) context
        # variables would tie sync_to_async to that request's executor, which
        # is gone once the response is sent.
        future = contextvars.Context().run(
            asyncio.run_coroutine_threadsafe, run_generation(generation_id, log=self.log), loop
        )
        self._futures[generation_id] = future
        future.add_done_callback(lambda f: self._finished(generation_id, f))

    def _finished(self, generation_id: UUID, future: concurrent.futures.Future) -> None:
        self._futures.pop(generation_id, None)
        if not future.cancelled() and future.exception() is not None:
            logger.error("generation %s crashed", generation_id, exc_info=future.exception())

    def wait(self, generation_id: UUID, timeout: float | None = None) -> None:
        """Block until the generation has finished here (for commands and tests)."""
        future = self._futures.get(generation_id)
        if future is not None:
            with contextlib.suppress(concurrent.futures.CancelledError):
                future.result(timeout=timeout)


runner = GenerationRunner(default_log)
