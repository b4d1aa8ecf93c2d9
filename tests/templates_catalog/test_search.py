"""Finding templates in the full shipped catalogue (loaded once for the module):
real queries in both languages find the right template first; facets, sorts
and pages combine; bad parameters never fail; the pages cost a fixed number of
queries. And search that understands Japanese, measured: the relevance set
keeps its recall@10 and MRR; synonyms, written variants and abbreviations find
what the usual word finds; titles outrank tags, tags descriptions; and no
query, however odd, fails or takes long."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse
from hypothesis import example, given, settings
from hypothesis import strategies as st

from templates_catalog.models import FavouriteTemplate, Template
from templates_catalog.search import SearchIndex, search_index
from tests.factories import GenerationFactory, TemplateFactory, UserFactory
from tests.support.relevance import catalogue_ranking, load_relevance_set, measure_relevance

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


# --- Relevance ----------------------------------------------------------------------

# A little under what search achieves (recall@10 0.973, MRR 0.956 on 188 queries):
# a change that loses relevance fails here, and `make bench-catalog --misses`
# lists the queries that miss.
RECALL_AT_10_FLOOR = 0.95
MRR_FLOOR = 0.93


@pytest.fixture(scope="module")
def index(catalogue, django_db_blocker) -> SearchIndex:
    with django_db_blocker.unblock():
        return SearchIndex.build()


@pytest.fixture(scope="module")
def slugs(catalogue, django_db_blocker) -> dict[int, str]:
    with django_db_blocker.unblock():
        return dict(Template.objects.values_list("pk", "slug"))


@pytest.fixture(scope="module")
def titles(catalogue, django_db_blocker) -> dict[str, str]:
    """Each template's titles in both languages, as one text."""
    with django_db_blocker.unblock():
        rows = Template.objects.values_list("slug", "title_ja", "title_en")
        return {slug: f"{ja} {en.lower()}" for slug, ja, en in rows}


@pytest.fixture(scope="module")
def find(index, slugs):
    def found(query: str) -> list[str]:
        return [slugs[entry.pk] for entry, _score in index.search(query, index.entries)]

    return found


def test_the_relevance_set_speaks_both_languages():
    judgements = load_relevance_set()
    english = [j for j in judgements if j.query.isascii()]
    assert len(judgements) >= 80
    assert len(english) >= 25
    assert len({j.query for j in judgements}) == len(judgements)


def test_recall_and_mrr_stay_above_their_floors(db_with_catalogue):
    relevance = measure_relevance(catalogue_ranking(), load_relevance_set())
    misses = "\n".join(f"{q}: missed {missed}, top {top}" for q, missed, top in relevance.misses)
    assert relevance.recall_at_10 >= RECALL_AT_10_FLOOR, misses
    assert relevance.mrr >= MRR_FLOOR, misses


@pytest.mark.parametrize("query", ["謝罪メール", "お詫びメール", "おわび メール", "apology email"])
def test_an_apology_email_finds_the_apologies_first(find, titles, query):
    for slug in find(query)[:3]:
        assert any(word in titles[slug] for word in ("お詫び", "謝罪", "apolog")), slug


def test_謝罪_finds_every_template_titled_お詫び(find, titles):
    titled = {slug for slug, title in titles.items() if "お詫び" in title}
    assert titled
    assert titled <= set(find("謝罪"))


