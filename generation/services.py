"""Writes to generations. The runner calls the `generation_*` steps below from
its event loop through sync_to_async; each is one short transaction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from generation import limits
from generation.events import INTERRUPTED
from generation.models import Generation, UsageRecord
from generation.providers import get_text_provider
from generation.providers.base import TextRequest
from generation.providers.images import requested_images
from generation.usage import estimated_cost_micros, usage_record_create, usage_settle
from templates_catalog.forms import labelled_values
from templates_catalog.models import Template, TemplateField
from templates_catalog.services import template_render_prompt
from templates_catalog.versions import template_version_current

logger = logging.getLogger(__name__)
Status = Generation.Status


def generation_create(
    *,
    user,
    template: Template,
    inputs: Mapping[str, Any],
    language: str | None = None,
    fields: list[TemplateField] | None = None,
    continued_from: Generation | None = None,
) -> Generation:
    """Record a queued generation of `template` with validated `inputs` and start it
    once the row is committed."""
    language = language or translation.get_language() or "ja"
    rendered = template_render_prompt(
        template=template, inputs=inputs, language=language, fields=fields
    )
    with translation.override(language):
        title = template.title
    # The id is on the template's row already; only a template that no writer
    # has versioned yet (made in code, or before versions) records one now.
    version_id = template.current_version_id
    if version_id is None:
        version_id = template_version_current(template=template, fields=fields).pk
    return _queue(
        user=user,
        template=template,
        template_version_id=version_id,
        template_title=title,
        kind=template.kind,
        language=language,
        inputs=dict(inputs),
        system_prompt=rendered.system,
        prompt=rendered.prompt,
        continued_from=continued_from,
        template_fields=fields,
    )


def generation_continue(*, generation: Generation) -> Generation:
    """Start a generation that picks up where `generation` stopped at the length limit.

    It reuses the stored prompt rather than the template's current one, so the
    continuation follows the answer it continues even if staff changed it since.
    """
    return _queue(
        user=generation.user,
        template=generation.template,
        template_version_id=generation.template_version_id,
        template_title=generation.template_title,
        kind=generation.kind,
        language=generation.language,
        inputs=generation.inputs,
        system_prompt=generation.system_prompt,
        prompt=generation.prompt,
        continued_from=generation,
    )


def _queue(*, template_fields: list[TemplateField] | None = None, **fields: Any) -> Generation:
    """Record a queued generation, with its reservation against the person's
    quotas, and start it once the row is committed: a text generation on this
    process's runner (leased to this process), an image generation as a Celery
    task (generation.image_runs). Raises limits.LimitExceeded."""
    from generation.runner import runner

    with transaction.atomic():
        if fields["kind"] == Template.Kind.IMAGE:
            reservation = limits.reserve(
                user=fields["user"], kind=fields["kind"], images=requested_images(fields["inputs"])
            )
            generation = _queue_image(**fields)
        else:
            limits.refuse_when_the_line_is_full(runner.provider or get_text_provider())
            reservation = limits.reserve(user=fields["user"], kind=fields["kind"])
            generation = Generation.objects.create(lease_expires_at=_lease_end(), **fields)
        usage_record_create(
            generation=generation,
            output_tokens=reservation.output_tokens,
            images=reservation.images,
        )
        if generation.kind == Template.Kind.TEXT:
            # What to ask the model is worked out here, on the request's own
            # thread, so that the runner's threads only write.
            request = generation_text_request(
                generation, fields=template_fields, max_output_tokens=reservation.output_tokens
            )
            transaction.on_commit(lambda: runner.submit(generation.pk, request=request))
    return generation


def _queue_image(**fields: Any) -> Generation:
    from generation.image_events import image_queue_position, queued_state

    now = timezone.now()
    generation = Generation.objects.create(
        # How long it may wait for a worker before the reaper calls it lost.
        lease_expires_at=now + timedelta(seconds=settings.STUDIO_IMAGE_QUEUE_TIMEOUT),
        events_before_text=1,
        progress=queued_state(image_queue_position(created_at=now)),
        **fields,
    )
    transaction.on_commit(lambda: _send_image_task(generation))
    return generation


def _send_image_task(generation: Generation) -> None:
    from generation.image_events import image_events_publish_end, image_events_publish_queued
    from generation.tasks import generate_images

    image_events_publish_queued(generation=generation)
    try:
        generate_images.apply_async(args=[str(generation.pk)], retry=False)
    except Exception:
        # The broker is unreachable: say so now rather than leave it queued.
        logger.exception("the image task for %s could not be queued", generation.pk)
        with translation.override(generation.language):
            message = gettext("The image service is not available right now. Please try again.")
        with transaction.atomic():
            Generation.objects.filter(pk=generation.pk, status=Status.QUEUED).update(
                status=Status.FAILED,
                error_code="queue_unavailable",
                error_message=message,
                finished_at=timezone.now(),
                lease_expires_at=None,
            )
            usage_settle(generation_ids=[generation.pk])
        image_events_publish_end(generation_id=generation.pk)


def generation_text_request(
    generation: Generation,
    *,
    fields: list[TemplateField] | None = None,
    max_output_tokens: int | None = None,
) -> TextRequest:
    """What to ask the model for a text generation: at most the output tokens it
    reserved of the person's quota."""
    if fields is None:
        fields = list(generation.template.fields.all()) if generation.template else []
    if max_output_tokens is None:
        reserved = UsageRecord.objects.filter(generation=generation)
        max_output_tokens = reserved.values_list("charged_output_tokens", flat=True).first() or 0
    return TextRequest(
        system=generation.system_prompt,
        prompt=generation.prompt,
        language=generation.language,
        template_title=generation.template_title,
        inputs=labelled_values(generation.inputs, fields, generation.language),
        tier=generation.template.tier if generation.template else "standard",
        continue_from=answer_so_far(generation),
        max_output_tokens=max_output_tokens,
    )


