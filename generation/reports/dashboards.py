"""What the usage pages show: one person's use by day and by template, and
everyone's by person, template and model, with CSV downloads. Days are the
site's days (settings.TIME_ZONE), as quotas are; every figure is one grouped
query over the usage records (generation.lifecycle.usage)."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    Max,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from generation.lifecycle.limits import Allowance
from generation.models import UsageRecord
from generation.reports.spreadsheets import UTF8_BOM, spreadsheet_safe
from studio.figures import money, usd
from templates_catalog.models import Template, translated_names

USAGE_PERIODS = (7, 30, 90)
DEFAULT_USAGE_DAYS = 30
# What a breakdown can be sorted by (largest first); `cost` is the default.
USAGE_SORTS = ("generations", "input_tokens", "output_tokens", "images", "cost")
USAGE_SORT_LABELS = {
    "generations": gettext_lazy("Generations"),
    "input_tokens": gettext_lazy("Input tokens"),
    "output_tokens": gettext_lazy("Output tokens"),
    "images": gettext_lazy("Images"),
    "cost": gettext_lazy("Estimated cost (USD)"),
}
DEFAULT_USAGE_SORT = "cost"
# Staff may pick any period in these years; outside them dates stop meaning
# anything (and the far ends overflow when converted to UTC).
FIRST_USAGE_DATE = datetime.date(2000, 1, 1)
LAST_USAGE_DATE = datetime.date(2999, 12, 31)


class _Costed:
    """An estimated cost held in millionths of a dollar: shown to people in the
    site's currency (`cost_text`), to staff in dollars (`cost_usd`)."""

    cost_micros: int

    @property
    def cost(self) -> Decimal:
        return Decimal(self.cost_micros) / 1_000_000

    @property
    def cost_text(self) -> str:
        return money(self.cost_micros)

    @property
    def cost_usd(self) -> str:
        return usd(self.cost_micros)


@dataclass(frozen=True)
class DayUsage(_Costed):
    """What was used on one day (in the site's time zone)."""

    day: datetime.date
    generations: int = 0
    output_tokens: int = 0
    characters: int = 0
    images: int = 0
    cost_micros: int = 0


@dataclass(frozen=True)
class UsageRow(_Costed):
    """One line of a breakdown: what one person, template or model used."""

    key: str
    name: str
    generations: int
    input_tokens: int
    output_tokens: int
    images: int
    cost_micros: int
    characters: int = 0
    detail: str = ""


@dataclass(frozen=True)
class UsagePeriod:
    """The days from `first` to `last`, both included, in the site's time zone."""

    first: datetime.date
    last: datetime.date

    @classmethod
    def last_days(cls, days: int, *, today: datetime.date | None = None) -> UsagePeriod:
        today = today or timezone.localdate(timezone=timezone.get_default_timezone())
        return cls(first=today - datetime.timedelta(days=days - 1), last=today)

    @property
    def start(self) -> datetime.datetime:
        return _midnight(self.first)

    @property
    def end(self) -> datetime.datetime:
        """Midnight after the last day (the period's end, excluded)."""
        return _midnight(self.last + datetime.timedelta(days=1))

    @property
    def days(self) -> list[datetime.date]:
        count = (self.last - self.first).days + 1
        return [self.first + datetime.timedelta(days=n) for n in range(count)]


def _midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=timezone.get_default_timezone())


def _records_in(period: UsagePeriod) -> QuerySet[UsageRecord]:
    return UsageRecord.objects.filter(created_at__gte=period.start, created_at__lt=period.end)


def _totals() -> dict[str, Any]:
    # Named apart from the model's fields, which annotations may not shadow.
    return {
        "n_generations": Count("pk"),
        "n_input_tokens": Sum("input_tokens"),
        "n_output_tokens": Sum("output_tokens"),
        "n_images": Sum("images"),
        "n_characters": Sum("output_characters"),
        "n_cost": Sum("estimated_cost_micros"),
    }


def _ordering(sort: str) -> str:
    return "-n_" + (sort if sort in USAGE_SORTS else DEFAULT_USAGE_SORT)


def _row(values: dict[str, Any], *, key: str, name: str, detail: str = "") -> UsageRow:
    # PostgreSQL sums bigints as numeric: the driver hands back Decimals.
    return UsageRow(
        key=key,
        name=name,
        detail=detail,
        generations=int(values["n_generations"] or 0),
        input_tokens=int(values["n_input_tokens"] or 0),
        output_tokens=int(values["n_output_tokens"] or 0),
        images=int(values["n_images"] or 0),
        characters=int(values["n_characters"] or 0),
        cost_micros=int(values["n_cost"] or 0),
    )