@pytest.mark.parametrize(
    ("variant", "usual"),
    [
        ("問合せ", "問い合わせ"),  # okurigana
        ("お問合わせ", "問い合わせ"),
        ("ＬＰ", "LP"),  # full width
        ("ＳＷＯＴ", "SWOT"),
        ("ﾒｰﾙ", "メール"),  # half-width katakana
        ("ﾌﾟﾚｽﾘﾘｰｽ", "プレスリリース"),
        ("めーる", "メール"),  # hiragana for katakana
        ("あいさつ", "挨拶"),  # kana for kanji
        ("meetings", "meeting"),  # English stems
        ("summarize", "summarise"),  # American and British spelling
        ("ｓｗｏｔ", "swot"),
    ],
)
def test_a_variant_finds_what_the_usual_form_finds(find, variant, usual):
    expected = find(usual)[:10]
    assert expected
    assert find(variant)[:10] == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("打合せ", "thank-you-email-after-meeting"),  # 打ち合わせ
        ("ぎじろく", "minutes-from-meeting-notes"),  # unconverted kana
        ("ティックトック", "tiktok-script"),  # TikTok, read
        ("インスタ 投稿", "instagram-post-image"),  # abbreviation of Instagram
        ("アポ メール", "appointment-request-email"),  # アポイント
        ("バイト 募集", "hr-part-time-job-ad-store"),  # アルバイト
        ("ミーティング お礼", "thank-you-email-after-meeting"),  # 打ち合わせ, a synonym
        ("入金 催促", "unpaid-invoice-reminder-email"),  # 督促, a synonym
        ("sorry email", "apology-email-to-client"),  # apology
        ("landing page headline", "lp-first-view"),
        ("terms and conditions", "terms-of-service-draft"),
        ("one on one", "hr-one-on-one-agenda"),
        ("follow-up email", "sales-follow-up-email"),
        ("e-mail newsletter", "email-newsletter-edition"),
    ],
)
def test_synonyms_and_abbreviations_find_the_template(find, query, expected):
    assert expected in find(query)[:3]


def test_mail_finds_the_email_templates(find):
    assert set(find("email")[:10]) <= set(find("mail"))
    # Among Japanese words, mail is メール.
    assert find("mail 謝罪")[:5] == find("メール 謝罪")[:5]


def test_a_title_outranks_tags_and_tags_a_description(db_with_catalogue):
    word = "ズワイガニ"  # in no template of the catalogue
    in_description = TemplateFactory(slug="in-description", description_ja=f"{word}の紹介")
    in_tags = TemplateFactory(slug="in-tags", tags_ja=f"{word}, 紹介")
    in_title = TemplateFactory(slug="in-title", title_ja=f"{word}の紹介")
    index = search_index()
    found = [entry.pk for entry, _score in index.search(word, index.entries)]
    assert found == [in_title.pk, in_tags.pk, in_description.pk]


def test_a_very_long_description_is_searched_to_its_end(db_with_catalogue):
    long = TemplateFactory(description_ja="納期のご連絡です。" * 20_000 + "ズワイガニの紹介")
    index = search_index()
    assert [entry.pk for entry, _score in index.search("ズワイガニ", index.entries)] == [long.pk]


def test_a_word_not_finished_is_found_inside_longer_ones(find):
    assert "pr-new-product-launch-release" in find("プレスリリ")
    assert "email-newsletter-edition" in find("newslet")


ANY_CHARACTER = st.characters(exclude_categories=())  # lone surrogates too
SYMBOL_OR_SPACE = st.characters(categories=["P", "S", "Z"])
CONTROL = st.characters(categories=["Cc", "Cf", "Zl", "Zp"])
ODD_TEXT = (
    st.text(ANY_CHARACTER, max_size=300)
    | st.text(SYMBOL_OR_SPACE, max_size=300)
    | st.text(CONTROL, max_size=100)
    | st.text(st.sampled_from("謝罪おわびメールﾒｰﾙＬＰ　ー・、。"), min_size=200, max_size=3000)
)


@settings(max_examples=300, deadline=None)
@given(query=ODD_TEXT)
@example(query="")
@example(query="\x00\ud800\udfff\ufeff\u200b")
@example(query="a" * 100_000)
@example(query="謝" * 100_000)
@example(query="お " * 50_000)
@example(query="ー" * 10_000)
@example(query="🙇‍♂️🙏" * 1000)
def test_no_query_fails_or_takes_long(index, query):
    started = time.perf_counter()
    results = index.search(query, index.entries)
    assert time.perf_counter() - started < 0.25
    assert all(entry in index.entries for entry, _score in results)