def answer_so_far(generation: Generation, *, limit: int = 20) -> str:
    """The whole answer a continuation continues: every earlier part, in order."""
    parts = []
    current = generation.continued_from
    while current is not None and len(parts) < limit:
        parts.append(current.output)
        current = current.continued_from
    return "".join(reversed(parts))


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.STUDIO_LEASE_SECONDS)


def generation_start(*, generation_id: UUID, provider: str, model: str) -> bool:
    """Mark a queued generation running; False if it is no longer queued.

    One conditional statement: whoever changes the status first wins, and a
    generation cancelled while it waited is not started."""
    started = Generation.objects.filter(pk=generation_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=timezone.now(),
        lease_expires_at=_lease_end(),
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
        lease_expires_at=_lease_end()
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
    """Store how a run ended, and settle its usage record (generation.usage).
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


def generation_fail(*, generation_id: UUID, error_code: str, error_message: str) -> Generation:
    """End an unfinished generation as failed without touching its text (the row
    keeps what its last checkpoint saved), and settle its usage. Returns the row."""
    with transaction.atomic():
        Generation.objects.filter(pk=generation_id, status__in=Generation.UNFINISHED).update(
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


def generation_cancel(*, generation: Generation) -> None:
    """Ask for a generation to stop. A queued one is cancelled at once; a running
    one is stopped by the process that runs it, which keeps the text so far and
    sends `done`. Cancelling a finished generation does nothing."""
    from generation.runner import runner

    now = timezone.now()
    Generation.objects.filter(pk=generation.pk, status__in=Generation.UNFINISHED).update(
        cancel_requested_at=now
    )
    with transaction.atomic():
        stopped = Generation.objects.filter(pk=generation.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED,
            finish_reason="cancelled",
            finished_at=now,
            lease_expires_at=None,
        )
        if stopped:
            usage_settle(generation_ids=[generation.pk])
    if generation.kind == Template.Kind.IMAGE:
        # The worker holding a running one sees the request at its next step.
        if stopped:
            from generation.image_events import image_events_publish_end

            image_events_publish_end(generation_id=generation.pk)
    else:
        # Running, or waiting in line: its run stops, leaves the line and sends `done`.
        runner.cancel(generation.pk)


def generation_reap(*, now: datetime | None = None) -> list[UUID]:
    """Fail the unfinished generations whose process died (their lease lapsed),
    keeping the text saved up to their last checkpoint."""
    now = now or timezone.now()
    # A running image job whose worker died is redelivered by the broker and
    # taken over (generation.image_runs): it is lost only once that had time to
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
        from generation.image_events import image_events_publish_end

        image_events_publish_end(generation_id=generation_id)
    return bool(updated)