def usage_period_days(value: str | None) -> int:
    """The `?days=` a person asked for, or the default for anything else."""
    try:
        days = int(value or "")
    except ValueError:
        return DEFAULT_USAGE_DAYS
    return days if days in USAGE_PERIODS else DEFAULT_USAGE_DAYS


def usage_by_day(user, *, days: int, today: datetime.date | None = None) -> list[DayUsage]:
    """What `user` used on each of the last `days` days, oldest first, with a
    zero for every day they used nothing."""
    period = UsagePeriod.last_days(days, today=today)
    day = TruncDate("created_at", tzinfo=timezone.get_default_timezone())
    rows = (
        _records_in(period)
        .filter(user=user)
        .annotate(day=day)
        .values("day")
        .annotate(**_totals())
        .order_by("day")
    )
    found = {row["day"]: row for row in rows}
    usage = []
    for date in period.days:
        row = _row(found[date], key="", name="") if date in found else None
        usage.append(
            DayUsage(
                day=date,
                generations=row.generations if row else 0,
                output_tokens=row.output_tokens if row else 0,
                characters=row.characters if row else 0,
                images=row.images if row else 0,
                cost_micros=row.cost_micros if row else 0,
            )
        )
    return usage


def _by_template(records: QuerySet[UsageRecord], sort: str) -> list[UsageRow]:
    """Per template, titled as the catalogue now titles it in the page's language.
    A deleted template's records are grouped by the title they were run under."""
    orphan_title = Case(
        When(template__isnull=True, then=F("template_title")),
        default=Value(""),
        output_field=CharField(),
    )
    rows = list(
        records.annotate(orphan_title=orphan_title)
        .values("template_id", "orphan_title")
        .annotate(run_title=Max("template_title"), **_totals())
        .order_by(_ordering(sort), "template_id", "orphan_title")
    )
    ids = {row["template_id"] for row in rows if row["template_id"] is not None}
    templates = Template.objects.filter(pk__in=ids).only("pk", "slug", *translated_names("title"))
    current = {template.pk: template for template in templates} if ids else {}
    usage = []
    for row in rows:
        template = current.get(row["template_id"])
        if template is None:
            usage.append(_row(row, key="", name=row["run_title"]))
        else:
            usage.append(_row(row, key=template.slug, name=template.title or row["run_title"]))
    return usage


def usage_by_template(
    user, *, days: int, sort: str = DEFAULT_USAGE_SORT, today: datetime.date | None = None
) -> list[UsageRow]:
    """What `user` used per template over the last `days` days."""
    records = _records_in(UsagePeriod.last_days(days, today=today)).filter(user=user)
    return _by_template(records, sort)


def staff_usage_by_person(period: UsagePeriod, *, sort: str = DEFAULT_USAGE_SORT) -> list[UsageRow]:
    """Everyone's use in `period`, a row per person."""
    rows = (
        _records_in(period)
        .values("user_id", "user__username")
        .annotate(**_totals())
        .order_by(_ordering(sort), "user__username")
    )
    return [_row(row, key=str(row["user_id"]), name=row["user__username"]) for row in rows]


def staff_usage_by_template(
    period: UsagePeriod, *, sort: str = DEFAULT_USAGE_SORT
) -> list[UsageRow]:
    """Everyone's use in `period`, a row per template."""
    return _by_template(_records_in(period), sort)


def staff_usage_by_model(period: UsagePeriod, *, sort: str = DEFAULT_USAGE_SORT) -> list[UsageRow]:
    """Everyone's use in `period`, a row per model (and provider). Generations
    that never reached a model (failed before starting, or still queued) have
    none."""
    rows = (
        _records_in(period)
        .values("provider", "model")
        .annotate(**_totals())
        .order_by(_ordering(sort), "model", "provider")
    )
    return [_row(row, key=row["model"], name=row["model"], detail=row["provider"]) for row in rows]


def usage_total(rows: Sequence[UsageRow], *, name: str = "") -> UsageRow:
    """The sum of a breakdown's rows (each record is in exactly one row)."""
    return UsageRow(
        key="",
        name=name,
        generations=sum(row.generations for row in rows),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
        images=sum(row.images for row in rows),
        characters=sum(row.characters for row in rows),
        cost_micros=sum(row.cost_micros for row in rows),
    )


