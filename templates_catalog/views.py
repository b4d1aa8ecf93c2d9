"""Browsing the catalogue: categories, search, a template's page with its form,
and each person's favourite and recently used templates."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from templates_catalog.browsing import Params, catalogue_page, template_uses
from templates_catalog.forms import form_data_from_inputs, template_form
from templates_catalog.models import (
    Category,
    FavouriteTemplate,
    Template,
    TemplateField,
    TemplateQuerySet,
)

RECENTLY_USED_COUNT = 4
POPULAR_COUNT = 8
# Searches offered under the home page's search box.
QUICK_SEARCHES = (
    _("apology email"),
    _("meeting minutes"),
    _("job posting"),
    _("press release"),
    _("product description"),
    _("SWOT"),
)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    published = Q(templates__status=Template.Status.PUBLISHED)
    categories = Category.objects.annotate(
        template_count=Count("templates", filter=published)
    ).filter(template_count__gt=0)
    popular, by_usage = popular_templates()
    context = {
        "categories": categories,
        "popular": popular,
        "popular_by_usage": by_usage,
        "quick_searches": QUICK_SEARCHES,
    }
    if request.user.is_authenticated:
        favourites = [
            favourite.template
            for favourite in FavouriteTemplate.objects.filter(
                user=request.user, template__status=Template.Status.PUBLISHED
            ).select_related("template__category")[:POPULAR_COUNT]
        ]
        context |= {
            "favourites": favourites,
            "favourite_ids": favourite_template_ids(request.user),
            "recently_used": recently_used_templates(request.user),
        }
    return render(request, "templates_catalog/home.html", context)


def popular_templates(limit: int = POPULAR_COUNT) -> tuple[list[Template], bool]:
    """The most used published templates of late (browsing.template_uses),
    and whether usage chose them: with no usage yet, each category's first
    template stands in, so a new studio's home is not empty."""
    uses = template_uses()
    published = Template.objects.published().select_related("category")
    chosen = sorted(
        published.filter(pk__in=[pk for pk, count in uses.items() if count > 0]),
        key=lambda template: (-uses.get(template.pk, 0), template.pk),
    )[:limit]
    if chosen:
        return chosen, True
    firsts: dict[int, Template] = {}
    for template in published.order_by("category__order", "order", "pk"):
        firsts.setdefault(template.category_id, template)
        if len(firsts) == limit:
            break
    return list(firsts.values()), False


def recently_used_templates(user, *, limit: int = RECENTLY_USED_COUNT) -> TemplateQuerySet:
    """The published templates of the person's latest generations, most recent first."""
    return (
        Template.objects.published()
        .filter(generations__user=user)
        .annotate(last_used_at=Max("generations__created_at"))
        .select_related("category")
        .order_by("-last_used_at", "pk")[:limit]
    )


def favourite_template_ids(user) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(FavouriteTemplate.objects.filter(user=user).values_list("template_id", flat=True))


@require_GET
def template_list(request: HttpRequest, category_slug: str | None = None) -> HttpResponse:
    category = get_object_or_404(Category, slug=category_slug) if category_slug else None
    catalogue = catalogue_page(
        params=Params.from_query(request.GET),
        category=category,
        favourite_ids=favourite_template_ids(request.user),
        signed_in=request.user.is_authenticated,
    )
    template_name = "templates_catalog/template_list.html"
    if request.htmx and request.htmx.target == "listing":
        template_name += "#listing"
    return render(request, template_name, {"catalogue": catalogue, "category": category})


@require_GET
def template_detail(request: HttpRequest, slug: str) -> HttpResponse:
    if rerun_id := _uuid(request.GET.get("from", "")):
        # Re-runs are the generation side's (generation:rerun); old links still work.
        return redirect("generation:rerun", pk=rerun_id)
    template = get_object_or_404(
        Template.objects.visible_to(request.user).select_related("category"), slug=slug
    )
    fields = list(template.fields.all())
    initial = None
    if request.GET.get("sample"):
        initial = form_data_from_inputs(template.sample_inputs or {}, fields)
    return template_page(request, template, fields=fields, initial=initial)


def template_page(
    request: HttpRequest,
    template: Template,
    *,
    fields: list[TemplateField],
    initial: dict | None = None,
    rerun_of: object | None = None,
    generation: object | None = None,
) -> HttpResponse:
    """A template's page with its form, filled with `initial` when given; with
    `rerun_of` (a generation of the person's) it says where the values came from;
    with `generation` (one of theirs) its answer is shown beside the form. Below
    it, the related templates the person may see."""
    related = Template.objects.visible_to(request.user).related_to(template)
    context = {
        "template": template,
        "form": template_form(template, initial=initial, fields=fields),
        "rerun_of": rerun_of,
        "generation": generation,
        "related_templates": list(related.select_related("category")),
        "favourite_ids": favourite_template_ids(request.user),
    }
    return render(request, "templates_catalog/template_detail.html", context)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@require_POST
@login_required
def template_favourite(request: HttpRequest, slug: str) -> HttpResponse:
    """Star (`favourite=1`) or unstar (`favourite=0`) a template; saying it twice is harmless."""
    template = get_object_or_404(Template.objects.visible_to(request.user), slug=slug)
    favourite = request.POST.get("favourite") == "1"
    if favourite:
        FavouriteTemplate.objects.get_or_create(user=request.user, template=template)
    else:
        FavouriteTemplate.objects.filter(user=request.user, template=template).delete()
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = template.get_absolute_url()
    if request.htmx:
        context = {
            "template": template,
            "favourite_ids": {template.pk} if favourite else set(),
            "next_url": next_url,
        }
        return render(request, "templates_catalog/template_detail.html#favourite", context)
    return redirect(next_url)
