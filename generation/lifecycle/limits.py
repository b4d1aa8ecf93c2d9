"""What each person may start: their plan's limits on generations at once and a
minute, and their daily and monthly quotas of output tokens and images.

A generation reserves its share of the quotas when it is queued, in the same
transaction that records it and with the person's row locked, so that
requests arriving together are counted one after the other and can never
overdraw a quota together. A text answer is capped at the tokens it reserved;
when it ends, what it used is kept and the rest given back (all of it if it
failed). What a person has used is the sum over their generations
(`charged_output_tokens`, `charged_images`), so there is no counter to drift.

People are not shown tokens: what is left of the token quota is shown as
about how many more text generations fit in it, reckoned at what one of their
answers typically uses (`Allowance.typical_output_tokens`).
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


# Which limit leaves less: today's or this month's.
DAY, MONTH = "day", "month"
# A text generation is reckoned to use what the person's completed answers used
# on average this month, once there are this many to go by; before that, what
# one reserves (the longest an answer may be), so that the first figure a
# person sees is on the low side, never too high.
TYPICAL_AFTER_GENERATIONS = 3


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
    # What one text generation of theirs is reckoned to use (TYPICAL_AFTER_GENERATIONS).
    typical_output_tokens: int = 1

    @staticmethod
    def _left(limit: int | None, used: int) -> int | None:
        return None if limit is None else max(0, limit - used)

    def _tightest(self, daily: int | None, monthly: int | None) -> tuple[int | None, str]:
        """What is left and which period's limit leaves it (DAY on a tie)."""
        if self.plan is None or (daily is None and monthly is None):
            return None, ""
        if monthly is None or (daily is not None and daily <= monthly):
            return daily, DAY
        return monthly, MONTH

    def _tokens(self) -> tuple[int | None, str]:
        return self._tightest(
            self._left(self.plan and self.plan.daily_output_tokens, self.tokens_today),
            self._left(self.plan and self.plan.monthly_output_tokens, self.tokens_this_month),
        )

    def _images(self) -> tuple[int | None, str]:
        return self._tightest(
            self._left(self.plan and self.plan.daily_images, self.images_today),
            self._left(self.plan and self.plan.monthly_images, self.images_this_month),
        )

    @property
    def tokens_left(self) -> int | None:
        return self._tokens()[0]

    @property
    def tokens_period(self) -> str:
        """DAY or MONTH: whose limit leaves the fewer tokens ("" without one)."""
        return self._tokens()[1]

    @property
    def text_generations_left(self) -> int | None:
        """About how many more text generations fit in what is left of the
        token quota (at least one while any is left: an answer is capped at
        what is left)."""
        left = self.tokens_left
        if left is None:
            return None
        if left <= 0:
            return 0
        return max(1, left // max(1, self.typical_output_tokens))

    @property
    def images_left(self) -> int | None:
        return self._images()[0]

    @property
    def images_period(self) -> str:
        """DAY or MONTH: whose limit leaves the fewer images ("" without one)."""
        return self._images()[1]


@dataclass(frozen=True)
class Reservation:
    output_tokens: int = 0
    images: int = 0


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
    answered = Q(created_at__gte=month, kind=Template.Kind.TEXT, status=Generation.Status.COMPLETED)
    figures = records.aggregate(
        last_minute=Count("pk", filter=last_minute),
        oldest_in_last_minute=Min("created_at", filter=last_minute),
        tokens_today=Sum("charged_output_tokens", filter=today),
        tokens_this_month=Sum("charged_output_tokens", filter=Q(created_at__gte=month)),
        images_today=Sum("charged_images", filter=today),
        images_this_month=Sum("charged_images", filter=Q(created_at__gte=month)),
        answers=Count("pk", filter=answered),
        answer_tokens=Sum("output_tokens", filter=answered),
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
        typical_output_tokens=_typical_output_tokens(figures["answers"], figures["answer_tokens"]),
    )


def _typical_output_tokens(answers: int, tokens: int | None) -> int:
    """What one text generation is reckoned to use: the average of this month's
    completed answers once there are enough of them, else the reservation."""
    reservation = max(1, settings.STUDIO_QUOTA_TOKEN_RESERVATION)
    if answers < TYPICAL_AFTER_GENERATIONS:
        return reservation
    return min(reservation, max(1, round(int(tokens or 0) / answers)))


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
        left, period = allowance.images_left, allowance.images_period
        if left is not None and images > left:
            raise LimitExceeded(
                _images_message(left, images, period), retry_after=_until_renewal(now, period)
            )
        return Reservation(images=images)
    reservation = settings.STUDIO_QUOTA_TOKEN_RESERVATION
    left, period = allowance.tokens_left, allowance.tokens_period
    if left is not None:
        if left <= 0:
            if period == MONTH:
                message = _(
                    "You have reached this month's limit of your plan. "
                    "You can generate again from the 1st of next month."
                )
            else:
                message = _(
                    "You have reached today's limit of your plan. "
                    "You can generate again from midnight."
                )
            raise LimitExceeded(message, retry_after=_until_renewal(now, period))
        reservation = min(reservation, left)
    return Reservation(output_tokens=reservation)


def _unlimited(kind: str, images: int) -> Reservation:
    if kind == Template.Kind.IMAGE:
        return Reservation(images=images)
    return Reservation(output_tokens=settings.STUDIO_QUOTA_TOKEN_RESERVATION)


def _images_message(left: int, wanted: int, period: str) -> str:
    if left == 0:
        if period == MONTH:
            return _(
                "You have made all the images your plan allows this month. "
                "You can make more from the 1st of next month."
            )
        return _(
            "You have made all the images your plan allows today. You can make more from midnight."
        )
    if period == MONTH:
        return ngettext(
            "Your plan allows %(left)d more image this month, and this asks for %(wanted)d.",
            "Your plan allows %(left)d more images this month, and this asks for %(wanted)d.",
            left,
        ) % {"left": left, "wanted": wanted}
    return ngettext(
        "Your plan allows %(left)d more image today, and this asks for %(wanted)d.",
        "Your plan allows %(left)d more images today, and this asks for %(wanted)d.",
        left,
    ) % {"left": left, "wanted": wanted}


def _until_renewal(now: datetime, period: str) -> int:
    """Seconds until the limit that binds renews: midnight, or the 1st."""
    day, month = _period_starts(now)
    if period == MONTH:
        renewal = (month + timedelta(days=32)).replace(day=1)
    else:
        renewal = day + timedelta(days=1)
    return max(1, int((renewal - now).total_seconds()))


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
