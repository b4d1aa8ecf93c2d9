"""The writes to an image generation's row that its attempts make: taking it
(claim), keeping it (lease), giving it back for a retry, and ending it. Each
checks the attempt's claim, so an attempt presumed dead can never write over
the one that took its generation over (generation.images.attempts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generation.events.images import image_events_publish_end
from generation.lifecycle.transitions import lease_end
from generation.lifecycle.usage import estimated_cost_micros, usage_settle
from generation.models import Generation

Status = Generation.Status


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Deliver the job again in `seconds`; `waiting` when it waits its turn
    rather than after a failure (waits do not count against the retries)."""

    seconds: float
    waiting: bool = False


def image_claim(
    generation_id: UUID, *, provider: str, model_for: Callable[[str], str]
) -> str | RetryLater | None:
    """Take the generation for one attempt: its token, or why it should not run
    now (None: finished, or stopped now; RetryLater: another live attempt holds it).
    A generation whose holder died is taken over."""
    token = uuid.uuid4().hex
    now = timezone.now()
    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update(of=("self",))
            .select_related("template")
            .filter(pk=generation_id)
            .first()
        )
        if generation is None or generation.is_finished:
            return None
        if generation.cancel_requested_at is not None:
            image_finish(generation_id, status=Status.CANCELLED, finish_reason="cancelled")
            return None
        lease = generation.lease_expires_at
        if generation.status == Status.RUNNING and generation.claim and lease and lease > now:
            return RetryLater((lease - now).total_seconds() + 1, waiting=True)
        generation.status = Status.RUNNING
        generation.claim = token
        generation.started_at = generation.started_at or now
        generation.lease_expires_at = lease_end()
        generation.provider = provider
        generation.model = model_for(
            generation.template.tier if generation.template else "standard"
        )
        generation.save(
            update_fields=["status", "claim", "started_at", "lease_expires_at", "provider", "model"]
        )
    return token


def image_finish(generation_id: UUID, *, claim: str | None = None, **fields) -> bool:
    """End the generation (if `claim` still holds it), settle its usage and send
    its last events."""
    cost = estimated_cost_micros(model=fields.get("model", ""), images=fields.get("image_count", 0))
    with transaction.atomic():
        updated = (
            Generation.objects.filter(pk=generation_id, status__in=Generation.UNFINISHED)
            .filter(**({"claim": claim} if claim else {}))
            .update(
                finished_at=timezone.now(),
                lease_expires_at=None,
                claim="",
                progress={},
                **fields,
            )
        )
        if updated:
            usage_settle(generation_ids=[generation_id], cost_micros=cost)
    if updated:
        transaction.on_commit(lambda: image_events_publish_end(generation_id=generation_id))
    return bool(updated)


def image_renew_lease(*, generation_id: UUID, claim: str) -> bool:
    """Extend the attempt's lease; False if it no longer holds the generation."""
    return bool(
        Generation.objects.filter(pk=generation_id, claim=claim, status=Status.RUNNING).update(
            lease_expires_at=lease_end()
        )
    )


def image_release_for_retry(*, generation_id: UUID, claim: str, seconds: float) -> bool:
    """Put the generation back in line for another attempt in `seconds`; False if
    this attempt no longer holds it."""
    return bool(
        Generation.objects.filter(pk=generation_id, claim=claim, status=Status.RUNNING).update(
            status=Status.QUEUED,
            claim="",
            lease_expires_at=timezone.now()
            + timedelta(seconds=seconds + settings.STUDIO_IMAGE_QUEUE_TIMEOUT),
        )
    )
