"""History people can use: search (Japanese and English), filters, pagination that
keeps them, re-running with the same inputs, exports and deleting."""

from __future__ import annotations

import csv
import datetime
import io
import json
import uuid
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from generation.models import Generation
from generation.reports import exports
from tests.factories import (
    GenerationFactory,
    TemplateFactory,
    UserFactory,
    image_template,
    template_with_fields,
)

pytestmark = pytest.mark.django_db

Status = Generation.Status
TOKYO = ZoneInfo("Asia/Tokyo")
HISTORY = reverse("generation:history")
EXPORT = reverse("generation:export")
DELETE_SELECTED = reverse("generation:delete_selected")


def made(user, *, at: datetime.datetime | None = None, **kwargs) -> Generation:
    """A finished generation of `user`, created at `at` (aware) if given."""
    kwargs.setdefault("status", Status.COMPLETED)
    generation = GenerationFactory(user=user, **kwargs)
    if at is not None:
        Generation.objects.filter(pk=generation.pk).update(created_at=at)
        generation.refresh_from_db()
    return generation


def listed(client, **params) -> str:
    response = client.get(HISTORY, params)
    assert response.status_code == 200
    return response.content.decode()


def streamed(response) -> str:
    """The body of a streamed (async) download, read to the end."""
    assert response.streaming

    async def collect() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(collect)().decode("utf-8")


# Search ----------------------------------------------------------------------


def test_search_finds_a_japanese_word_inside_the_output(user_client, user):
    hit = made(user, output="佐藤様、先日はお打ち合わせのお時間をいただきありがとうございました。")
    miss = made(user, output="山田様、ご無沙汰しております。")
    page = listed(user_client, q="打ち合わせ")
    assert hit.get_absolute_url() in page
    assert miss.get_absolute_url() not in page


def test_search_finds_a_japanese_word_inside_the_inputs(user_client, user):
    hit = made(user, inputs={"recipient": "株式会社さくら商事 営業部"}, output="…")
    miss = made(user, inputs={"recipient": "Ms Sato"}, output="…")
    page = listed(user_client, q="さくら商事")
    assert hit.get_absolute_url() in page
    assert miss.get_absolute_url() not in page


def test_search_finds_english_words_in_the_output_and_the_inputs(user_client, user):
    in_output = made(user, output="Thank you for the quarterly review meeting.")
    in_inputs = made(user, inputs={"recipient": "Quarterly planning team"}, output="Dear team")
    miss = made(user, output="Happy birthday!")
    page = listed(user_client, q="quarterly")
    assert in_output.get_absolute_url() in page
    assert in_inputs.get_absolute_url() in page
    assert miss.get_absolute_url() not in page


def test_searching_a_field_name_does_not_match_every_generation(user_client, user):
    hit = made(user, inputs={"recipient": "the recipient list"}, output="…")
    miss = made(user, inputs={"recipient": "Ms Sato"}, output="…")
    page = listed(user_client, q="recipient")
    assert hit.get_absolute_url() in page
    assert miss.get_absolute_url() not in page


def test_search_looks_inside_multi_select_values_in_the_inputs(user_client, user):
    hit = made(user, inputs={"channels": ["Instagram", "ＬＩＮＥ公式"], "count": 3}, output="…")
    page = listed(user_client, q="ＬＩＮＥ公式")
    assert hit.get_absolute_url() in page


def test_search_matches_the_template_title(user_client, user):
    hit = made(user, template_title="SWOT analysis", output="Strengths…")
    miss = made(user, template_title="Apology email", output="We are sorry…")
    page = listed(user_client, q="SWOT")
    assert hit.get_absolute_url() in page
    assert miss.get_absolute_url() not in page


def test_search_needs_every_word_and_leaves_out_minus_words(user_client, user):
    both = made(user, output="Invoice reminder for the Tokyo office")
    one = made(user, output="Invoice reminder for the Osaka office")
    assert one.get_absolute_url() not in listed(user_client, q="invoice tokyo")
    assert both.get_absolute_url() in listed(user_client, q="invoice tokyo")
    page = listed(user_client, q="invoice -osaka")
    assert both.get_absolute_url() in page
    assert one.get_absolute_url() not in page


