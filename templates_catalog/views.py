"""Browsing the catalogue: categories, search, and a template's page with its form."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from templates_catalog.forms import form_data_from_inputs, template_form
from templates_catalog.models import Category, Template, TemplateQuerySet

LIST_PAGE_SIZE = 24
MAX_QUERY_LENGTH = 100


def templates_visible_to(user) -> TemplateQuerySet:
    """Published templates; staff also see drafts (to try them before publishing)."""
    if getattr(user, "is_staff", False):
        return Template.objects.all()
    return Template.objects.published()


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    published = Q(templates__status=Template.Status.PUBLISHED)
    categories = (
        Category.objects.annotate(template_count=Count("templates", filter=published))
        .filter(template_count__gt=0)
        .prefetch_related(
            Prefetch("templates", queryset=Template.objects.published(), to_attr="published")
        )
    )
    return render(request, "templates_catalog/home.html", {"categories": categories})


@require_GET
def template_list(request: HttpRequest, category_slug: str | None = None) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    category = get_object_or_404(Category, slug=category_slug) if category_slug else None
    templates = Template.objects.published().select_related("category")
    if category:
        templates = templates.filter(category=category)
    if query:
        templates = templates.search(query)
    page = Paginator(templates, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": query,
        "category": category,
        "categories": Category.objects.all(),
    }
    template_name = "templates_catalog/template_list.html"
    if request.htmx and request.htmx.target == "results":
        template_name += "#results"
    return render(request, template_name, context)


@require_GET
def template_detail(request: HttpRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(
        templates_visible_to(request.user).select_related("category"), slug=slug
    )
    fields = list(template.fields.all())
    initial = None
    if request.GET.get("sample"):
        initial = form_data_from_inputs(template.sample_inputs or {}, fields)
    form = template_form(template, initial=initial, fields=fields)
    return render(
        request, "templates_catalog/template_detail.html", {"template": template, "form": form}
    )
