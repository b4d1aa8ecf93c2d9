"""What people are told, in words they use: generations left rather than
tokens, characters and time taken rather than tokens in and out, money in yen
rather than dollars; one word for each thing. Tokens and dollars stay on the
staff's pages and in a generation's folded technical details."""

from __future__ import annotations

import datetime
import importlib
import re
from html import unescape
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.urls import reverse

from generation.models import Generation
from studio.models import Plan
from tests.factories import (
    GenerationFactory,
    UsageRecordFactory,
    UserFactory,
    image_template,
    template_with_fields,
)

pytestmark = pytest.mark.django_db

Status = Generation.Status
JA = {"accept-language": "ja"}
USAGE = reverse("generation:usage")
# A dollar and a quarter: 193.75 yen at 155 yen to the dollar.
COST_MICROS = 1_250_000


def japanese(client, url: str, **params) -> str:
    response = client.get(url, params, headers=JA)
    assert response.status_code == 200, url
    return response.content.decode()


# Reading a page as a person does ------------------------------------------------

_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}
_READ_ALOUD = ("title", "aria-label", "placeholder", "alt")


class _ReadableText(HTMLParser):
    """The words a person reads or hears on a page (text, and the attributes
    read out), leaving out scripts and the folded technical details."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping:
            self._skipping += tag not in _VOID
            return
        names = dict(attrs)
        if tag in {"script", "style"} or (tag == "details" and "data-technical" in names):
            self._skipping = 1
            return
        self.parts += [value for name, value in attrs if name in _READ_ALOUD and value]

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and tag not in _VOID:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def readable(html: str) -> str:
    parser = _ReadableText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def technical(html: str) -> str:
    """The folded technical details of a generation's page, as text."""
    match = re.search(r"<details[^>]*data-technical.*?</details>", html, flags=re.DOTALL)
    assert match, "no technical details on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(0))).split())


def enforced_free_plan(settings) -> Plan:
    """The plan the migrations create ("Free": 100,000 output tokens a day),
    made again if a test that empties the database ran before on this worker."""
    settings.STUDIO_ENFORCE_PLANS = True
    settings.STUDIO_QUOTA_TOKEN_RESERVATION = 4096
    importlib.import_module("studio.migrations.0002_plans").create_free_plan(apps, None)
    return Plan.objects.get(name="Free")


def finished(user, *, seconds: float = 65, **kwargs) -> Generation:
    """A generation that ended `seconds` after it was asked for, with its usage."""
    kwargs.setdefault("status", Status.COMPLETED)
    kwargs.setdefault("output", "拝啓　本日はありがとうございました。")
    generation = GenerationFactory(user=user, input_tokens=482, output_tokens=383, **kwargs)
    started = generation.created_at
    Generation.objects.filter(pk=generation.pk).update(
        started_at=started + datetime.timedelta(seconds=0.2),
        first_token_at=started + datetime.timedelta(seconds=0.8),
        finished_at=started + datetime.timedelta(seconds=seconds),
        model="gpt-4.1-mini",
        provider="openai",
    )
    UsageRecordFactory(
        generation=generation,
        user=user,
        template=generation.template,
        kind=generation.kind,
        status=generation.status,
        input_tokens=482,
        output_tokens=383,
        output_characters=len(generation.output),
        estimated_cost_micros=COST_MICROS,
        model="gpt-4.1-mini",
    )
    generation.refresh_from_db()
    return generation


# The allowance under the form --------------------------------------------------


def allowance_line(html: str) -> str:
    start = html.index("data-allowance")
    return readable(html[html.rindex("<p", 0, start) : html.index("</p>", start) + 4])


def test_the_allowance_line_tells_generations_left_not_tokens(user_client, settings):
    enforced_free_plan(settings)
    template = template_with_fields()

    line = allowance_line(japanese(user_client, template.get_absolute_url()))

    # 100,000 tokens a day at 4,096 a generation (nothing used yet).
    assert line.startswith(
        "フリープラン：本日はあと約24回生成できます。同時に2件まで生成できます。"
    )
    assert "ご利用状況" in line
    assert "トークン" not in line
    assert "100,000" not in line


