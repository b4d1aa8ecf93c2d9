"""Search that understands Japanese, measured on the shipped catalogue: the
relevance set keeps its recall@10 and MRR; synonyms, written variants and
abbreviations find what the usual word finds; titles outrank tags, tags
descriptions; and no query, however odd, fails or takes long."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from templates_catalog.models import Template
from templates_catalog.search import SearchIndex, search_index
from tests.factories import TemplateFactory
from tests.support.relevance import catalogue_ranking, load_relevance_set, measure_relevance

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
