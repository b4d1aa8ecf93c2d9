"""How a generation reached its person: how far readers got, and the outcome
(ChatStream's delivery statuses), recorded once and announced with the
`generation_finished` signal."""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from django.db.models import Case, F, Value, When
from django.db.models.functions import Greatest

from generation.models import Generation
from generation.signals import generation_finished

logger = logging.getLogger(__name__)
Delivery = Generation.Delivery


def generation_record_reading(*, generation_id: UUID, event_id: int) -> None:
    """Remember how far a reader that left got (the largest id any reader saw)."""
    Generation.objects.filter(pk=generation_id).update(
        delivered_event_id=Greatest(F("delivered_event_id"), event_id)
    )


def generation_settle_delivery(*, generation_id: UUID, delivery: str | None = None) -> bool:
    """Record how the generation reached its person and send `generation_finished`.

    Only the first call for a finished generation records anything (a
    conditional update, so this holds across processes); without `delivery` the
    outcome follows from how far readers got. Returns whether this call settled it.
    """
    if delivery is None:
        outcome = Case(
            When(delivered_event_id__gt=0, then=Value(Delivery.WHILE_STREAMING)),
            default=Value(Delivery.BEFORE_STREAMING),
        )
    else:
        outcome = Value(delivery)
    settled = (
        Generation.objects.filter(pk=generation_id, delivery__isnull=True)
        .exclude(status__in=Generation.UNFINISHED)
        .update(delivery=outcome)
    )
    if settled and generation_finished.has_listeners(Generation):
        generation = Generation.objects.get(pk=generation_id)
        try:
            generation_finished.send(
                sender=Generation, generation=generation, delivery=generation.delivery
            )
        except Exception:
            logger.exception("a generation_finished receiver failed for %s", generation_id)
    return bool(settled)


def generation_settle_overdue(*, older_than: datetime) -> int:
    """Settle the deliveries that nobody settled (their process died in between)."""
    overdue = Generation.objects.filter(
        delivery__isnull=True, finished_at__isnull=False, finished_at__lt=older_than
    ).values_list("pk", flat=True)[:500]
    return sum(generation_settle_delivery(generation_id=generation_id) for generation_id in overdue)
