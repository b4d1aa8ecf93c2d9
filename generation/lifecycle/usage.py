"""What generations use and cost: every generation has a usage record, opened
with its reservation when it is queued and settled when it ends. The records
outlive the history (a person who deletes a generation has still used it), so
quotas (generation.lifecycle.limits) and the usage pages count from them."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Least, Length

from generation.models import Generation, UsageRecord


def price_of(model: str) -> dict[str, Decimal]:
    """The model's prices (US dollars per million input and output tokens, and
    per image); a model missing from the table costs nothing."""
    prices = settings.STUDIO_PRICES.get(model) or {}
    return {key: Decimal(str(prices.get(key, 0))) for key in ("input", "output", "image")}


def estimated_cost_micros(
    *, model: str, input_tokens: int = 0, output_tokens: int = 0, images: int = 0
) -> int:
    """The estimated cost in millionths of a dollar (a dollar per million tokens
    is a millionth of a dollar per token)."""
    prices = price_of(model)
    micros = (
        input_tokens * prices["input"]
        + output_tokens * prices["output"]
        + images * prices["image"] * 1_000_000
    )
    return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def usage_record_create(*, generation: Generation, output_tokens: int, images: int) -> None:
    """Open the usage record of a generation just queued, holding its reservation."""
    UsageRecord.objects.create(
        generation=generation,
        user=generation.user,
        template=generation.template,
        template_title=generation.template_title,
        kind=generation.kind,
        charged_output_tokens=output_tokens,
        charged_images=images,
        created_at=generation.created_at,
    )


_COPIED = (
    "status",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "started_at",
    "first_token_at",
    "finished_at",
)


def usage_settle(*, generation_ids: Iterable[Any], cost_micros: int | None = None) -> None:
    """Copy how these generations ended into their usage records, in one
    statement: what they used stays charged (at most what they reserved), a
    failed one is charged nothing. Call it in the transaction that ended them."""
    row = Generation.objects.filter(pk=OuterRef("generation_id"))

    def column(name: str) -> Subquery:
        return Subquery(row.values(name)[:1])

    failed = Exists(row.filter(status=Generation.Status.FAILED))
    fields: dict[str, Any] = {name: column(name) for name in _COPIED}
    fields["images"] = column("image_count")
    fields["output_characters"] = Subquery(
        row.annotate(characters=Length("output")).values("characters")[:1]
    )
    for charged, used in (
        ("charged_output_tokens", "output_tokens"),
        ("charged_images", "image_count"),
    ):
        fields[charged] = Case(
            When(failed, then=Value(0)),
            default=Least(F(charged), column(used)),
            output_field=IntegerField(),
        )
    if cost_micros is not None:
        fields["estimated_cost_micros"] = Value(cost_micros)
    UsageRecord.objects.filter(generation_id__in=list(generation_ids)).update(**fields)
