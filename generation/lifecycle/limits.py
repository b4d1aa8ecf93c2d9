"""What each person may start: their plan's limits on generations at once and a
minute, and their daily and monthly quotas of output tokens and images.

A generation reserves its share of the quotas when it is queued, in the same
transaction that records it and with the person's row locked, so that
requests arriving together are counted one after the other and can never
overdraw a quota together. A text answer is capped at the tokens it reserved;
when it ends, what it used is kept and the rest given back (all of it if it
failed). What a person has used is the sum over their generations
(`charged_output_tokens`, `charged_images`), so there is no counter to drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case, Count, Min, Q, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from generation.lifecycle.slots import slots_for
from generation.models import Generation, UsageRecord
from generation.providers.base import TextProvider
from studio.models import Plan
from templates_catalog.models import Template


class LimitExceeded(Exception):
    """A plan's limit refuses this generation; `message` says which and when it
    renews, `retry_after` in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True)
class Allowance:
    """Where a person stands against their plan (None: no limit)."""

    plan: Plan | None
    running: int
    last_minute: int
    oldest_in_last_minute: datetime | None
    tokens_today: int
    tokens_this_month: int
    images_today: int
    images_this_month: int

    @staticmethod
    def _left(limit: int | None, used: int) -> int | None:
        return None if limit is None else max(0, limit - used)

    @property
    def tokens_left(self) -> int | None:
        if self.plan is None:
            return None
        return _smaller(
            self._left(self.plan.daily_output_tokens, self.tokens_today),
            self._left(self.plan.monthly_output_tokens, self.tokens_this_month),
        )

    @property
    def images_left(self) -> int | None:
        if self.plan is None:
            return None
        return _smaller(
            self._left(self.plan.daily_images, self.images_today),
            self._left(self.plan.monthly_images, self.images_this_month),
        )


@dataclass(frozen=True)
class Reservation:
    output_tokens: int = 0
    images: int = 0


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def plan_of(user) -> Plan | None:
    """The person's plan: the one staff gave them, or the default plan (None
    when plans are not enforced)."""
    if not settings.STUDIO_ENFORCE_PLANS:
        return None
    # One query: the person's own plan sorts before the default one.
    return (
        Plan.objects.filter(Q(memberships__user=user) | Q(is_default=True))
        .order_by(Case(When(memberships__user=user, then=Value(0)), default=Value(1)))
        .first()
    )


def _period_starts(now: datetime) -> tuple[datetime, datetime]:
    """Midnight today and the first of this month, in the site's time zone."""
    local = timezone.localtime(now)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def allowance_of(user, *, now: datetime | None = None, plan: Plan | None = None) -> Allowance:
    """Where `user` stands now against `plan` (default: theirs)."""
    now = now or timezone.now()
    day, month = _period_starts(now)
    minute_ago = now - timedelta(minutes=1)
    today, last_minute = Q(created_at__gte=day), Q(created_at__gte=minute_ago)
    records = UsageRecord.objects.filter(user=user, created_at__gte=min(month, minute_ago, day))
    figures = records.aggregate(
        last_minute=Count("pk", filter=last_minute),
        oldest_in_last_minute=Min("created_at", filter=last_minute),
        tokens_today=Sum("charged_output_tokens", filter=today),
        tokens_this_month=Sum("charged_output_tokens", filter=Q(created_at__gte=month)),
        images_today=Sum("charged_images", filter=today),
        images_this_month=Sum("charged_images", filter=Q(created_at__gte=month)),
    )
    # Unfinished generations cannot be deleted, and the reaper ends those of a
    # process that died: counting them here can never leave a person stuck.
    figures["running"] = Generation.objects.filter(
        user=user, status__in=Generation.UNFINISHED
    ).count()
    return Allowance(
        plan=plan or plan_of(user),
        running=figures["running"],
        last_minute=figures["last_minute"],
        oldest_in_last_minute=figures["oldest_in_last_minute"],
        **{
            key: figures[key] or 0
            for key in ("tokens_today", "tokens_this_month", "images_today", "images_this_month")
        },
    )


def reserve(*, user, kind: str, images: int = 0) -> Reservation:
    """Check the person's plan for one more generation and reserve its share of
    the quotas; raises LimitExceeded. Call it inside the transaction that
    records the generation, with the reservation stored on it."""
    plan = plan_of(user)
    if plan is None:
        return _unlimited(kind, images)
    # The person's row is the lock: their requests are counted one at a time.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    now = timezone.now()
    allowance = allowance_of(user, now=now, plan=plan)
    if plan.max_concurrent is not None and allowance.running >= plan.max_concurrent:
        raise LimitExceeded(
            ngettext(
                "You already have %(count)d generation running, as many as your plan "
                "allows at once. Wait for it to finish, or stop it.",
                "You already have %(count)d generations running, as many as your plan "
                "allows at once. Wait for one to finish, or stop one.",
                allowance.running,
            )
            % {"count": allowance.running},
            retry_after=5,
        )
    if plan.requests_per_minute is not None and allowance.last_minute >= plan.requests_per_minute:
        oldest = allowance.oldest_in_last_minute or now
        wait = int((oldest + timedelta(minutes=1) - now).total_seconds()) + 1
        raise LimitExceeded(
            ngettext(
                "Your plan allows %(limit)d generation a minute. Try again in %(wait)d seconds.",
                "Your plan allows %(limit)d generations a minute. Try again in %(wait)d seconds.",
                plan.requests_per_minute,
            )
            % {"limit": plan.requests_per_minute, "wait": wait},
            retry_after=wait,
        )
    if kind == Template.Kind.IMAGE:
        left = allowance.images_left
        if left is not None and images > left:
            raise LimitExceeded(_images_message(left, images), retry_after=_until_renewal(now))
        return Reservation(images=images)
    reservation = settings.STUDIO_QUOTA_TOKEN_RESERVATION
    left = allowance.tokens_left
    if left is not None:
        if left <= 0:
            raise LimitExceeded(
                _(
                    "You have used all the output tokens your plan allows for now. "
                    "They are renewed at midnight (the monthly allowance on the 1st)."
                ),
                retry_after=_until_renewal(now),
            )
        reservation = min(reservation, left)
    return Reservation(output_tokens=reservation)


def _unlimited(kind: str, images: int) -> Reservation:
    if kind == Template.Kind.IMAGE:
        return Reservation(images=images)
    return Reservation(output_tokens=settings.STUDIO_QUOTA_TOKEN_RESERVATION)


def _images_message(left: int, wanted: int) -> str:
    if left == 0:
        return _(
            "You have made all the images your plan allows for now. They are renewed "
            "at midnight (the monthly allowance on the 1st)."
        )
    return ngettext(
        "Your plan allows %(left)d more image for now, and this asks for %(wanted)d.",
        "Your plan allows %(left)d more images for now, and this asks for %(wanted)d.",
        left,
    ) % {"left": left, "wanted": wanted}


def _until_renewal(now: datetime) -> int:
    day, _month = _period_starts(now)
    return int((day + timedelta(days=1) - now).total_seconds())


def refuse_when_the_line_is_full(provider: TextProvider) -> None:
    """Refuse a new text generation when too many already wait for the model."""
    waiting = slots_for(provider.name).waiting()
    if waiting >= settings.STUDIO_MAX_QUEUED_GENERATIONS:
        raise LimitExceeded(
            ngettext(
                "The studio is very busy: %(count)d generation is waiting for the model. "
                "Please try again in a minute.",
                "The studio is very busy: %(count)d generations are waiting for the model. "
                "Please try again in a minute.",
                waiting,
            )
            % {"count": waiting},
            retry_after=30,
        )
