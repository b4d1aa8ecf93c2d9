"""Browsing the catalogue: anonymous people can, with or without JavaScript."""

from __future__ import annotations

import pytest
from django.urls import reverse

from templates_catalog.models import Template
from tests.factories import CategoryFactory, TemplateFactory, template_with_fields

pytestmark = pytest.mark.django_db


def test_home_lists_categories_with_published_templates_only(client):
    shown = CategoryFactory(name_en="Email")
    TemplateFactory(category=shown, title_en="Thank-you email")
    hidden = CategoryFactory(name_en="Hidden category")
    TemplateFactory(category=hidden, title_en="Secret draft", status=Template.Status.DRAFT)
    page = client.get(reverse("catalog:home")).content.decode()
    assert "Email" in page
    assert "Thank-you email" in page
    assert "Hidden category" not in page
    assert "Secret draft" not in page


def test_search_matches_words_in_either_language_and_tags(client):
    TemplateFactory(
        title_en="Apology email", title_ja="謝罪メール", tags_ja="お詫び", tags_en="apology"
    )
    TemplateFactory(
        title_en="TikTok script", title_ja="TikTok台本", tags_ja="動画", tags_en="video"
    )
    url = reverse("catalog:list")
    assert "Apology email" in client.get(url, {"q": "謝罪"}).content.decode()
    assert "Apology email" in client.get(url, {"q": "お詫び"}).content.decode()
    tiktok = client.get(url, {"q": "tiktok 台本"}).content.decode()
    assert "TikTok script" in tiktok
    assert "Apology email" not in tiktok


def test_search_as_you_type_returns_only_the_listing_region(client):
    TemplateFactory(title_en="Apology email")
    response = client.get(
        reverse("catalog:list"),
        {"q": "apology"},
        headers={"HX-Request": "true", "HX-Target": "listing"},
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="listing"')
    assert "Apology email" in page
    assert "<html" not in page


def test_search_with_no_match_says_so(client):
    page = client.get(reverse("catalog:list"), {"q": "zzzz"}).content.decode()
    assert "No template matches" in page


def test_overlong_and_odd_queries_do_not_fail(client):
    url = reverse("catalog:list")
    assert client.get(url, {"q": "%" * 5000}).status_code == 200
    assert client.get(url, {"q": "'; DROP TABLE x; --", "page": "-3"}).status_code == 200
    assert client.get(url, {"page": "not-a-number"}).status_code == 200


def test_category_page_shows_its_templates(client):
    category = CategoryFactory(slug="email")
    TemplateFactory(category=category, title_en="In category")
    TemplateFactory(title_en="Elsewhere")
    page = client.get(reverse("catalog:category", args=["email"])).content.decode()
    assert "In category" in page
    assert "Elsewhere" not in page
    assert client.get(reverse("catalog:category", args=["nope"])).status_code == 404


def test_template_page_shows_the_form_to_people_who_are_logged_in(user_client):
    template = template_with_fields()
    page = user_client.get(template.get_absolute_url()).content.decode()
    assert 'name="recipient"' in page
    assert f'action="{reverse("generation:create", args=[template.slug])}"' in page
    assert 'hx-post="' in page


def test_template_page_asks_anonymous_people_to_log_in(client):
    template = template_with_fields()
    page = client.get(template.get_absolute_url()).content.decode()
    assert "Log in to generate" in page
    assert 'name="recipient"' not in page


def test_fill_in_an_example_prefills_the_sample(user_client):
    template = template_with_fields(sample_inputs_en={"recipient": "Ms Sato"})
    page = user_client.get(template.get_absolute_url(), {"sample": "1"}).content.decode()
    assert 'value="Ms Sato"' in page
    assert "errorlist" not in page


def test_drafts_are_hidden_from_people_but_not_from_staff(client, user_client):
    from tests.factories import UserFactory

    draft = template_with_fields(status=Template.Status.DRAFT)
    assert user_client.get(draft.get_absolute_url()).status_code == 404
    client.force_login(UserFactory(is_staff=True))
    assert client.get(draft.get_absolute_url()).status_code == 200


def test_catalogue_list_query_count_does_not_grow_with_results(
    client, django_assert_max_num_queries
):
    for _ in range(30):
        TemplateFactory()
    with django_assert_max_num_queries(4):
        client.get(reverse("catalog:list"))
