"""Plain-text answers (emails, letters, messages): the model is asked for no
Markdown, and the page shows the answer as written, line breaks kept, while it
streams and once it is finished; Copy gives exactly that text."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from generation.events.log import Event, EventName
from generation.models import Generation
from generation.reading.streams import PageStream
from generation.services import generation_continue, generation_create
from generation.text.runner import runner
from studio.services import api_token_create
from templates_catalog.models import Template
from tests.factories import GenerationFactory, UserFactory, template_with_fields
from tests.fakes import GatedProvider
from tests.generation.test_sse import Answer, ended, parse, read_until
from tests.support.waiting import wait_for, wait_for_runs

pytestmark = pytest.mark.django_db(transaction=True)

PLAIN = Template.AnswerFormat.PLAIN
NO_MARKDOWN_EN = "Write plain text ready to paste: no Markdown (no ** or #, no tables)."
NO_MARKDOWN_JA = (
    "Markdown記法（**や#、表）は使わず、そのまま貼り付けられるプレーンテキストで書いてください。"
)
# What a model may still send for an email: Markdown marks, HTML, and CR LF
# line ends split across deltas.
EMAIL = [
    "Subject: Thank you\r",
    "\n\r\nDear Ms Sato,\n\n",
    "## Not a heading **nor bold**\n",
    "<b>Not bold either</b> & more\n",
    "| not | a table |\n\nKind regards,\nKen",
]
EMAIL_TEXT = "".join(EMAIL)
FINISHED_PLAIN = re.compile(r'<div class="plain-text answer">(.*?)</div>', re.S)


def plain_template(**kwargs) -> Template:
    return template_with_fields(answer_format=PLAIN, **kwargs)


@pytest.fixture
def gated_email(monkeypatch):
    """Generations started here write EMAIL, holding after its second delta."""
    provider = GatedProvider(EMAIL, hold_after=2)
    monkeypatch.setattr(runner, "provider", provider)
    yield provider
    provider.release.set()
    wait_for_runs()


def test_a_plain_templates_prompt_ends_with_the_no_markdown_line_in_its_language(user):
    template = plain_template()
    english = generation_create(
        user=user, template=template, inputs={"recipient": "Ms Sato"}, language="en"
    )
    japanese = generation_create(
        user=user, template=template, inputs={"recipient": "佐藤"}, language="ja"
    )
    markdown = generation_create(
        user=user, template=template_with_fields(), inputs={"recipient": "Ms Sato"}, language="en"
    )
    assert english.prompt == f"Write a thank-you email to Ms Sato.\n\n{NO_MARKDOWN_EN}"
    assert japanese.prompt.endswith(f"\n\n{NO_MARKDOWN_JA}")
    assert "Markdown" not in markdown.prompt
    assert (english.answer_format, japanese.answer_format) == (PLAIN, PLAIN)
    assert markdown.answer_format == Template.AnswerFormat.MARKDOWN
    for generation in (english, japanese, markdown):
        runner.wait(generation.pk, timeout=30)


def test_a_body_missing_in_english_falls_back_to_japanese_with_the_japanese_line(user):
    template = plain_template()
    template.prompt_body_en = ""
    template.save()
    generation = generation_create(
        user=user, template=template, inputs={"recipient": "佐藤"}, language="en"
    )
    assert generation.prompt == f"佐藤様へのお礼メールを書いてください。\n\n{NO_MARKDOWN_JA}"
    runner.wait(generation.pk, timeout=30)


def test_an_answer_stays_plain_and_its_continuation_too_after_the_template_changes(user):
    template = plain_template()
    first = generation_create(user=user, template=template, inputs={"recipient": "Ms Sato"})
    runner.wait(first.pk, timeout=30)
    Template.objects.filter(pk=template.pk).update(answer_format=Template.AnswerFormat.MARKDOWN)
    Generation.objects.filter(pk=first.pk).update(finish_reason="length")
    first.refresh_from_db()
    continued = generation_continue(generation=first)
    runner.wait(continued.pk, timeout=30)
    assert continued.answer_format == PLAIN
    assert continued.prompt.endswith(NO_MARKDOWN_EN)  # the prompt it was asked with


def test_the_finished_answer_is_shown_as_written_and_copy_gives_exactly_that(user_client, user):
    generation = GenerationFactory(
        user=user,
        template=plain_template(),
        answer_format=PLAIN,
        status=Generation.Status.COMPLETED,
        output=EMAIL_TEXT,
    )
    page = user_client.get(generation.get_absolute_url()).content.decode()
    shown = FINISHED_PLAIN.search(page)[1]
    assert shown == (
        "Subject: Thank you\n\nDear Ms Sato,\n\n## Not a heading **nor bold**\n"
        "&lt;b&gt;Not bold either&lt;/b&gt; &amp; more\n| not | a table |\n\nKind regards,\nKen"
    )
    # Copy takes the hidden text area: the answer exactly as the model wrote it.
    raw = re.search(rf'<textarea id="raw-{generation.pk}"[^>]*>(.*?)</textarea>', page, re.S)[1]
    assert html.unescape(raw) == EMAIL_TEXT
    assert f'data-copy-from="raw-{generation.pk}"' in page


def test_a_markdown_answer_is_still_formatted(user_client, user):
    generation = GenerationFactory(
        user=user, status=Generation.Status.COMPLETED, output="## Plan\n\nWe **will**"
    )
    page = user_client.get(generation.get_absolute_url()).content.decode()
    assert '<div class="markdown answer"><h2>Plan</h2>\n<p>We <strong>will</strong></p>' in page
    assert "plain-text" not in page


def test_a_plain_answer_streams_as_text_with_its_lines_and_ends_as_it_was_shown(
    user_client, gated_email
):
    template = plain_template()
    response = user_client.post(
        reverse("generation:create", args=[template.slug]),
        {"recipient": "Ms Sato"},
        headers={"HX-Request": "true"},
    )
    generation = Generation.objects.get()
    wait_for(lambda: Generation.objects.get().output == "".join(EMAIL[:2]))
    # The page (a refresh, after Generate) shows the text so far, as text.
    page = user_client.get(response["HX-Push-Url"]).content.decode()
    assert '<div class="stream-text plain-text" aria-busy="true" data-stream-text>' in page
    tail = re.search(
        r'class="stream-tail" sse-swap="delta" hx-swap="innerHTML">(.*?)</div>', page, re.S
    )
    assert tail[1] == "Subject: Thank you\n\nDear Ms Sato,\n\n"
    gated_email.release.set()
    runner.wait(generation.pk, timeout=30)
    page = user_client.get(response["HX-Push-Url"]).content.decode()
    assert FINISHED_PLAIN.search(page)[1].startswith("Subject: Thank you\n\nDear Ms Sato,")


async def test_the_plain_stream_sends_escaped_text_and_done_swaps_in_the_same_text(
    async_client, gated_email
):
    user = await sync_to_async(UserFactory)()
    template = await sync_to_async(plain_template)()
    generation = await sync_to_async(generation_create)(
        user=user, template=template, inputs={"recipient": "Ms Sato"}
    )
    await async_client.aforce_login(user)
    response = await async_client.get(reverse("generation:stream", args=[generation.pk]))
    stream, answer = aiter(response.streaming_content), Answer()
    await read_until(stream, answer, lambda _events: "Dear Ms Sato" in answer.html)
    assert answer.html == "Subject: Thank you\n\nDear Ms Sato,\n\n"
    gated_email.release.set()
    events = await read_until(stream, answer, ended)
    assert "<h2>" not in answer.html
    assert "<strong>" not in answer.html
    assert "&lt;b&gt;Not bold either&lt;/b&gt; &amp; more" in answer.html
    assert answer.tail == ""  # nothing is rendered again: every delta is final
    assert FINISHED_PLAIN.search(events[-1][2])[1] == answer.html


async def test_a_cr_lf_split_between_deltas_is_one_line_break_and_a_reconnect_shows_it_once():
    answer, last_id = Answer(), 0

    async def arrive(encode: PageStream, *texts: str) -> None:
        nonlocal last_id
        events = []
        for text in texts:
            last_id += len(text)
            events.append(Event(last_id, EventName.DELTA, {"text": text}))
        for _id, _name, data in parse((await encode(events)).decode()):
            answer.apply(data)

    first = PageStream(uuid.uuid4(), None, plain=True)
    await arrive(first, "Dear Ms Sato,\r")
    await arrive(first, "\n\nThank you")
    await arrive(first, " for the visit.\rBest,")
    assert answer.html == "Dear Ms Sato,\n\nThank you for the visit.\nBest,"
    # A new connection reads from the start: its first delta replaces everything.
    second, last_id = PageStream(uuid.uuid4(), None, plain=True), 0
    await arrive(second, "Dear Ms Sato,\r\n\nThank you for the visit.\rBest,")
    assert answer.replaced == 2
    assert answer.html == "Dear Ms Sato,\n\nThank you for the visit.\nBest,"


def test_the_api_says_which_format_a_template_and_its_output_are_in(user):
    template = plain_template(slug="thanks")
    generation = GenerationFactory(
        user=user,
        template=template,
        answer_format=PLAIN,
        status=Generation.Status.COMPLETED,
        output="Dear Ms Sato,\nThank you.",
    )
    _token, secret = api_token_create(user=user, name="Tests")
    api = Client(headers={"Authorization": f"Bearer {secret}"})
    body = api.get(reverse("api:generation_detail", args=[generation.pk])).json()
    assert (body["answer_format"], body["output"]) == ("plain", "Dear Ms Sato,\nThank you.")
    [listed] = api.get(reverse("api:template_list")).json()["results"]
    assert listed["answer_format"] == "plain"
