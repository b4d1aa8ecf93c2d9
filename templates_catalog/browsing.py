"""A page of the catalogue from the request's parameters: search, facets
(category, kind, tags, favourites), sort and page, and the links that change
one of them while keeping the others."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, Value, When
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from templates_catalog.models import Category, Template
from templates_catalog.search import SORTS, catalogue_listing

PAGE_SIZE = 24
KIND_ICONS = {"text": "file-text", "image": "image"}
MAX_QUERY_LENGTH = 100
MAX_TAGS = 5
# Popularity is what was generated from each template in this many days,
# counted again at most once a minute.
POPULAR_DAYS = 90
_POPULAR_TTL = 60.0
_popular: tuple[float, dict[int, int]] | None = None


def template_uses() -> dict[int, int]:
    """Generations per template over the last POPULAR_DAYS (cached a minute)."""
    global _popular
    now = time.monotonic()
    if _popular is None or now - _popular[0] > _POPULAR_TTL:
        since = timezone.now() - timedelta(days=POPULAR_DAYS)
        counts = (
            Template.objects.filter(generations__created_at__gte=since)
            .annotate(uses=Count("generations"))
            .values_list("pk", "uses")
        )
        _popular = (now, dict(counts))
    return _popular[1]


@dataclass(frozen=True)
class Params:
    """What the person asked for; anything unreadable is left out, never an error."""

    query: str = ""
    kind: str = ""
    tags: tuple[str, ...] = ()
    sort: str = ""
    favourites: bool = False
    page: str = "1"

    @classmethod
    def from_query(cls, data: QueryDict) -> Params:
        kind = data.get("kind", "")
        sort = data.get("sort", "")
        tags = tuple(dict.fromkeys(t.strip()[:50] for t in data.getlist("tag") if t.strip()))
        return cls(
            query=" ".join(data.get("q", "").split())[:MAX_QUERY_LENGTH],
            kind=kind if kind in Template.Kind.values else "",
            tags=tags[:MAX_TAGS],
            sort=sort if sort in SORTS else "",
            favourites=data.get("favourites") == "1",
            page=data.get("page", "1"),
        )

    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.query else "catalogue")

    def url(self, **changes) -> str:
        """The query string of these parameters with `changes` (a new page 1)."""
        changed = replace(self, **({"page": "1"} | changes))
        pairs = [("q", changed.query), ("kind", changed.kind)]
        pairs += [("tag", tag) for tag in changed.tags]
        pairs += [("sort", changed.sort), ("favourites", "1" if changed.favourites else "")]
        if changed.page != "1":
            pairs.append(("page", changed.page))
        return "?" + urlencode([(name, value) for name, value in pairs if value])

    def without_tag(self, tag: str) -> str:
        return self.url(tags=tuple(t for t in self.tags if t != tag))

    def with_tag(self, tag: str) -> str:
        return self.url(tags=(*self.tags, tag)[:MAX_TAGS])


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    selected: bool = False
    count: int | None = None
    icon: str = ""


@dataclass
class CataloguePage:
    params: Params
    category: Category | None
    page: Page
    categories: list[Link]
    kinds: list[Link]
    tags: list[Link]  # chosen tags first (the link removes one), then others to add
    sorts: list[Link]
    favourites: Link | None
    previous: str = ""
    next: str = ""
    favourite_ids: set[int] = field(default_factory=set)


SORT_LABELS = {
    "relevance": _("Best match"),
    "catalogue": _("Catalogue order"),
    "popular": _("Popular"),
    "new": _("New"),
}


def catalogue_page(
    *, params: Params, category: Category | None, favourite_ids: set[int], signed_in: bool
) -> CataloguePage:
    """The templates and facet links for `params` (in `category`, if given)."""
    sort = params.effective_sort
    listing = catalogue_listing(
        query=params.query,
        category_id=category.pk if category else None,
        kind=params.kind,
        tags=params.tags,
        only=favourite_ids if params.favourites else None,
        sort=sort,
        uses=template_uses() if sort == "popular" else None,
        language=translation.get_language(),
    )
    page = Paginator(listing.pks, PAGE_SIZE).get_page(params.page)
    pks = list(page.object_list)
    templates = Template.objects.filter(pk__in=pks).select_related("category")
    if pks:
        order = Case(*[When(pk=pk, then=Value(n)) for n, pk in enumerate(pks)])
        page.object_list = list(templates.order_by(order))
    here = category.get_absolute_url() if category else reverse("catalog:list")
    counts = dict(listing.categories)
    categories = [
        Link(_("All"), reverse("catalog:list") + params.url(), category is None, icon="layout-grid")
    ]
    categories += [
        Link(
            c.name,
            c.get_absolute_url() + params.url(),
            c == category,
            counts.get(c.pk, 0),
            icon=c.look.icon,
        )
        for c in Category.objects.all()
    ]
    kinds = [Link(_("All"), here + params.url(kind=""), not params.kind)]
    kinds += [
        Link(
            label,
            here + params.url(kind=value),
            params.kind == value,
            listing.kinds.get(value, 0),
            icon=KIND_ICONS[value],
        )
        for value, label in Template.Kind.choices
    ]
    tags = [Link(tag, here + params.without_tag(tag), True) for tag in params.tags]
    tags += [Link(tag, here + params.with_tag(tag), False, n) for tag, n in listing.tags]
    sorts = [
        Link(label, here + params.url(sort=value), sort == value)
        for value, label in SORT_LABELS.items()
        if value != "relevance" or params.query
    ]
    favourites = None
    if signed_in:
        favourites = Link(
            _("Only my favourites"),
            here + params.url(favourites=not params.favourites),
            params.favourites,
        )
    return CataloguePage(
        params=params,
        category=category,
        page=page,
        categories=categories,
        kinds=kinds,
        tags=tags,
        sorts=sorts,
        favourites=favourites,
        previous=here + params.url(page=str(page.number - 1)) if page.has_previous() else "",
        next=here + params.url(page=str(page.number + 1)) if page.has_next() else "",
        favourite_ids=favourite_ids,
    )