def test_generations_left_follow_the_persons_typical_answer(user_client, user, settings):
    enforced_free_plan(settings)
    template = template_with_fields()
    for _ in range(3):
        UsageRecordFactory(user=user, output_tokens=1000)

    line = allowance_line(japanese(user_client, template.get_absolute_url()))

    # 97,000 tokens left today at the 1,000 their answers use.
    assert "本日はあと約97回生成できます。" in line


def test_the_monthly_limit_speaks_of_the_month_when_it_leaves_less(user_client, user, settings):
    plan = enforced_free_plan(settings)
    plan.daily_output_tokens, plan.monthly_output_tokens = None, 10_000
    plan.save()
    template = template_with_fields()

    line = allowance_line(japanese(user_client, template.get_absolute_url()))
    assert "今月はあと約2回生成できます。" in line

    UsageRecordFactory(user=user, output_tokens=10_000)
    line = allowance_line(japanese(user_client, template.get_absolute_url()))
    assert "今月の上限に達しました。来月1日からまた生成できます。" in line


def test_the_allowance_in_english_counts_generations_too(user_client, settings):
    enforced_free_plan(settings)
    template = template_with_fields()

    page = user_client.get(template.get_absolute_url()).content.decode()

    assert "Free plan: About 24 more generations today." in allowance_line(page)


def test_a_plans_name_is_shown_as_typed_and_escaped_once(user_client, settings):
    plan = enforced_free_plan(settings)
    plan.name = "R&D <team>"
    plan.save()

    page = user_client.get(template_with_fields().get_absolute_url()).content.decode()

    assert "R&amp;D &lt;team&gt; plan: About 24 more generations today." in page


def test_a_refusal_at_the_limit_says_when_it_renews(user_client, user, settings):
    plan = enforced_free_plan(settings)
    plan.daily_output_tokens = 100
    plan.save()
    UsageRecordFactory(user=user, output_tokens=100)
    template = template_with_fields()

    response = user_client.post(
        reverse("generation:create", args=[template.slug]), {"recipient": "佐藤様"}, headers=JA
    )

    page = readable(response.content.decode())
    assert "ご利用のプランの本日の上限に達しました。0時からまた生成できます。" in page
    assert "トークン" not in page
    assert not Generation.objects.exists()


# The finished answer and the generation's page ----------------------------------


def test_the_finished_answer_shows_characters_and_time_not_tokens(user_client, user):
    generation = finished(user, output="あ" * 1234, seconds=65)

    page = japanese(user_client, generation.get_absolute_url())

    footer = readable(page[page.index('<footer class="output-actions">') :].split("</footer>")[0])
    assert "1,234文字 · 1分5秒" in footer
    assert "482" not in footer
    assert "383" not in footer
    assert "入力" not in footer


def test_the_generation_page_tells_time_and_length_and_folds_the_technical_details(
    user_client, user
):
    generation = finished(user, output="x" * 12, seconds=12.3)

    page = japanese(user_client, generation.get_absolute_url())

    details = readable(page[page.index('<dl class="timings">') :].split("</dl>")[0])
    assert "所要時間 12秒" in details
    assert "文字数 12文字" in details
    folded = technical(page)
    assert folded.startswith("技術情報")
    assert "gpt-4.1-mini (openai)" in folded
    assert "入力482・出力383" in folded  # tokens in and out
    assert "応答開始までの時間 0.80秒" in folded
    assert "$1.2500" not in folded  # a dollar or more has cents
    assert "$1.25" in folded
    assert re.search(r"<details class=\"technical\" data-technical>", page)  # folded


def test_an_image_generation_tells_images_and_time(user_client, user):
    generation = finished(
        user, template=image_template(), kind="image", output="", image_count=2, seconds=8
    )

    page = readable(japanese(user_client, generation.get_absolute_url()))

    assert "2枚 · 8秒" in page


# Money on the usage page -----------------------------------------------------------


def test_the_usage_page_shows_costs_in_yen_at_the_rate_set(user_client, user, settings):
    settings.STUDIO_CURRENCY = "JPY"
    settings.STUDIO_CURRENCY_PER_USD = 155
    finished(user)

    page = readable(japanese(user_client, USAGE))
    assert "約194円" in page  # 1.25 dollars
    assert "$" not in page

    settings.STUDIO_CURRENCY_PER_USD = 100
    page = readable(japanese(user_client, USAGE))
    assert "約125円" in page
    assert "約194円" not in page