def test_search_mixes_japanese_and_english_words(user_client, user):
    hit = made(user, output="新商品 launch のお知らせ")
    miss = made(user, output="新商品のお知らせ")
    page = listed(user_client, q="新商品 launch")
    assert hit.get_absolute_url() in page
    assert miss.get_absolute_url() not in page


def test_search_results_are_newest_first_and_only_mine(user_client, user):
    now = datetime.datetime.now(tz=TOKYO)
    older = made(user, output="お見積りの件 older", at=now - datetime.timedelta(days=2))
    newer = made(user, output="お見積りの件 newer", at=now - datetime.timedelta(days=1))
    others = made(UserFactory(), output="お見積りの件 someone else's")
    page = listed(user_client, q="お見積り")
    assert page.index(newer.get_absolute_url()) < page.index(older.get_absolute_url())
    assert others.get_absolute_url() not in page


@pytest.mark.parametrize(
    "query", ["x" * 5000, '"', "-", "OR", "a OR", "& | ! :*", "'; DROP TABLE", "％＆", "\\u4f50"]
)
def test_odd_or_overlong_searches_do_not_fail(user_client, user, query):
    made(user, output="anything")
    assert user_client.get(HISTORY, {"q": query}).status_code == 200


def test_the_search_is_cut_at_100_characters(user, user_client):
    hit = made(user, output="a" * 100)
    # The 101st character would not match; it is not searched for.
    assert hit.get_absolute_url() in listed(user_client, q="a" * 100 + "zzz")


# Filters ---------------------------------------------------------------------


def test_filter_by_template_lists_only_the_templates_i_used(user_client, user):
    mine, other = TemplateFactory(title_en="Mine"), TemplateFactory(title_en="Not used")
    hit = made(user, template=mine)
    miss = made(user)
    page = listed(user_client, template=mine.pk)
    assert hit.get_absolute_url() in page
    assert miss.get_absolute_url() not in page
    assert f'<option value="{mine.pk}" selected>' in page
    assert f'<option value="{other.pk}"' not in page


def test_filter_by_kind_and_status(user_client, user):
    image = made(user, kind="image", template=image_template())
    failed = made(user, status=Status.FAILED)
    completed = made(user)
    page = listed(user_client, kind="image")
    assert image.get_absolute_url() in page
    assert completed.get_absolute_url() not in page
    page = listed(user_client, status="failed")
    assert failed.get_absolute_url() in page
    assert completed.get_absolute_url() not in page
    assert '<option value="failed" selected>' in page


def test_filter_by_dates_takes_whole_days_in_the_site_time_zone(user_client, user):
    day = datetime.datetime(2026, 3, 10, tzinfo=TOKYO)
    before = made(user, at=day - datetime.timedelta(minutes=1))
    first_minute = made(user, at=day)
    last_minute = made(user, at=day + datetime.timedelta(days=1, minutes=-1))
    after = made(user, at=day + datetime.timedelta(days=1))
    page = listed(user_client, date_from="2026-03-10", date_to="2026-03-10")
    assert first_minute.get_absolute_url() in page
    assert last_minute.get_absolute_url() in page
    assert before.get_absolute_url() not in page
    assert after.get_absolute_url() not in page
    assert 'value="2026-03-10"' in page
    assert first_minute.get_absolute_url() in listed(user_client, date_from="2026/03/10")


def test_search_and_filters_combine(user_client, user):
    template = TemplateFactory(title_ja="議事録", title_en="Minutes")
    hit = made(user, template=template, output="感謝 thanks", status=Status.COMPLETED)
    wrong_status = made(user, template=template, output="感謝 thanks", status=Status.CANCELLED)
    wrong_template = made(user, output="感謝 thanks")
    wrong_words = made(user, template=template, output="お詫び")
    page = listed(user_client, q="感謝", template=template.pk, status="completed", kind="text")
    assert hit.get_absolute_url() in page
    for miss in (wrong_status, wrong_template, wrong_words):
        assert miss.get_absolute_url() not in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "exploded"}, "Select a valid choice"),
        ({"kind": "video"}, "Select a valid choice"),
        ({"template": "abc"}, "Select a valid choice"),
        ({"template": "99999999"}, "Select a valid choice"),
        ({"date_from": "2026-13-45"}, "Enter a valid date"),
        ({"date_to": "yesterday"}, "Enter a valid date"),
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "before the start date"),
        ({"page": "many"}, None),
        ({"date_from": "0001-01-01", "date_to": "9999-12-31"}, None),
    ],
)
def test_bad_filter_values_are_left_out_with_a_message_never_a_500(
    user_client, user, params, message
):
    hit = made(user, output="kept")
    page = listed(user_client, **params)
    assert hit.get_absolute_url() in page  # the bad filter did not apply
    if message:
        assert message in page
        assert "This filter was left out." in page


