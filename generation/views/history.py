"""Each person's history: the list with its filters, exports and deleting."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Prefetch
from django.db.models.functions import Length
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from generation.models import GeneratedImage, Generation
from generation.reports.exports import EXPORT_FORMATS, export_response
from generation.reports.history import (
    HistoryFilterForm,
    history_delete,
    history_generations,
    parse_ids,
)
from studio.sse import release_request_connections

HISTORY_PAGE_SIZE = 20


@require_GET
@login_required
def history(request: HttpRequest) -> HttpResponse:
    filters = HistoryFilterForm(request.GET, user=request.user)
    generations = (
        history_generations(user=request.user, filters=filters.applied)
        .select_related("template_version")
        .defer("system_prompt", "prompt", "output", "progress", "template_version__snapshot")
        .annotate(
            template_slug=F("template__slug"),
            template_status=F("template__status"),
            output_characters=Length("output"),
        )
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