def test_the_usage_page_counts_characters_and_generations_left(user_client, user, settings):
    enforced_free_plan(settings)
    finished(user, output="あ" * 1500)

    page = readable(japanese(user_client, USAGE))

    assert "現在のプランは「フリープラン」です。" in page
    assert "文字数 1,500文字" in page  # the period's total
    assert "本日の文章生成" in page
    assert "0%を使用済みです。あと約24回生成できます。" in page  # 383 of 100,000 today
    assert "日別の費用の目安（円）" in page  # the chart's title


def test_the_staff_usage_page_keeps_tokens_and_dollars(client, user):
    finished(user)
    client.force_login(UserFactory(is_staff=True))

    page = readable(japanese(client, reverse("generation:staff_usage")))

    assert "出力トークン数" in page
    assert "383" in page
    assert "$1.25" in page
    assert "円" not in page


# One word for each thing -----------------------------------------------------------


def test_the_status_word_matches_the_stop_button(user_client, user):
    generation = GenerationFactory(user=user, status=Status.QUEUED)
    running_page = japanese(user_client, generation.get_absolute_url())
    button = re.search(r'<button type="submit" class="button stop">(.*?)</button>', running_page)
    assert button.group(1) == "停止"

    user_client.post(reverse("generation:cancel", args=[generation.pk]))

    stopped_page = japanese(user_client, generation.get_absolute_url())
    badge = re.search(r'<span class="badge status">(.*?)</span>', stopped_page).group(1)
    assert badge == "停止済み"
    assert "停止しました" in stopped_page
    history = japanese(user_client, reverse("generation:history"))
    assert '<span class="badge status status-cancelled">停止済み</span>' in history
    assert '<option value="cancelled">停止済み</option>' in history
    assert "キャンセル済み" not in history + stopped_page
    english = user_client.get(generation.get_absolute_url()).content.decode()
    assert '<span class="badge status">Stopped</span>' in english


def test_the_menu_and_the_page_titles_use_the_same_words(user_client):
    for url, word in ((USAGE, "ご利用状況"), (reverse("generation:history"), "履歴")):
        page = japanese(user_client, url)
        menu = re.search(rf'<a class="nav-link" href="{url}" aria-current="page">(.*?)</a>', page)
        assert menu
        assert menu.group(1).endswith(word)
        assert f"<h1>{word}</h1>" in page
        assert f"<title>{word} · " in page


# No tokens and no dollars for people ------------------------------------------------


@pytest.fixture
def a_persons_pages(user, settings):
    """Every page a person (not staff) sees, with something on each."""
    enforced_free_plan(settings)
    text = finished(user, output="# 件名\n\n拝啓　ありがとうございました。")
    stopped = finished(user, status=Status.CANCELLED)
    image = finished(
        user, template=image_template(), kind="image", output="", image_count=1, seconds=9
    )
    queued = GenerationFactory(user=user, status=Status.QUEUED)
    return [
        reverse("catalog:home"),
        reverse("catalog:list"),
        text.template.get_absolute_url(),
        image.template.get_absolute_url(),
        text.template.get_absolute_url() + "?sample=1",
        text.get_absolute_url(),
        stopped.get_absolute_url(),
        image.get_absolute_url(),
        queued.get_absolute_url(),
        reverse("generation:rerun", args=[text.pk]),
        reverse("generation:delete", args=[text.pk]),
        reverse("generation:history"),
        reverse("generation:history") + "?status=cancelled",
        *(f"{USAGE}?days={days}" for days in (7, 30, 90)),
        reverse("api_tokens"),
    ]


def test_no_page_a_person_sees_speaks_of_tokens_or_dollars(user_client, a_persons_pages):
    for url in a_persons_pages:
        page = readable(japanese(user_client, url))
        assert "トークン" not in page, url
        assert "$" not in page, url
        assert "USD" not in page, url
        english = readable(user_client.get(url).content.decode())
        assert "$" not in english, url
        assert not re.search(r"\b(input|output) tokens?\b", english, flags=re.IGNORECASE), url


def test_the_technical_details_are_the_only_place_with_tokens(user_client, user):
    generation = finished(user)

    page = japanese(user_client, generation.get_absolute_url())

    assert "トークン" in technical(page)
    assert "トークン" not in readable(page)
