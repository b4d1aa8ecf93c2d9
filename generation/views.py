"""Starting generations, watching them stream, and the history of one's own."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import aget_object_or_404, get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url

from generation.charts import bar_chart
from generation.dashboards import (
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
    usd,
)
from generation.database import release_request_connections
from generation.exports import EXPORT_FORMATS, export_response
from generation.history import HistoryFilterForm, history_delete, history_generations, parse_ids
from generation.limits import LimitExceeded, allowance_of
from generation.models import GeneratedImage, Generation
from generation.services import generation_cancel, generation_continue, generation_create
from generation.sse import event_stream_response, last_event_id
from generation.streams import page_event_stream
from templates_catalog.forms import (
    form_data_from_inputs,
    labelled_values,
    stored_inputs,
    template_form,
)
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import PromptRenderError, PromptSyntaxError
from templates_catalog.views import templates_visible_to

HISTORY_PAGE_SIZE = 20


def _start(
    request: HttpRequest, template: Template, data, fields: list[TemplateField]
) -> HttpResponse:
    """Validate `data` against the template's fields and start a generation, or
    show the form again with the errors next to the fields."""
    form = template_form(template, data, fields=fields)
    generation = None
    if form.is_valid():
        try:
            generation = generation_create(
                user=request.user, template=template, inputs=stored_inputs(form), fields=fields
            )
        except (PromptRenderError, PromptSyntaxError) as exc:
            form.add_error(None, str(exc))
        except LimitExceeded as exc:
            form.add_error(None, exc.message)
    context = {"template": template, "form": form, "generation": generation}
    if request.htmx:
        response = render(request, "templates_catalog/template_detail.html#workspace", context)
        return push_url(response, generation.get_absolute_url()) if generation else response
    if generation:
        return redirect(generation)
    return render(request, "templates_catalog/template_detail.html", context)


@require_POST
@login_required
def generation_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(templates_visible_to(request.user), slug=slug)
    return _start(request, template, request.POST, list(template.fields.all()))


@require_POST
@login_required
def generation_regenerate(request: HttpRequest, pk) -> HttpResponse:
    previous = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    template = get_object_or_404(templates_visible_to(request.user), pk=previous.template_id)
    fields = list(template.fields.all())
    return _start(request, template, form_data_from_inputs(previous.inputs, fields), fields)


@require_POST
@login_required
def generation_cancel_view(request: HttpRequest, pk) -> HttpResponse:
    """Stop: the page's stream then ends with the text so far and `done`."""
    generation = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    generation_cancel(generation=generation)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect(generation)


@require_POST
@login_required
def generation_continue_view(request: HttpRequest, pk) -> HttpResponse:
    """Continue an answer that stopped at the length limit, as a new generation."""
    previous = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    if previous.finish_reason != "length":
        return redirect(previous)
    try:
        return redirect(generation_continue(generation=previous))
    except LimitExceeded as exc:
        messages.error(request, exc.message)
        return redirect(previous)


@require_GET
@login_required
def generation_detail(request: HttpRequest, pk) -> HttpResponse:
    generation = get_object_or_404(
        Generation.objects.for_user(request.user).select_related("template", "template_version"),
        pk=pk,
    )
    fields = list(generation.template.fields.all()) if generation.template else []
    if fields:
        inputs = labelled_values(generation.inputs, fields, translation.get_language())
    else:
        inputs = [(name, str(value)) for name, value in generation.inputs.items()]
    return render(request, "generation/detail.html", {"generation": generation, "inputs": inputs})


@require_GET
async def generation_stream(request: HttpRequest, pk) -> HttpResponse:
    user = await request.auser()
    generation = await aget_object_or_404(Generation.objects.for_user(user).only("pk"), pk=pk)
    return event_stream_response(page_event_stream(generation.pk, last_event_id(request), request))


