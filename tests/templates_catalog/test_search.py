"""Finding templates in the full shipped catalogue: real queries in both
languages find the right template first; facets, sorts and pages combine;
bad parameters never fail; the pages cost a fixed number of queries."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from templates_catalog.models import FavouriteTemplate, Template
from tests.factories import GenerationFactory, UserFactory

LIST = reverse("catalog:list")
CARD_LINK = re.compile(
    r'<li class="template-card">.*?<a class="card-link" href="/t/([^/]+)/">', re.S
)


def found(client, **params) -> list[str]:
    page = client.get(LIST, params).content.decode()
    return CARD_LINK.findall(page)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("謝罪メール", "apology-email-to-client"),
        ("TikTok 台本", "tiktok-script"),
        ("SWOT", "swot-analysis"),
        ("議事録", "minutes-from-meeting-notes"),
        ("敬語", "keigo-level-converter"),
    ],
)
def test_the_right_template_comes_first(client, db_with_catalogue, query, expected):
    assert found(client, q=query)[0] == expected


def test_press_release_finds_press_release_templates_first(client, db_with_catalogue):
    top = Template.objects.filter(slug__in=found(client, q="press release")[:5])
    assert all("press release" in template.title_en.lower() for template in top)
    assert sum(template.category.slug == "press-releases" for template in top) >= 3


def test_product_photo_finds_image_templates_of_product_photos(client, db_with_catalogue):
    top = Template.objects.filter(slug__in=found(client, q="product photo")[:3])
    assert {template.kind for template in top} == {"image"}
    assert all("product photo" in template.title_en.lower() for template in top)


def test_a_japanese_query_and_its_english_find_the_same_template(client, db_with_catalogue):
    assert found(client, q="プレスリリース")[0] in found(client, q="press release")[:5]


def test_facets_narrow_and_count(client, db_with_catalogue):
    images = found(client, kind="image")
    assert len(images) == 24  # a full page
    page = client.get(LIST, {"kind": "image"}).content.decode()
    assert "42 templates" in page
    assert set(Template.objects.filter(slug__in=images).values_list("kind", flat=True)) == {"image"}
    # A category's page with a query counts what the query found in it.
    email = client.get(
        reverse("catalog:category", args=["business-email"]), {"q": "お礼"}
    ).content.decode()
    slugs = CARD_LINK.findall(email)
    assert slugs
    assert set(
        Template.objects.filter(slug__in=slugs).values_list("category__slug", flat=True)
    ) == {"business-email"}


def test_tags_filter_and_can_be_removed(client, db_with_catalogue):
    with_tag = found(client, tag="謝罪")
    assert "apology-email-to-client" in with_tag
    assert all("謝罪" in Template.objects.get(slug=slug).tags_ja for slug in with_tag)
    page = client.get(LIST, {"tag": "謝罪"}).content.decode()
    assert 'aria-current="true" title="Remove this tag"' in page


def test_favourites_only_and_popular_first(client, db_with_catalogue):
    user = UserFactory()
    client.force_login(user)
    swot = Template.objects.get(slug="swot-analysis")
    FavouriteTemplate.objects.create(user=user, template=swot)
    assert found(client, favourites="1") == ["swot-analysis"]
    GenerationFactory.create_batch(3, template=swot, user=user)
    from templates_catalog import browsing

    browsing._popular = None  # counted afresh
    assert found(client, sort="popular")[0] == "swot-analysis"


def test_new_lists_the_newest_first(client, db_with_catalogue):
    newest = Template.objects.order_by("-created_at", "category__order", "order").first()
    assert found(client, sort="new")[0] == newest.slug


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "video"},
        {"sort": "DROP TABLE"},
        {"page": "999"},
        {"page": "abc"},
        {"tag": "x" * 500},
        {"q": "a" * 1000},
        {"favourites": "1"},  # anonymous: ignored
    ],
)
def test_bad_parameters_show_a_page(client, db_with_catalogue, params):
    response = client.get(LIST, params)
    assert response.status_code == 200
    assert 'id="listing"' in response.content.decode()


def test_pages_keep_the_query_and_facets(client, db_with_catalogue):
    page = client.get(LIST, {"kind": "text", "q": "メール"}).content.decode()
    assert "Page 1 of" in page
    assert "?q=%E3%83%A1%E3%83%BC%E3%83%AB&amp;kind=text&amp;page=2" in page


def test_the_list_and_search_cost_a_fixed_number_of_queries(
    client, db_with_catalogue, django_assert_max_num_queries
):
    client.get(LIST)  # the index is built once per catalogue change
    with django_assert_max_num_queries(3):
        client.get(LIST)
    with django_assert_max_num_queries(3):
        client.get(LIST, {"q": "謝罪メール", "kind": "text"})
    user = UserFactory()
    client.force_login(user)
    with django_assert_max_num_queries(6):
        client.get(LIST, {"q": "TikTok 台本", "sort": "popular"})


def test_the_api_lists_search_results_best_first(client, db_with_catalogue):
    user = UserFactory()
    client.force_login(user)
    results = client.get("/api/v1/templates", {"q": "謝罪メール"}).json()["results"]
    assert results[0]["slug"] == "apology-email-to-client"
