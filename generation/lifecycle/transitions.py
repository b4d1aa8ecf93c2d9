"""Every write to a generation's row: recording it, starting, checkpoints, leases,
finishing, failing, cancelling and reaping. Each is one short transaction, and
whoever changes a status first wins (the statements are conditional on it).

The runner calls these from its event loop through its database threads;
services call them for a request."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from generation.events.images import (
    image_events_publish_end,
    image_queue_position,
    queued_state,
)
from generation.events.log import INTERRUPTED
from generation.lifecycle.usage import estimated_cost_micros, usage_settle
from generation.models import Generation
from templates_catalog.models import Template

logger = logging.getLogger(__name__)
Status = Generation.Status


def lease_end() -> datetime:
    """When the lease of a generation held from now lapses."""
    return timezone.now() + timedelta(seconds=settings.STUDIO_LEASE_SECONDS)


def generation_record_text(**fields: Any) -> Generation:
    """A queued text generation's row, leased to this process."""
    return Generation.objects.create(lease_expires_at=lease_end(), **fields)


def generation_record_image(**fields: Any) -> Generation:
    """A queued image generation's row, with its place in line as its state."""
    now = timezone.now()
    return Generation.objects.create(
        # How long it may wait for a worker before the reaper calls it lost.
        lease_expires_at=now + timedelta(seconds=settings.STUDIO_IMAGE_QUEUE_TIMEOUT),
        events_before_text=1,
        progress=queued_state(image_queue_position(created_at=now)),
        **fields,
    )


def generation_start(*, generation_id: UUID, provider: str, model: str) -> bool:
    """Mark a queued generation running; False if it is no longer queued.

    One conditional statement: whoever changes the status first wins, and a
    generation cancelled while it waited is not started."""
    started = Generation.objects.filter(pk=generation_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=timezone.now(),
        lease_expires_at=lease_end(),
        provider=provider,
        model=model,
    )
    return bool(started)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    generation_id: UUID
    output: str
    events_before_text: int
    first_token_at: datetime | None


def generation_checkpoint(*, checkpoints: list[Checkpoint]) -> None:
    """Save the text so far of running generations, in one transaction, so that a
    crash loses at most one checkpoint interval.

    One plain UPDATE sent for every row (executemany: pipelined on PostgreSQL)
    instead of bulk_update, whose CASE expression costs milliseconds of Python
    per hundred rows, every half second, with a thousand generations running.
    """
    opts = Generation._meta
    connection = connections[router.db_for_write(Generation)]
    quote = connection.ops.quote_name
    column = {name: quote(opts.get_field(name).column) for name in _CHECKPOINT_FIELDS}
    sql = (
        f"UPDATE {quote(opts.db_table)} SET {column['output']} = %s, "
        f"{column['events_before_text']} = %s, {column['first_token_at']} = %s "
        f"WHERE {column['id']} = %s AND {column['status']} = %s"
    )
    prepare = {name: opts.get_field(name).get_db_prep_value for name in _CHECKPOINT_FIELDS}
    rows = [
        (
            checkpoint.output,
            checkpoint.events_before_text,
            prepare["first_token_at"](checkpoint.first_token_at, connection),
            prepare["id"](checkpoint.generation_id, connection),
            Status.RUNNING,
        )
        for checkpoint in checkpoints
    ]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(sql, rows)


_CHECKPOINT_FIELDS = ("id", "output", "events_before_text", "first_token_at", "status")


def generation_renew_leases(*, generation_ids: list[UUID]) -> None:
    """Extend the leases of the generations this process holds."""
    Generation.objects.filter(pk__in=generation_ids, status__in=Generation.UNFINISHED).update(
        lease_expires_at=lease_end()
    )


def generation_cancel_requested(*, generation_ids: list[UUID]) -> list[UUID]:
    """Which of these generations someone asked to stop."""
    return list(
        Generation.objects.filter(
            pk__in=generation_ids,
            status__in=Generation.UNFINISHED,
            cancel_requested_at__isnull=False,
        ).values_list("pk", flat=True)
    )


def generation_finish(
    *,
    generation_id: UUID,
    status: str,
    output: str,
    finish_reason: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    error_code: str = "",
    error_message: str = "",
    events_before_text: int | None = None,
    first_token_at: datetime | None = None,
    model: str = "",
) -> Generation:
    """Store how a run ended, and settle its usage record (generation.lifecycle.usage).
    Returns the stored outcome (the fields of `done` and `error`; the rest of
    the row is not loaded)."""
    fields: dict[str, Any] = {
        "status": status,
        "output": output,
        "finish_reason": finish_reason,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "error_code": error_code,
        "error_message": error_message,
        "finished_at": timezone.now(),
        "lease_expires_at": None,
    }
    if events_before_text is not None:
        fields["events_before_text"] = events_before_text
    if first_token_at is not None:
        fields["first_token_at"] = first_token_at
    cost = estimated_cost_micros(
        model=model, input_tokens=input_tokens, output_tokens=output_tokens
    )
    with transaction.atomic():
        Generation.objects.filter(pk=generation_id).update(**fields)
        usage_settle(generation_ids=[generation_id], cost_micros=cost)
    return Generation(pk=generation_id, **fields)