@dataclass(frozen=True)
class QuotaMeter:
    """How much of one quota is used (`limit` None: no limit). A text quota is
    counted in tokens but told as about how many generations are left, at
    `typical` tokens each (generation.lifecycle.limits); an image quota in images."""

    label: str
    used: int
    limit: int | None
    typical: int = 0

    @property
    def is_text(self) -> bool:
        return self.typical > 0

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def generations_left(self) -> int | None:
        """About how many more text generations fit (at least one while any is left)."""
        left = self.left
        if left is None or not self.is_text:
            return None
        return max(1, left // self.typical) if left else 0

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0 if self.limit is None or not self.used else 100
        return min(100, round(self.used * 100 / self.limit))


def quota_meters(allowance: Allowance) -> list[QuotaMeter]:
    """The plan's four quotas and how much of each is used (none without a plan)."""
    plan = allowance.plan
    if plan is None:
        return []
    typical = max(1, allowance.typical_output_tokens)
    return [
        QuotaMeter(
            _("Text generation today"), allowance.tokens_today, plan.daily_output_tokens, typical
        ),
        QuotaMeter(
            _("Text generation this month"),
            allowance.tokens_this_month,
            plan.monthly_output_tokens,
            typical,
        ),
        QuotaMeter(_("Images today"), allowance.images_today, plan.daily_images),
        QuotaMeter(_("Images this month"), allowance.images_this_month, plan.monthly_images),
    ]


def usage_sort(value: str | None) -> str:
    """The `?sort=` asked for, or the default for anything else."""
    return value if value in USAGE_SORTS else DEFAULT_USAGE_SORT


class StaffUsageForm(forms.Form):
    """The staff usage page's period: `from` and `to`, dates, both included. A
    date that cannot be read, or a period that ends before it starts, is an
    error, and the page shows the default period instead."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword: these fields can only be added by name.
        for name, label in (("from", gettext_lazy("From")), ("to", gettext_lazy("To"))):
            self.fields[name] = forms.DateField(
                label=label,
                required=False,
                input_formats=["%Y-%m-%d", "%Y/%m/%d"],
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("from", "to"):
            day = data.get(name)
            if day is not None and not FIRST_USAGE_DATE <= day <= LAST_USAGE_DATE:
                self.add_error(
                    name,
                    _("Enter a date between %(first)s and %(last)s.")
                    % {"first": FIRST_USAGE_DATE.isoformat(), "last": LAST_USAGE_DATE.isoformat()},
                )
        first, last = data.get("from"), data.get("to")
        if first and last and first > last:
            self.add_error("to", _("The end date is before the start date."))
        return data

    @cached_property
    def period(self) -> UsagePeriod:
        """The period asked for; the last 30 days if it could not be read. A
        missing end is today, a missing start 30 days before the end; the
        form then shows those dates, so that its date pickers say what is shown."""
        default = UsagePeriod.last_days(DEFAULT_USAGE_DAYS)
        if not self.is_valid():
            return default  # the dates stay as typed, next to their errors
        last = self.cleaned_data.get("to") or default.last
        first = self.cleaned_data.get("from") or last - datetime.timedelta(
            days=DEFAULT_USAGE_DAYS - 1
        )
        period = UsagePeriod(first=max(first, FIRST_USAGE_DATE), last=last)
        self.data = self.data.copy()
        self.data["from"], self.data["to"] = period.first.isoformat(), period.last.isoformat()
        return period


USAGE_EXPORTS = {
    "people": ("user_id", "username"),
    "templates": ("template_slug", "template"),
    "models": ("model", "provider"),
}


def usage_csv(rows: Sequence[UsageRow], *, breakdown: str) -> str:
    """A breakdown as CSV for spreadsheets: a UTF-8 byte order mark (so Excel
    reads Japanese), and no cell that a spreadsheet would run as a formula."""
    buffer = io.StringIO()
    buffer.write(UTF8_BOM)
    writer = csv.writer(buffer)
    first, second = USAGE_EXPORTS[breakdown]
    measures = ("generations", "input_tokens", "output_tokens", "images")
    writer.writerow([first, second, *measures, "estimated_cost_usd"])
    for row in rows:
        labels = (row.name, row.detail) if breakdown == "models" else (row.key, row.name)
        cells = [*labels, *(getattr(row, name) for name in measures), f"{row.cost:.6f}"]
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return buffer.getvalue()