def test_a_bad_filter_does_not_stop_the_good_ones(user_client, user):
    failed = made(user, status=Status.FAILED)
    completed = made(user)
    page = listed(user_client, status="failed", date_from="not-a-date")
    assert failed.get_absolute_url() in page
    assert completed.get_absolute_url() not in page
    assert "Enter a valid date" in page


def test_pagination_keeps_the_search_and_filters(user_client, user):
    now = datetime.datetime.now(tz=TOKYO)
    matching = [
        made(
            user, output=f"議事録 {n}", status=Status.FAILED, at=now - datetime.timedelta(minutes=n)
        )
        for n in range(25)
    ]
    made(user, output="議事録 completed")
    first = listed(user_client, q="議事録", status="failed")
    assert "Page 1 of 2" in first
    assert 'href="?q=%E8%AD%B0%E4%BA%8B%E9%8C%B2&amp;status=failed&amp;page=2"' in first
    second = listed(user_client, q="議事録", status="failed", page=2)
    assert "Page 2 of 2" in second
    for generation in matching[20:]:
        assert generation.get_absolute_url() in second
    assert second.count('name="ids"') == 5


def test_filtering_with_htmx_returns_only_the_history_region(user_client, user):
    made(user, output="hello")
    response = user_client.get(
        HISTORY, {"q": "hello"}, headers={"HX-Request": "true", "HX-Target": "history"}
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="history"')
    assert "<html" not in page


def test_history_query_count_stays_bounded_with_search_and_filters(
    user_client, user, django_assert_max_num_queries
):
    template = TemplateFactory()
    for n in range(25):
        made(user, template=template, output=f"報告書 {n}")
    with django_assert_max_num_queries(7):
        listed(user_client, q="報告書", template=template.pk, status="completed")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", HISTORY),
        ("get", EXPORT + "?format=csv"),
        ("post", EXPORT),
        ("post", DELETE_SELECTED),
    ],
)
def test_anonymous_people_are_sent_to_log_in(client, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# Re-run ----------------------------------------------------------------------


def rerun_url(generation_id) -> str:
    return reverse("generation:rerun", args=[generation_id])


def test_history_rows_and_the_generation_page_link_to_a_rerun(user_client, user):
    template = template_with_fields()
    generation = made(user, template=template)
    assert rerun_url(generation.pk) in listed(user_client)
    assert (
        rerun_url(generation.pk) in user_client.get(generation.get_absolute_url()).content.decode()
    )


def test_rerun_fills_the_form_with_my_generations_inputs(user_client, user):
    template = template_with_fields()
    generation = made(
        user, template=template, inputs={"recipient": "佐藤様", "note": "先日の会食\nありがとう"}
    )
    response = user_client.get(rerun_url(generation.pk))
    page = response.content.decode()
    assert 'value="佐藤様"' in page
    assert "先日の会食\nありがとう</textarea>" in page
    assert "Filled in with the inputs of your generation" in page
    assert "errorlist" not in page
    assert f'action="{reverse("generation:create", args=[template.slug])}"' in page


def test_an_old_rerun_link_on_the_template_page_still_works(user_client, user):
    template = template_with_fields()
    generation = made(user, template=template, inputs={"recipient": "佐藤様"})
    response = user_client.get(template.get_absolute_url(), {"from": str(generation.pk)})
    assert response.status_code == 302
    assert response["Location"] == rerun_url(generation.pk)
    malformed = user_client.get(template.get_absolute_url(), {"from": "not-a-uuid'><script>"})
    assert malformed.status_code == 200
    assert "Filled in with the inputs" not in malformed.content.decode()


@pytest.mark.parametrize("source", ["someone else's", "unknown", "deleted template's"])
def test_rerun_of_anything_but_my_own_generation_is_not_found(user_client, user, source):
    template = template_with_fields()
    if source == "someone else's":
        generation_id = made(UserFactory(), template=template).pk
    elif source == "unknown":
        generation_id = uuid.uuid4()
    else:
        generation_id = made(user, template=template).pk
        template.delete()
    response = user_client.get(rerun_url(generation_id))
    assert response.status_code == 404
    assert "Ms Sato" not in response.content.decode()


def test_rerun_for_someone_not_logged_in_asks_them_to_log_in(client, user):
    generation = made(user, template=template_with_fields())
    response = client.get(rerun_url(generation.pk))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# Exports ---------------------------------------------------------------------

TRICKY_OUTPUT = (
    '件名：お礼\n\n佐藤様、"本日は" ありがとうございました, 今後とも\r\nよろしくお願いいたします。'
)


@pytest.mark.django_db(transaction=True)
def test_csv_export_round_trips_japanese_commas_quotes_and_newlines(user_client, user):
    generation = made(
        user,
        inputs={"recipient": "佐藤, 花子", "note": "改行\nあり"},
        output=TRICKY_OUTPUT,
        input_tokens=12,
        output_tokens=34,
        finish_reason="stop",
    )
    response = user_client.get(EXPORT, {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="ai-studio-history-')
    assert response["Content-Disposition"].endswith('.csv"')
    body = streamed(response)
    assert body.startswith("\ufeff")  # the BOM, for Excel
    rows = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"), newline="")))
    assert list(rows[0]) == list(exports.EXPORT_COLUMNS)
    (row,) = rows
    assert row["id"] == str(generation.pk)
    assert row["output"] == TRICKY_OUTPUT
    assert json.loads(row["inputs"]) == {"recipient": "佐藤, 花子", "note": "改行\nあり"}
    assert (row["input_tokens"], row["output_tokens"], row["image_count"]) == ("12", "34", "0")
    assert row["finish_reason"] == "stop"
    assert row["status"] == "completed"
    assert row["kind"] == "text"
    assert row["template"] == "Thank-you email"
    assert datetime.datetime.fromisoformat(row["created_at"]) == generation.created_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_csv_cells_that_would_be_formulas_are_defused(user_client, user, start):
    made(user, output=f'{start}HYPERLINK("http://evil.example","x")', template_title=f"{start}1+1")
    body = streamed(user_client.get(EXPORT, {"format": "csv"}))
    (row,) = csv.DictReader(io.StringIO(body.removeprefix("\ufeff"), newline=""))
    assert row["output"] == f'\'{start}HYPERLINK("http://evil.example","x")'
    assert row["template"] == f"'{start}1+1"


@pytest.mark.django_db(transaction=True)
def test_json_export_is_a_list_of_generations(user_client, user):
    older = made(user, output=TRICKY_OUTPUT, inputs={"recipient": "佐藤"})
    newer = made(user, kind="image", image_count=2, output="")
    response = user_client.get(EXPORT, {"format": "json"})
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].endswith('.json"')
    data = json.loads(streamed(response))
    assert [item["id"] for item in data] == [str(newer.pk), str(older.pk)]
    assert set(data[0]) == set(exports.EXPORT_COLUMNS)
    assert data[1]["output"] == TRICKY_OUTPUT
    assert data[1]["inputs"] == {"recipient": "佐藤"}
    assert data[0]["image_count"] == 2


@pytest.mark.django_db(transaction=True)
def test_json_export_of_nothing_is_an_empty_list(user_client, user):
    assert json.loads(streamed(user_client.get(EXPORT, {"format": "json"}))) == []


@pytest.mark.django_db(transaction=True)
def test_markdown_export_has_a_section_per_generation_with_inputs_and_output(user_client, user):
    template = template_with_fields()
    first = made(
        user, template=template, inputs={"recipient": "佐藤様", "note": ""}, output="# 一通目"
    )
    second = made(user, template=None, inputs={"topic": "SWOT"}, output="Strengths: **many**")
    response = user_client.get(EXPORT, {"format": "md"})
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].endswith('.md"')
    body = streamed(response)
    assert body.count("\n## ") == 2
    assert "# 一通目" in body
    assert "Strengths: **many**" in body
    assert "- **Recipient**: 佐藤様" in body  # labelled, like the generation page
    assert "- **topic**: SWOT" in body  # the template is gone: the names as stored
    assert str(first.pk) in body
    assert str(second.pk) in body


@pytest.mark.django_db(transaction=True)
def test_markdown_export_keeps_a_plain_text_answer_as_written_in_a_code_block(user_client, user):
    email = "Subject: Thanks\n\n# not a heading, **not bold**\nRun ```this```\nKen"
    made(user, answer_format="plain", output=email)
    made(user, output="## A report")
    body = streamed(user_client.get(EXPORT, {"format": "md"}))
    assert f"````text\n{email}\n````" in body  # fenced past the backticks in the text
    assert "\n## A report\n" in body  # a Markdown answer stays Markdown


@pytest.mark.django_db(transaction=True)
def test_export_of_everything_matching_follows_the_search_and_filters(user_client, user):
    hit = made(user, output="見積書を送付します", status=Status.COMPLETED)
    made(user, output="見積書を送付します", status=Status.FAILED)
    made(user, output="請求書を送付します")
    made(UserFactory(), output="見積書を送付します")
    page = listed(user_client, q="見積書", status="completed")
    assert f"{EXPORT}?format=csv&amp;q=%E8%A6%8B%E7%A9%8D%E6%9B%B8&amp;status=completed" in page
    data = json.loads(
        streamed(user_client.get(EXPORT, {"format": "json", "q": "見積書", "status": "completed"}))
    )
    assert [item["id"] for item in data] == [str(hit.pk)]


@pytest.mark.django_db(transaction=True)
def test_export_of_selected_rows_has_only_those_and_only_mine(user_client, user):
    chosen = [made(user, output=f"chosen {n}") for n in range(2)]
    made(user, output="not chosen")
    someone_elses = made(UserFactory(), output="someone else's")
    ids = [str(g.pk) for g in chosen] + [str(someone_elses.pk), "garbage"]
    response = user_client.post(EXPORT, {"format": "json", "ids": ids})
    data = json.loads(streamed(response))
    assert sorted(item["id"] for item in data) == sorted(str(g.pk) for g in chosen)


@pytest.mark.django_db(transaction=True)
def test_export_reads_the_rows_a_chunk_at_a_time_without_losing_or_repeating_any(
    user_client, user, monkeypatch
):
    monkeypatch.setattr(exports, "EXPORT_CHUNK_SIZE", 2)
    same_moment = datetime.datetime(2026, 5, 1, 9, 0, tzinfo=TOKYO)
    generations = [made(user, output=f"row {n}", at=same_moment) for n in range(5)]
    generations += [made(user, output="row 5", at=same_moment - datetime.timedelta(1))]
    body = streamed(user_client.get(EXPORT, {"format": "csv"}))
    rows = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"), newline="")))
    assert sorted(row["id"] for row in rows) == sorted(str(g.pk) for g in generations)
    assert rows[-1]["output"] == "row 5"  # newest first
    data = json.loads(streamed(user_client.get(EXPORT, {"format": "json"})))
    assert len(data) == 6


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("get", {"format": "xlsx"}),
        ("get", {}),
        ("post", {"format": "csv"}),  # nothing selected
        ("post", {"format": "csv", "ids": ["not-a-uuid"]}),
    ],
)
def test_an_export_that_cannot_be_made_goes_back_with_a_message(user_client, method, params):
    response = getattr(user_client, method)(EXPORT, params, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[0][0] == HISTORY
    page = response.content.decode()
    assert "Choose CSV, JSON or Markdown" in page or "Select at least one generation" in page


# Deleting --------------------------------------------------------------------


def test_deleting_one_asks_first_then_deletes_only_it(user_client, user):
    generation, kept = made(user), made(user)
    url = reverse("generation:delete", args=[generation.pk])
    confirm = user_client.get(url)
    assert confirm.status_code == 200
    assert "This cannot be undone." in confirm.content.decode()
    assert Generation.objects.filter(pk=generation.pk).exists()
    response = user_client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == HISTORY
    assert "Deleted 1 generation." in response.content.decode()
    assert not Generation.objects.filter(pk=generation.pk).exists()
    assert Generation.objects.filter(pk=kept.pk).exists()


def test_deleting_one_returns_to_the_filtered_history_it_came_from(user_client, user):
    generation = made(user)
    back = f"{HISTORY}?q=abc&status=completed"
    response = user_client.post(reverse("generation:delete", args=[generation.pk]), {"next": back})
    assert response["Location"] == back
    response = user_client.post(
        reverse("generation:delete", args=[made(user).pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == HISTORY


def test_deleting_a_row_with_htmx_swaps_the_row_out(user_client, user):
    generation = made(user)
    response = user_client.post(
        reverse("generation:delete", args=[generation.pk]),
        headers={"HX-Request": "true", "HX-Target": f"row-{generation.pk}"},
    )
    assert response.status_code == 200
    assert response.content == b""
    assert not Generation.objects.filter(pk=generation.pk).exists()


def test_deleting_from_the_generation_page_with_htmx_goes_to_the_history(user_client, user):
    generation = made(user)
    response = user_client.post(
        reverse("generation:delete", args=[generation.pk]), headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == HISTORY
    assert not Generation.objects.filter(pk=generation.pk).exists()


def test_history_and_generation_page_offer_delete_with_a_confirmation(user_client, user):
    generation = made(user)
    url = reverse("generation:delete", args=[generation.pk])
    for page in (listed(user_client), user_client.get(generation.get_absolute_url()).content):
        page = page.decode() if isinstance(page, bytes) else page
        assert f'hx-post="{url}"' in page
        assert "hx-confirm=" in page


def test_another_persons_generation_cannot_be_deleted(user_client):
    other = made(UserFactory())
    url = reverse("generation:delete", args=[other.pk])
    assert user_client.get(url).status_code == 404
    assert user_client.post(url).status_code == 404
    assert Generation.objects.filter(pk=other.pk).exists()


def test_a_running_generation_is_not_deleted(user_client, user):
    running = made(user, status=Status.RUNNING)
    response = user_client.post(reverse("generation:delete", args=[running.pk]), follow=True)
    assert "still running" in response.content.decode()
    assert Generation.objects.filter(pk=running.pk).exists()


def test_deleting_selected_rows_asks_first_without_javascript(user_client, user):
    chosen = [made(user), made(user)]
    response = user_client.post(DELETE_SELECTED, {"ids": [str(g.pk) for g in chosen]})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="confirmed" value="1"' in page
    assert all(f'value="{g.pk}"' in page for g in chosen)
    assert Generation.objects.count() == 2


def test_deleting_selected_rows_deletes_only_mine_and_only_those(user_client, user):
    chosen = [made(user), made(user)]
    kept = made(user)
    someone_elses = made(UserFactory())
    ids = [str(g.pk) for g in chosen] + [str(someone_elses.pk), "garbage"]
    response = user_client.post(DELETE_SELECTED, {"ids": ids, "confirmed": "1"}, follow=True)
    assert "Deleted 2 generations." in response.content.decode()
    assert set(Generation.objects.values_list("pk", flat=True)) == {kept.pk, someone_elses.pk}


def test_deleting_selected_rows_with_htmx_reloads_the_history(user_client, user):
    generation = made(user)
    back = f"{HISTORY}?kind=text"
    response = user_client.post(
        DELETE_SELECTED,
        {"ids": [str(generation.pk)], "confirmed": "1", "next": back},
        headers={"HX-Request": "true"},
    )
    assert response["HX-Redirect"] == back
    assert not Generation.objects.exists()


def test_deleting_with_nothing_selected_says_so(user_client, user):
    made(user)
    response = user_client.post(DELETE_SELECTED, {"confirmed": "1"}, follow=True)
    assert "Select at least one generation first." in response.content.decode()
    assert Generation.objects.count() == 1


def test_deleting_an_image_generation_deletes_its_files(
    user_client, user, django_capture_on_commit_callbacks
):
    generation = made(user, kind="image", template=image_template(), image_count=1)
    kept = made(user, kind="image", template=image_template(), image_count=1)
    names = [
        default_storage.save(f"generations/{g.pk}/attempt/{name}", ContentFile(b"png"))
        for g in (generation, kept)
        for name in ("image-1.png", "image-1.webp", "image-1-thumb.webp")
    ]
    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(DELETE_SELECTED, {"ids": [str(generation.pk)], "confirmed": "1"})
    assert not Generation.objects.filter(pk=generation.pk).exists()
    assert [default_storage.exists(name) for name in names] == [False] * 3 + [True] * 3
