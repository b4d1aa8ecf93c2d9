"""Starring templates, and each person's favourites and recently used templates
on the home page."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from generation.models import Generation
from templates_catalog.models import FavouriteTemplate
from tests.factories import (
    FavouriteTemplateFactory,
    GenerationFactory,
    TemplateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HOME = reverse("catalog:home")


def favourite_url(template) -> str:
    return reverse("catalog:favourite", args=[template.slug])


def used(user, template, *, days_ago: float = 0) -> Generation:
    generation = GenerationFactory(user=user, template=template)
    at = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(days=days_ago)
    Generation.objects.filter(pk=generation.pk).update(created_at=at)
    return generation


def section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start : page.index("</section>", start)]


def test_starring_a_template_without_javascript_returns_to_the_page(user_client, user):
    template = TemplateFactory()
    response = user_client.post(
        favourite_url(template), {"favourite": "1", "next": template.get_absolute_url()}
    )
    assert response.status_code == 302
    assert response["Location"] == template.get_absolute_url()
    assert FavouriteTemplate.objects.filter(user=user, template=template).exists()


def test_starring_twice_keeps_one_favourite_and_unstarring_removes_it(user_client, user):
    template = TemplateFactory()
    user_client.post(favourite_url(template), {"favourite": "1"})
    user_client.post(favourite_url(template), {"favourite": "1"})
    assert FavouriteTemplate.objects.filter(user=user).count() == 1
    user_client.post(favourite_url(template), {"favourite": "0"})
    user_client.post(favourite_url(template), {"favourite": "0"})
    assert not FavouriteTemplate.objects.filter(user=user).exists()


def test_starring_with_htmx_swaps_in_the_pressed_star(user_client, user):
    template = TemplateFactory()
    response = user_client.post(
        favourite_url(template),
        {"favourite": "1", "next": "/templates/?q=mail"},
        headers={"HX-Request": "true"},
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<form method="post"')
    assert 'aria-pressed="true"' in page
    assert 'name="favourite" value="0"' in page
    assert 'name="next" value="/templates/?q=mail"' in page


def test_the_next_address_must_be_on_this_site(user_client):
    template = TemplateFactory()
    response = user_client.post(
        favourite_url(template), {"favourite": "1", "next": "https://evil.example/"}
    )
    assert response["Location"] == template.get_absolute_url()


def test_starring_needs_a_login_and_a_post(user_client):
    template = TemplateFactory()
    response = Client().post(favourite_url(template), {"favourite": "1"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert user_client.get(favourite_url(template)).status_code == 405
    assert not FavouriteTemplate.objects.exists()


def test_drafts_cannot_be_starred(user_client):
    draft = TemplateFactory(status="draft")
    assert user_client.post(favourite_url(draft), {"favourite": "1"}).status_code == 404


def test_a_person_favourites_a_template_only_once(user):
    template = TemplateFactory()
    FavouriteTemplate.objects.create(user=user, template=template)
    with pytest.raises(IntegrityError), transaction.atomic():
        FavouriteTemplate.objects.create(user=user, template=template)


def test_the_template_page_shows_the_star_state_to_its_owner_only(user_client, user):
    starred, plain = TemplateFactory(), TemplateFactory()
    FavouriteTemplateFactory(user=user, template=starred)
    FavouriteTemplateFactory(template=plain)  # someone else's star
    assert 'aria-pressed="true"' in user_client.get(starred.get_absolute_url()).content.decode()
    assert 'aria-pressed="false"' in user_client.get(plain.get_absolute_url()).content.decode()
    assert "favourite-form" not in Client().get(starred.get_absolute_url()).content.decode()


def test_catalogue_cards_have_stars_for_people_logged_in(user_client, user):
    starred, plain = TemplateFactory(title_en="Starred one"), TemplateFactory()
    FavouriteTemplateFactory(user=user, template=starred)
    page = user_client.get(reverse("catalog:list")).content.decode()
    assert page.count('class="favourite-form"') == 2
    assert page.count('aria-pressed="true"') == 1
    assert favourite_url(plain) in page
    assert "favourite-form" not in Client().get(reverse("catalog:list")).content.decode()


def test_home_shows_my_favourites_newest_first_and_published_only(user_client, user):
    older = TemplateFactory(title_en="Older favourite")
    newer = TemplateFactory(title_en="Newer favourite")
    draft = TemplateFactory(title_en="Draft favourite", status="draft")
    for template in (older, newer, draft):
        FavouriteTemplateFactory(user=user, template=template)
    FavouriteTemplateFactory(template=TemplateFactory(title_en="Someone else's favourite"))
    favourites = section(user_client.get(HOME).content.decode(), "favourites-heading")
    assert favourites.index("Newer favourite") < favourites.index("Older favourite")
    assert "Draft favourite" not in favourites
    assert "Someone else" not in favourites
    assert favourites.count('aria-pressed="true"') == 2


def test_home_shows_recently_used_templates_distinct_latest_first_a_row_of_four(user_client, user):
    templates = [TemplateFactory(title_en=f"Used {n}") for n in range(8)]
    for n, template in enumerate(templates):
        used(user, template, days_ago=n)  # Used 0 is the latest
        used(user, template, days_ago=n + 10)  # twice: listed once
    used(user, TemplateFactory(title_en="Draft now", status="draft"), days_ago=0)
    used(UserFactory(), TemplateFactory(title_en="Someone else's"), days_ago=0)
    recent = section(user_client.get(HOME).content.decode(), "recent-heading")
    shown = [f"Used {n}" for n in range(8) if f"Used {n}<" in recent]
    assert shown == [f"Used {n}" for n in range(4)]
    assert [recent.index(title) for title in shown] == sorted(recent.index(t) for t in shown)
    assert "Draft now" not in recent
    assert "Someone else" not in recent


def test_a_template_used_again_moves_to_the_front(user_client, user):
    first, second = TemplateFactory(title_en="First"), TemplateFactory(title_en="Second")
    used(user, first, days_ago=3)
    used(user, second, days_ago=2)
    used(user, first, days_ago=1)
    recent = section(user_client.get(HOME).content.decode(), "recent-heading")
    assert recent.index("First") < recent.index("Second")


def test_home_says_what_favourites_are_for_and_leaves_out_an_empty_recent_row(user_client):
    page = user_client.get(HOME).content.decode()
    assert "Star a template" in page
    assert "recent-heading" not in page


def test_home_has_no_personal_sections_for_someone_not_logged_in(client):
    FavouriteTemplateFactory()
    page = client.get(HOME).content.decode()
    assert "favourites-heading" not in page
    assert "recent-heading" not in page


def test_home_query_count_stays_bounded_with_many_favourites_and_generations(
    user_client, user, django_assert_max_num_queries
):
    templates = [TemplateFactory() for _ in range(12)]
    for n, template in enumerate(templates):
        FavouriteTemplateFactory(user=user, template=template)
        for day in range(3):
            used(user, template, days_ago=n + day)
    # session, user, categories, template uses, popular templates (or each
    # category's first), favourites, favourite ids, recently used
    with django_assert_max_num_queries(9):
        response = user_client.get(HOME)
    page = response.content.decode()
    # A row each: eight favourites (of twelve, with a link to all), four
    # recently used; popular templates are any of those used of late.
    assert section(page, "favourites-heading").count('class="favourite-form"') == 8
    assert section(page, "recent-heading").count('class="favourite-form"') == 4


@pytest.fixture
def fresh_popularity(monkeypatch):
    """Popularity is cached a minute per process: start each test without it."""
    from templates_catalog import browsing

    monkeypatch.setattr(browsing, "_popular", None)


def test_home_shows_the_most_used_templates_first_as_popular(client, fresh_popularity):
    quiet, busy, busiest = (TemplateFactory(title_en=t) for t in ("Quiet", "Busy", "Busiest"))
    draft = TemplateFactory(title_en="Hidden draft", status="draft")
    someone = UserFactory()
    for template, times in ((quiet, 1), (busy, 3), (busiest, 5), (draft, 9)):
        for _ in range(times):
            used(someone, template, days_ago=1)
    popular = section(client.get(HOME).content.decode(), "popular-heading")
    assert "Popular templates" in popular
    assert popular.index("Busiest") < popular.index("Busy<") < popular.index("Quiet")
    assert "Hidden draft" not in popular


def test_a_new_studio_offers_each_categorys_first_template_to_start_with(client, fresh_popularity):
    firsts = [TemplateFactory(title_en=f"First of {n}", order=0) for n in range(3)]
    for template in firsts:
        TemplateFactory(
            title_en=f"Later in {template.category.name}", category=template.category, order=5
        )
    popular = section(client.get(HOME).content.decode(), "popular-heading")
    assert "Templates to start with" in popular
    assert all(template.title in popular for template in firsts)
    assert "Later in" not in popular


def test_home_shows_every_category_as_a_tile_with_its_icon_and_count(client):
    from studio.templatetags.studio_tags import icon_body

    email = TemplateFactory(category__slug="business-email", category__name_en="Business email")
    TemplateFactory(category=email.category)
    TemplateFactory(category__slug="brand-new", category__name_en="Brand new")
    tiles = section(client.get(HOME).content.decode(), "categories-heading").split("<li>")
    (email_tile,) = [tile for tile in tiles if "Business email" in tile]
    (new_tile,) = [tile for tile in tiles if "Brand new" in tile]
    assert "2 templates" in email_tile
    assert icon_body("mail") in email_tile
    # A category not yet given an icon gets the default one.
    assert "1 template<" in new_tile
    assert icon_body("layout-grid") in new_tile
