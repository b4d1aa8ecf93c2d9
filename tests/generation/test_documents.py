"""An answer taken elsewhere: a Word document that opens with its headings,
lists, tables and bold; Markdown as written; plain text without the markup; a
plain-text answer (an email) line for line. Only one's own finished text
answers, from the page and from the API; anything else is a clear refusal."""

from __future__ import annotations

import io

import docx
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.models import Generation
from generation.reports.documents import _xml_safe, answer_document, markdown_as_text
from studio.services import api_token_create
from templates_catalog.models import Template
from tests.factories import GenerationFactory, UserFactory

pytestmark = pytest.mark.django_db

ANSWER = """## 稟議書

本件は**至急**のご承認をお願いいたします。

- 目的：生産の安定
- 費用：3,850,000円
  - 本体と工事を含む

1. 見積を取得
2. 比較検討

| 項目 | 金額 |
| --- | --- |
| 本体 | 3,500,000円 |
| 工事 | 350,000円 |
"""

EMAIL = "件名：お打ち合わせのお礼\n\n株式会社みらい商事\n佐藤様\n\n**本日**はありがとうございました。\n# 以上\n"


def finished(**overrides) -> Generation:
    values = {
        "status": Generation.Status.COMPLETED,
        "output": ANSWER,
        "template_title": "社内稟議書・決裁申請書",
        "language": "ja",
    }
    return GenerationFactory(**(values | overrides))


def opened(content: bytes) -> docx.document.Document:
    return docx.Document(io.BytesIO(content))


def test_the_word_document_keeps_headings_lists_tables_and_bold():
    document = opened(answer_document(finished(), "docx").content)
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs]
    assert ("Heading 2", "稟議書") in paragraphs
    assert ("List Bullet", "目的：生産の安定") in paragraphs
    assert ("List Bullet 2", "本体と工事を含む") in paragraphs
    assert [text for style, text in paragraphs if style == "List Number"] == [
        "見積を取得",
        "比較検討",
    ]
    bold = [r.text for p in document.paragraphs for r in p.runs if r.bold]
    assert bold == ["至急"]
    assert "**" not in "".join(text for _, text in paragraphs)
    rows = [[cell.text for cell in row.cells] for row in document.tables[0].rows]
    assert rows == [["項目", "金額"], ["本体", "3,500,000円"], ["工事", "350,000円"]]
    assert document.core_properties.title == "社内稟議書・決裁申請書"


def test_a_plain_text_answer_is_its_lines_in_every_format():
    generation = finished(output=EMAIL, answer_format=Template.AnswerFormat.PLAIN)
    lines = [p.text for p in opened(answer_document(generation, "docx").content).paragraphs]
    assert lines == EMAIL.split("\n")  # no Markdown read into it: ** and # stay as written
    assert answer_document(generation, "txt").content.decode() == EMAIL
    assert answer_document(generation, "md").content.decode() == EMAIL


def test_markdown_and_text_downloads():
    generation = finished()
    assert answer_document(generation, "md").content.decode() == ANSWER
    text = answer_document(generation, "txt").content.decode()
    assert not [mark for mark in ("**", "##", "|") if mark in text]
    assert "・目的：生産の安定" in text
    assert "  ・本体と工事を含む" in text
    assert "1. 見積を取得\n2. 比較検討" in text
    assert "本体\t3,500,000円" in text
    english = markdown_as_text("- one\n- two\n", language="en")
    assert english == "• one\n• two\n"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_answer_makes_a_document_that_opens(text):
    for plain in (False, True):
        generation = Generation(
            output=text,
            template_title="件名",
            language="ja",
            status=Generation.Status.COMPLETED,
            answer_format=Template.AnswerFormat.PLAIN if plain else Template.AnswerFormat.MARKDOWN,
            kind=Template.Kind.TEXT,
        )
        generation.created_at = timezone.now()
        document = opened(answer_document(generation, "docx").content)
        if plain:
            kept = _xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")
            assert "\n".join(p.text for p in document.paragraphs) == kept


# --- From the page ---------------------------------------------------------------


def download_url(generation, format_name: str) -> str:
    return reverse("generation:download", args=[generation.pk, format_name])


@pytest.mark.parametrize(
    ("format_name", "content_type"),
    [
        ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("md", "text/markdown; charset=utf-8"),
        ("txt", "text/plain; charset=utf-8"),
    ],
)
def test_the_page_offers_each_download(user_client, user, format_name, content_type):
    generation = finished(user=user)
    page = user_client.get(generation.get_absolute_url()).content.decode()
    assert download_url(generation, format_name) in page
    response = user_client.get(download_url(generation, format_name))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    day = generation.created_at.astimezone().date().isoformat()
    assert "attachment" in response["Content-Disposition"]
    assert f"_{day}.{format_name}" in response["Content-Disposition"]
    assert "%E7%A8%9F%E8%AD%B0%E6%9B%B8" in response["Content-Disposition"]  # 稟議書, encoded


def test_someone_elses_answer_or_an_unknown_format_is_not_found(user_client, user):
    assert user_client.get(download_url(finished(), "docx")).status_code == 404
    assert user_client.get(download_url(finished(user=user), "pdf")).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"status": Generation.Status.RUNNING}, "still being written"),
        ({"output": ""}, "no text to download"),
        ({"kind": Template.Kind.IMAGE, "output": ""}, "from the gallery"),
    ],
)
def test_what_cannot_be_downloaded_says_why(user_client, user, overrides, message):
    generation = finished(user=user, **overrides)
    response = user_client.get(download_url(generation, "docx"), follow=True)
    assert response.redirect_chain[-1][0] == generation.get_absolute_url()
    assert message in response.content.decode()


def test_an_unfinished_answer_offers_no_download(user_client, user):
    generation = finished(user=user, status=Generation.Status.RUNNING)
    page = user_client.get(generation.get_absolute_url()).content.decode()
    assert download_url(generation, "docx") not in page


# --- From the API ----------------------------------------------------------------------


@pytest.fixture
def api(user) -> Client:
    _token, secret = api_token_create(user=user, name="Tests")
    return Client(headers={"Authorization": f"Bearer {secret}"})


def export_url(generation) -> str:
    return f"/api/v1/generations/{generation.pk}/export"


def test_the_api_exports_each_format(api, user):
    generation = finished(user=user)
    response = api.get(export_url(generation), {"format": "docx"})
    assert response.status_code == 200
    assert opened(response.content).paragraphs[0].text == "稟議書"
    assert api.get(export_url(generation), {"format": "md"}).content.decode() == ANSWER


@pytest.mark.parametrize(
    ("overrides", "params", "status", "message"),
    [
        ({}, {}, 400, "format=docx, md or txt"),
        ({}, {"format": "pdf"}, 400, "format=docx, md or txt"),
        ({"status": Generation.Status.QUEUED}, {"format": "docx"}, 409, "still being written"),
        ({"output": ""}, {"format": "txt"}, 409, "no text to download"),
        ({"kind": Template.Kind.IMAGE}, {"format": "docx"}, 400, "from the gallery"),
    ],
)
def test_the_api_refuses_clearly(api, user, overrides, params, status, message):
    response = api.get(export_url(finished(user=user, **overrides)), params)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_the_api_does_not_export_someone_elses_answer(api):
    other = finished(user=UserFactory())
    assert api.get(export_url(other), {"format": "docx"}).status_code == 404