@require_GET
@login_required
def history(request: HttpRequest) -> HttpResponse:
    filters = HistoryFilterForm(request.GET, user=request.user)
    generations = (
        history_generations(user=request.user, filters=filters.applied)
        .select_related("template_version")
        .defer("system_prompt", "prompt", "output", "progress", "template_version__snapshot")
        .annotate(template_slug=F("template__slug"), template_status=F("template__status"))
        .prefetch_related(Prefetch("images", GeneratedImage.objects.filter(index=0)))
    )
    page = Paginator(generations, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    template_name = "generation/history.html"
    if request.htmx and request.htmx.target == "history":
        template_name += "#history"
    return render(request, template_name, {"page": page, "filters": filters})


def _back_to_history(request: HttpRequest) -> str:
    """Where the person came from in their history (`next`, if it is on this site)."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse("generation:history")


@require_http_methods(["GET", "POST"])
@login_required
def history_export(request: HttpRequest) -> HttpResponse:
    """A download of everything the search and filters match (GET), or of the
    rows selected (POST `ids`), as CSV, JSON or Markdown."""
    params = request.POST if request.method == "POST" else request.GET
    format_name = params.get("format", "")
    if format_name not in EXPORT_FORMATS:
        messages.error(request, _("Choose CSV, JSON or Markdown to export."))
        return redirect(_back_to_history(request))
    if request.method == "POST":
        ids = parse_ids(request.POST.getlist("ids"))
        if not ids:
            messages.error(request, _("Select at least one generation first."))
            return redirect(_back_to_history(request))
        generations = Generation.objects.for_user(request.user).filter(pk__in=ids)
    else:
        filters = HistoryFilterForm(request.GET, user=request.user)
        generations = history_generations(user=request.user, filters=filters.applied)
    response = export_response(generations=generations, format_name=format_name)
    release_request_connections()  # the rows are read on the readers' threads
    return response


def _after_delete(request: HttpRequest, count: int) -> HttpResponse:
    if request.htmx and (request.htmx.target or "").startswith("row-"):
        return HttpResponse("")  # the row is swapped out; nothing else changes
    if count:
        messages.success(
            request,
            ngettext("Deleted %(count)d generation.", "Deleted %(count)d generations.", count)
            % {"count": count},
        )
    url = _back_to_history(request)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_http_methods(["GET", "POST"])
@login_required
def generation_delete(request: HttpRequest, pk) -> HttpResponse:
    """GET asks to confirm (the page without JavaScript); POST deletes."""
    generation = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    if not generation.is_finished:
        messages.error(request, _("This generation is still running. Stop it first."))
        url = generation.get_absolute_url()
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    if request.method == "GET":
        context = {
            "generations": [generation],
            "action": reverse("generation:delete", args=[generation.pk]),
            "next": _back_to_history(request),
        }
        return render(request, "generation/delete_confirm.html", context)
    return _after_delete(request, history_delete(user=request.user, ids=[generation.pk]))


@require_POST
@login_required
def history_delete_selected(request: HttpRequest) -> HttpResponse:
    """Delete the rows selected; without `confirmed` (no JavaScript to ask), ask first."""
    ids = parse_ids(request.POST.getlist("ids"))
    if not ids:
        messages.error(request, _("Select at least one generation first."))
        return redirect(_back_to_history(request))
    if not request.POST.get("confirmed"):
        context = {
            "generations": Generation.objects.for_user(request.user).filter(pk__in=ids),
            "action": reverse("generation:delete_selected"),
            "next": _back_to_history(request),
        }
        return render(request, "generation/delete_confirm.html", context)
    return _after_delete(request, history_delete(user=request.user, ids=ids))


# Usage -------------------------------------------------------------------------

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
        (_("Output tokens"), bar_chart(series("output_tokens"), title=_("Output tokens per day"))),
        (_("Images"), bar_chart(series("images"), title=_("Images per day"))),
        (
            _("Estimated cost"),
            bar_chart(
                series("cost_micros"),
                title=_("Estimated cost per day (US dollars)"),
                format_value=lambda micros: usd(int(micros)),
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