def generation_fail(
    *,
    generation_id: UUID,
    error_code: str,
    error_message: str,
    statuses: frozenset[str] | tuple[str, ...] = Generation.UNFINISHED,
) -> Generation:
    """End an unfinished generation (one in `statuses`) as failed without touching
    its text (the row keeps what its last checkpoint saved), and settle its
    usage. Returns the row."""
    with transaction.atomic():
        Generation.objects.filter(pk=generation_id, status__in=statuses).update(
            status=Status.FAILED,
            error_code=error_code,
            error_message=error_message,
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        usage_settle(generation_ids=[generation_id])
    return Generation.objects.defer("output", "prompt", "system_prompt").get(pk=generation_id)


def generation_cancel_waiting(*, generation_id: UUID, events_before_text: int) -> Generation | None:
    """End a generation stopped while it waited in line for the model (cancelled
    now, or already by generation_cancel); None if it is gone."""
    with transaction.atomic():
        Generation.objects.filter(pk=generation_id, status=Status.QUEUED).update(
            status=Status.CANCELLED,
            finish_reason="cancelled",
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        Generation.objects.filter(pk=generation_id, output="").update(
            events_before_text=events_before_text
        )
        usage_settle(generation_ids=[generation_id])
    return Generation.objects.filter(pk=generation_id).first()


def generation_request_cancel(*, generation_id: UUID) -> bool:
    """Record that someone asked this generation to stop: a queued one is
    cancelled at once (True); a running one is left to the process that runs
    it, which sees the request (`cancel_requested_at`). Nothing happens to a
    finished one."""
    now = timezone.now()
    Generation.objects.filter(pk=generation_id, status__in=Generation.UNFINISHED).update(
        cancel_requested_at=now
    )
    with transaction.atomic():
        stopped = Generation.objects.filter(pk=generation_id, status=Status.QUEUED).update(
            status=Status.CANCELLED,
            finish_reason="cancelled",
            finished_at=now,
            lease_expires_at=None,
        )
        if stopped:
            usage_settle(generation_ids=[generation_id])
    return bool(stopped)


def generation_reap(*, now: datetime | None = None) -> list[UUID]:
    """Fail the unfinished generations whose process died (their lease lapsed),
    keeping the text saved up to their last checkpoint."""
    now = now or timezone.now()
    # A running image job whose worker died is redelivered by the broker and
    # taken over (generation.images.attempts): it is lost only once that had time to
    # happen. A queued one's lease is the time it may wait in line.
    image_horizon = now - timedelta(
        seconds=settings.STUDIO_IMAGE_VISIBILITY_TIMEOUT + settings.STUDIO_LEASE_SECONDS
    )
    lapsed = Generation.objects.filter(
        Q(kind=Template.Kind.TEXT, lease_expires_at__lt=now)
        | Q(kind=Template.Kind.IMAGE, status=Status.QUEUED, lease_expires_at__lt=now)
        | Q(kind=Template.Kind.IMAGE, status=Status.RUNNING, lease_expires_at__lt=image_horizon),
        status__in=Generation.UNFINISHED,
    ).values_list("pk", "language", "kind", "status")
    reaped = []
    for generation_id, language, kind, status in list(lapsed):
        # One row the database refuses must not keep the others from being reaped.
        try:
            if _reap_one(
                generation_id, language, kind, status, now=now, image_horizon=image_horizon
            ):
                reaped.append(generation_id)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("generation %s could not be reaped", generation_id)
    return reaped


def _reap_one(
    generation_id: UUID,
    language: str,
    kind: str,
    status: str,
    *,
    now: datetime,
    image_horizon: datetime,
) -> bool:
    horizon = image_horizon if (kind, status) == (Template.Kind.IMAGE, Status.RUNNING) else now
    with translation.override(language):
        if kind == Template.Kind.IMAGE:
            message = gettext("The image job was lost: no worker finished it. Please try again.")
        else:
            message = gettext(
                "The server running this generation stopped. "
                "The text generated before that is kept."
            )
    with transaction.atomic():
        updated = Generation.objects.filter(
            pk=generation_id, status=status, lease_expires_at__lt=horizon
        ).update(
            status=Status.FAILED,
            error_code=INTERRUPTED,
            error_message=message,
            finished_at=now,
            lease_expires_at=None,
        )
        usage_settle(generation_ids=[generation_id])
    if updated and kind == Template.Kind.IMAGE:
        image_events_publish_end(generation_id=generation_id)
    return bool(updated)
