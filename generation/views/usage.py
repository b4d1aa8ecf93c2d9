"""Usage pages: each person's own, and the staff's view of everyone's."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.formats import date_format
from django.utils.http import content_disposition_header
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from generation.lifecycle.limits import allowance_of
from generation.reports.charts import bar_chart
from generation.reports.dashboards import (
    USAGE_EXPORTS,
    USAGE_PERIODS,
    USAGE_SORT_LABELS,
    DayUsage,
    StaffUsageForm,
    quota_meters,
    staff_usage_by_model,
    staff_usage_by_person,
    staff_usage_by_template,
    usage_by_day,
    usage_by_template,
    usage_csv,
    usage_period_days,
    usage_sort,
    usage_total,
)
from studio.figures import characters, currency_name, money

# The per-template chart shows the templates used most; the table lists them all.
USAGE_CHART_ROWS = 12
_STAFF_BREAKDOWNS = {
    "people": staff_usage_by_person,
    "templates": staff_usage_by_template,
    "models": staff_usage_by_model,
}


def _daily_charts(daily: list[DayUsage]) -> list[tuple[str, SafeString]]:
    def series(measure: str) -> list[tuple[str, float]]:
        return [(date_format(day.day, "n/j"), getattr(day, measure)) for day in daily]

    return [
        (
            _("Characters"),
            bar_chart(
                series("characters"),
                title=_("Characters per day"),
                format_value=lambda count: characters(int(count)),
            ),
        ),
        (_("Images"), bar_chart(series("images"), title=_("Images per day"))),
        (
            _("Estimated cost"),
            bar_chart(
                series("cost_micros"),
                title=_("Estimated cost per day (%(currency)s)") % {"currency": currency_name()},
                format_value=lambda micros: money(int(micros)),
            ),
        ),
    ]


@require_GET
@login_required
def usage(request: HttpRequest) -> HttpResponse:
    """A person's own usage: where they stand against their plan, and what they
    used by day and by template over the period chosen (`?days=7|30|90`)."""
    days = usage_period_days(request.GET.get("days"))
    allowance = allowance_of(request.user)
    daily = usage_by_day(request.user, days=days)
    templates = usage_by_template(request.user, days=days, sort="generations")
    context = {
        "days": days,
        "periods": USAGE_PERIODS,
        "allowance": allowance,
        "meters": quota_meters(allowance),
        "daily": daily,
        "charts": _daily_charts(daily),
        "templates": templates,
        "templates_chart": bar_chart(
            [(row.name, row.generations) for row in templates[:USAGE_CHART_ROWS]],
            title=_("Generations per template"),
            horizontal=True,
        ),
        "total": usage_total(templates),
    }
    template_name = "generation/usage.html"
    if request.htmx and request.htmx.target == "usage-period":
        template_name += "#period"
    return render(request, template_name, context)


def _csv_download(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@require_GET
@staff_member_required
def staff_usage(request: HttpRequest) -> HttpResponse:
    """Everyone's usage in a period, by person, template and model, each also
    as a CSV download (`?export=people|templates|models`)."""
    form = StaffUsageForm(request.GET)
    period, sort = form.period, usage_sort(request.GET.get("sort"))
    export = request.GET.get("export")
    if export is not None and export not in USAGE_EXPORTS:
        messages.error(request, _("Choose people, templates or models to export."))
    elif export and form.is_valid():
        rows = _STAFF_BREAKDOWNS[export](period, sort=sort)
        name = f"ai-studio-usage-{export}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"
        return _csv_download(usage_csv(rows, breakdown=export), name)
    breakdowns = {key: breakdown(period, sort=sort) for key, breakdown in _STAFF_BREAKDOWNS.items()}
    context = {
        "form": form,
        "period": period,
        "sort": sort,
        "columns": USAGE_SORT_LABELS.items(),
        "breakdowns": breakdowns,
        "total": usage_total(breakdowns["people"]),
    }
    return render(request, "generation/staff_usage.html", context)
