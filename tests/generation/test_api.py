"""The JSON API: the catalogue, starting and reading generations, their events, and refusals."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from generation.models import Generation
from generation.services import generation_create
from generation.text.runner import runner
from studio.services import api_token_create, api_token_revoke
from templates_catalog.models import TemplateField
from tests.factories import (
    CategoryFactory,
    GenerationFactory,
    TemplateFactory,
    TemplateFieldFactory,
    UserFactory,
    template_with_fields,
)

pytestmark = pytest.mark.django_db(transaction=True)

Type = TemplateField.Type
TEMPLATES_URL = "/api/v1/templates"
GENERATIONS_URL = "/api/v1/generations"
EVENT = re.compile(r"id: (\d+)\nevent: (\w+)\ndata: (.*)\n\n")


def parse(body: bytes) -> list[tuple[int, str, dict]]:
    return [(int(m[1]), m[2], json.loads(m[3])) for m in EVENT.finditer(body.decode())]


def detail_url(generation) -> str:
    return f"{GENERATIONS_URL}/{generation.pk}"


@pytest.fixture
def secret(user) -> str:
    _token, secret = api_token_create(user=user, name="Tests")
    return secret


@pytest.fixture
def api(secret) -> Client:
    """A client that sends the token and enforces CSRF, as a real script would meet it."""
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})


def post_json(client: Client, url: str, body, **kwargs):
    return client.post(url, json.dumps(body), content_type="application/json", **kwargs)


def typed_template():
    """A template with one field of each kind that JSON carries differently."""
    template = TemplateFactory(
        slug="campaign",
        kind="text",
        prompt_body_en="Plan for {{ channels }} in {{ tone }}, {{ budget }} yen, urgent: {{ urgent }}.",
    )
    TemplateFieldFactory(
        template=template,
        name="channels",
        type=Type.MULTI_SELECT,
        label_en="Channels",
        label_ja="チャネル",
        choices_en="line|LINE\ntiktok|TikTok",
        choices_ja="line|LINE\ntiktok|ティックトック",
        order=1,
    )
    TemplateFieldFactory(
        template=template,
        name="tone",
        type=Type.SELECT,
        label_en="Tone",
        label_ja="トーン",
        choices_en="casual|Casual\nformal|Formal",
        choices_ja="casual|カジュアル\nformal|フォーマル",
        order=2,
    )
    TemplateFieldFactory(
        template=template,
        name="budget",
        type=Type.NUMBER,
        label_en="Budget",
        min_value=1000,
        max_value=99999.5,
        order=3,
    )
    TemplateFieldFactory(
        template=template,
        name="urgent",
        type=Type.CHECKBOX,
        label_en="Urgent",
        required=False,
        order=4,
    )
    return template


# --- The catalogue ---------------------------------------------------------------


def test_templates_lists_published_templates_with_their_fields(api):
    template_with_fields(slug="thanks", category=CategoryFactory(slug="email"))
    typed_template()
    TemplateFactory(slug="draft", status="draft")
    response = api.get(TEMPLATES_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    results = {t["slug"]: t for t in response.json()["results"]}
    assert set(results) == {"thanks", "campaign"}
    thanks = results["thanks"]
    assert thanks["title"] == "Thank-you email"
    assert thanks["description"] == "Writes a thank-you email."
    assert thanks["kind"] == "text"
    assert thanks["category"] == "email"
    assert thanks["fields"] == [
        {
            "name": "recipient",
            "label": "Recipient",
            "type": "short_text",
            "required": True,
            "max_length": 200,
        },
        {
            "name": "note",
            "label": "Note",
            "type": "long_text",
            "required": False,
            "max_length": 4000,
        },
    ]
    channels, tone, budget, urgent = results["campaign"]["fields"]
    assert channels["choices"] == [
        {"value": "line", "label": "LINE"},
        {"value": "tiktok", "label": "TikTok"},
    ]
    assert tone["type"] == "select"
    assert (budget["min"], budget["max"]) == (1000, 99999.5)
    assert "choices" not in budget
    assert urgent == {"name": "urgent", "label": "Urgent", "type": "checkbox", "required": False}


def test_templates_labels_follow_the_requested_language(api):
    typed_template()
    for response in [
        api.get(TEMPLATES_URL, {"lang": "ja"}),
        api.get(TEMPLATES_URL, headers={"Accept-Language": "ja"}),
    ]:
        (template,) = response.json()["results"]
        assert template["title"] == "お礼メール"
        assert template["fields"][0]["label"] == "チャネル"
        assert template["fields"][1]["choices"][0] == {"value": "casual", "label": "カジュアル"}
    assert api.get(TEMPLATES_URL, {"lang": "fr"}).status_code == 400


def test_templates_filters_by_category_query_and_kind(api):
    email = CategoryFactory(slug="email")
    TemplateFactory(slug="thanks", category=email, tags_en="keepsake", tags_ja="記念品")
    TemplateFactory(slug="apology", category=email, title_en="Apology email")
    TemplateFactory(slug="photo", kind="image", title_en="Product photo")

    def slugs(**params) -> set[str]:
        return {t["slug"] for t in api.get(TEMPLATES_URL, params).json()["results"]}

    assert slugs(category="email") == {"thanks", "apology"}
    assert slugs(q="keepsake") == {"thanks"}
    assert slugs(q="記念品") == {"thanks"}
    assert slugs(q="apology", category="email") == {"apology"}
    assert slugs(kind="image") == {"photo"}
    assert slugs(category="nope") == set()
    response = api.get(TEMPLATES_URL, {"kind": "video"})
    assert response.status_code == 400
    assert "kind" in response.json()["error"]


def test_templates_query_count_does_not_grow_with_templates(api, django_assert_max_num_queries):
    for _ in range(10):
        template_with_fields()
    with django_assert_max_num_queries(5):
        assert len(api.get(TEMPLATES_URL).json()["results"]) == 10


# --- Starting and reading a generation ---------------------------------------------------


def test_creating_a_generation_runs_it_and_reading_shows_the_result(api, user):
    template = template_with_fields(slug="thanks")
    response = post_json(
        api, GENERATIONS_URL, {"template": "thanks", "inputs": {"recipient": "Ms Sato"}}
    )
    assert response.status_code == 201
    body = response.json()
    generation = Generation.objects.get()
    assert generation.user == user
    assert generation.template == template
    assert generation.inputs == {"recipient": "Ms Sato", "note": ""}
    assert body == {
        "id": str(generation.pk),
        "status": "queued",
        "kind": "text",
        "stream_url": f"http://testserver{GENERATIONS_URL}/{generation.pk}/events",
        "url": f"http://testserver{GENERATIONS_URL}/{generation.pk}",
    }
    assert response["Location"] == body["url"]
    runner.wait(generation.pk, timeout=10)

    result = api.get(body["url"]).json()
    generation.refresh_from_db()
    assert result["status"] == "completed"
    assert result["template"] == "thanks"
    assert "Ms Sato" in result["output"]
    assert result["output"] == generation.output
    assert result["finish_reason"] == "stop"
    assert result["usage"]["output_tokens"] > 0
    assert result["usage"] == {
        "input_tokens": generation.input_tokens,
        "output_tokens": generation.output_tokens,
    }
    assert result["images"] == []
    assert result["error"] is None
    assert result["created_at"].startswith(str(generation.created_at.year))
    assert result["finished_at"] is not None
    assert result["first_token_at"] is not None


def test_json_values_are_validated_as_the_form_validates_them(api):
    typed_template()
    response = post_json(
        api,
        GENERATIONS_URL,
        {
            "template": "campaign",
            "inputs": {
                "channels": ["line", "tiktok"],
                "tone": "formal",
                "budget": 5000,
                "urgent": True,
            },
        },
    )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    assert generation.inputs == {
        "channels": ["line", "tiktok"],
        "tone": "formal",
        "budget": 5000,
        "urgent": True,
    }
    assert generation.prompt == "Plan for LINE, TikTok in Formal, 5000 yen, urgent: True."
    runner.wait(generation.pk, timeout=10)


def test_the_generation_runs_in_the_requested_language(api):
    template_with_fields(slug="thanks")
    response = post_json(
        api, f"{GENERATIONS_URL}?lang=ja", {"template": "thanks", "inputs": {"recipient": "佐藤"}}
    )
    generation = Generation.objects.get(pk=response.json()["id"])
    assert generation.language == "ja"
    assert generation.prompt == "佐藤様へのお礼メールを書いてください。"
    runner.wait(generation.pk, timeout=10)


def test_invalid_inputs_get_each_message_next_to_its_field(api):
    template_with_fields(slug="thanks")
    typed_template()
    response = post_json(
        api,
        GENERATIONS_URL,
        {"template": "thanks", "inputs": {"recipient": "", "note": "x" * 5000, "recipent": "typo"}},
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["recipient"] == ["This field is required."]
    assert "at most 4000 characters" in errors["note"][0]
    assert errors["recipent"] == ["This template has no field of that name."]

    response = post_json(
        api,
        GENERATIONS_URL,
        {
            "template": "campaign",
            "inputs": {"channels": "line", "tone": "loud", "budget": 10, "urgent": "yes"},
        },
    )
    errors = response.json()["errors"]
    assert errors["channels"] == ["Enter a list of choice values."]
    assert "Select a valid choice" in errors["tone"][0]
    assert errors["budget"] == ["Enter 1,000 or more."]
    assert errors["urgent"] == ["Enter true or false."]
    assert not Generation.objects.exists()


def whole_number_template():
    template = TemplateFactory(slug="photos", prompt_body_en="Draw {{ count }} photos.")
    TemplateFieldFactory(
        template=template,
        name="count",
        type=Type.INTEGER,
        label_en="Number of images",
        label_ja="枚数",
        min_value=1,
        max_value=4,
    )
    return template


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2.5, "Enter a whole number."),
        ("2.5", "Enter a whole number."),
        ("abc", "Enter a whole number."),
        (1e300, "Enter a whole number."),  # a float JSON writes with an exponent
        (5, "Enter 4 or less."),
        (0, "Enter 1 or more."),
        (-3, "Enter 1 or more."),
        (10**40, "Enter 4 or less."),
        (True, "Enter a string or a number."),
        ([2], "Enter a string or a number."),
    ],
)
def test_a_whole_number_field_refuses_anything_but_a_whole_number(api, value, message):
    whole_number_template()
    response = post_json(api, GENERATIONS_URL, {"template": "photos", "inputs": {"count": value}})
    assert response.status_code == 400
    assert response.json() == {"errors": {"count": [message]}}
    assert not Generation.objects.exists()


def test_a_whole_number_field_refuses_a_fraction_in_the_requested_language(api):
    whole_number_template()
    response = post_json(
        api,
        GENERATIONS_URL,
        {"template": "photos", "inputs": {"count": 2.5}},
        headers={"Accept-Language": "ja"},
    )
    assert response.status_code == 400
    assert response.json() == {"errors": {"count": ["整数で入力してください。"]}}


@pytest.mark.parametrize(("value", "stored"), [(2, 2), (2.0, 2), ("3", 3), ("２", 2), (" 4 ", 4)])
def test_a_whole_number_field_takes_a_whole_number_as_json_or_text(api, value, stored):
    whole_number_template()
    response = post_json(api, GENERATIONS_URL, {"template": "photos", "inputs": {"count": value}})
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    assert generation.inputs == {"count": stored}
    assert type(generation.inputs["count"]) is int
    assert generation.prompt == f"Draw {stored} photos."
    runner.wait(generation.pk, timeout=10)


def test_the_catalogue_lists_a_whole_number_field_with_plain_limits(api):
    whole_number_template()
    (template,) = api.get(TEMPLATES_URL).json()["results"]
    assert template["fields"] == [
        {
            "name": "count",
            "label": "Number of images",
            "type": "integer",
            "required": True,
            "min": 1,
            "max": 4,
        }
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "key", "message"),
    [
        ("{not json", "application/json", "error", "not valid JSON"),
        ("[1, 2]", "application/json", "error", "must be a JSON object"),
        ('"thanks"', "application/json", "error", "must be a JSON object"),
        ("template=thanks", "application/x-www-form-urlencoded", "error", "Content-Type"),
        ("{}", "application/json", "errors", "template"),
        ('{"template": 7}', "application/json", "errors", "template"),
        ('{"template": "thanks", "inputs": []}', "application/json", "errors", "inputs"),
        ('{"template": "thanks", "inputs": "x"}', "application/json", "errors", "inputs"),
    ],
)
def test_a_malformed_body_is_a_400_that_says_why(api, body, content_type, key, message):
    template_with_fields(slug="thanks")
    response = api.post(GENERATIONS_URL, body, content_type=content_type)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in json.dumps(response.json()[key])
    assert not Generation.objects.exists()


def test_unknown_and_draft_templates_are_not_found(api):
    template_with_fields(slug="secret-draft", status="draft")
    for slug in ["nope", "secret-draft"]:
        response = post_json(api, GENERATIONS_URL, {"template": slug, "inputs": {}})
        assert response.status_code == 404
        assert slug in response.json()["error"]
    assert not Generation.objects.exists()


# --- Authentication --------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ais_wrong", "Bearer ", "Bearer", "Basic dXNlcjpwYXNz", "Token ais_x"],
)
def test_requests_without_a_valid_token_are_401(authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    client = Client(headers=headers)
    template_with_fields(slug="thanks")
    for response in [
        client.get(TEMPLATES_URL),
        post_json(client, GENERATIONS_URL, {"template": "thanks", "inputs": {"recipient": "x"}}),
        client.get(f"{GENERATIONS_URL}/{uuid.uuid4()}"),
    ]:
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]
    assert not Generation.objects.exists()


def test_a_revoked_token_is_401(api, user):
    template_with_fields(slug="thanks")
    api_token_revoke(token=user.api_tokens.get())
    response = post_json(api, GENERATIONS_URL, {"template": "thanks", "inputs": {"recipient": "x"}})
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]
    assert not Generation.objects.exists()


def test_a_bad_token_fails_even_with_a_session(user):
    client = Client(headers={"Authorization": "Bearer ais_wrong"})
    client.force_login(user)
    assert client.get(TEMPLATES_URL).status_code == 401


def test_the_session_works_but_must_pass_the_csrf_check(user):
    template_with_fields(slug="thanks")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(TEMPLATES_URL).status_code == 200
    body = {"template": "thanks", "inputs": {"recipient": "Ms Sato"}}

    response = post_json(client, GENERATIONS_URL, body)
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert not Generation.objects.exists()

    client.get(reverse("catalog:home"))  # a page with a form sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = post_json(client, GENERATIONS_URL, body, headers={"X-CSRFToken": csrf})
    assert response.status_code == 201
    runner.wait(Generation.objects.get().pk, timeout=10)


# --- Other people's generations, cancelling, refusals -------------------------------------


def test_another_persons_generation_is_not_found(api):
    others = GenerationFactory(status=Generation.Status.COMPLETED, output="private")
    for response in [
        api.get(detail_url(others)),
        api.post(f"{detail_url(others)}/cancel"),
        api.get(f"{detail_url(others)}/events"),
    ]:
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert "private" not in response.content.decode()
    others.refresh_from_db()
    assert others.status == Generation.Status.COMPLETED


@pytest.mark.parametrize(
    "path",
    [
        "generations/2f0e1a4c-8a1b-4f7e-9c3d-5b6a7e8f9012",
        "generations/not-a-uuid",
        "generations/123/cancel",
        "nothing",
    ],
)
def test_unknown_addresses_are_json_404s(api, user, path):
    response = api.get(f"/api/v1/{path}")
    assert response.status_code == 404
    assert response.json()["error"]
    session = Client(enforce_csrf_checks=True)
    session.force_login(user)
    response = session.post(f"/api/v1/{path}")
    assert response.status_code in {404, 405}  # not the CSRF middleware's HTML 403
    assert response.json()["error"]


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("get", GENERATIONS_URL, "POST"),
        ("post", TEMPLATES_URL, "GET"),
        ("delete", "detail", "GET"),
        ("get", "cancel", "POST"),
        ("post", "events", "GET"),
    ],
)
def test_wrong_methods_are_json_405s(api, user, method, url, allowed):
    generation = GenerationFactory(user=user, status=Generation.Status.COMPLETED)
    url = {
        "detail": detail_url(generation),
        "cancel": f"{detail_url(generation)}/cancel",
        "events": f"{detail_url(generation)}/events",
    }.get(url, url)
    response = getattr(api, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert allowed in response.json()["error"]


def test_cancelling_a_finished_generation_is_accepted_and_changes_nothing(api, user):
    generation = GenerationFactory(
        user=user, status=Generation.Status.COMPLETED, output="Done.", finish_reason="stop"
    )
    response = api.post(f"{detail_url(generation)}/cancel")
    assert response.status_code == 202
    assert response.json() == {"id": str(generation.pk), "status": "completed"}
    generation.refresh_from_db()
    assert (generation.status, generation.output) == ("completed", "Done.")


def test_cancelling_a_queued_generation_stops_it(api, user):
    generation = GenerationFactory(user=user)
    response = api.post(f"{detail_url(generation)}/cancel")
    assert response.status_code == 202
    assert response.json() == {"id": str(generation.pk), "status": "cancelled"}


# --- Events ----------------------------------------------------------------------------


@pytest.fixture
def streaming(settings, user):
    """A generation of `user`'s that the runner is streaming."""
    settings.STUDIO_DEMO_TOKENS_PER_SECOND = 300
    generation = generation_create(
        user=user,
        template=template_with_fields(),
        inputs={"recipient": 'Ms "Sato"\n<b>'},
        language="en",
    )
    yield generation
    runner.wait(generation.pk, timeout=30)


async def read_events(async_client, generation, secret, **headers):
    response = await async_client.get(
        f"{detail_url(generation)}/events", headers={"Authorization": f"Bearer {secret}", **headers}
    )
    chunks = [chunk async for chunk in response.streaming_content]
    return response, chunks


async def test_events_stream_json_until_done_and_deltas_make_the_output(
    async_client, streaming, secret
):
    response, chunks = await read_events(async_client, streaming, secret)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache, no-transform"
    assert response["X-Accel-Buffering"] == "no"
    assert chunks[0].startswith(b"retry: ")
    events = parse(b"".join(chunks))
    ids = [event_id for event_id, _name, _data in events]
    assert ids == sorted(set(ids))
    assert {name for _id, name, _data in events} <= {"queued", "delta", "progress", "done"}
    assert events[-1][1] == "done"
    generation = await Generation.objects.aget(pk=streaming.pk)
    assert events[-1][2] == {
        "status": "completed",
        "finish_reason": "stop",
        "usage": {
            "input_tokens": generation.input_tokens,
            "output_tokens": generation.output_tokens,
        },
    }
    text = "".join(data["text"] for _id, name, data in events if name == "delta")
    assert text == generation.output
    assert 'Ms "Sato"\n<b>' in text  # JSON carries the text as it is, unescaped


async def test_events_resume_after_last_event_id_with_exactly_the_rest(
    async_client, streaming, secret
):
    _response, chunks = await read_events(async_client, streaming, secret)
    events = parse(b"".join(chunks))
    deltas = [event for event in events if event[1] == "delta"]
    cut = deltas[len(deltas) // 2][0] - 1  # inside a delta: the reader has part of it
    _response, chunks = await read_events(
        async_client, streaming, secret, **{"Last-Event-ID": str(cut)}
    )
    resumed = parse(b"".join(chunks))
    generation = await Generation.objects.aget(pk=streaming.pk)
    seen = cut - generation.events_before_text
    assert resumed[0][0] > cut
    assert (
        "".join(data["text"] for _id, name, data in resumed if name == "delta")
        == (generation.output[seen:])
    )
    assert resumed[-1] == events[-1]


async def test_events_work_with_the_session_too(async_client, streaming, user):
    await async_client.aforce_login(user)
    response = await async_client.get(f"{detail_url(streaming)}/events")
    chunks = [chunk async for chunk in response.streaming_content]
    assert parse(b"".join(chunks))[-1][1] == "done"


async def test_events_of_another_person_or_without_a_token_are_refused(async_client, streaming):
    _token, others_secret = await sync_to_async(api_token_create)(
        user=await sync_to_async(UserFactory)(), name="x"
    )
    url = f"{detail_url(streaming)}/events"
    response = await async_client.get(url, headers={"Authorization": f"Bearer {others_secret}"})
    assert response.status_code == 404
    assert response.json()["error"]
    response = await async_client.get(url)
    assert response.status_code == 401
    response = await async_client.get(url, headers={"Authorization": "Bearer ais_wrong"})
    assert response.status_code == 401
    await asyncio.to_thread(runner.wait, streaming.pk, 30)


async def test_asking_for_event_stream_starts_and_streams_in_one_request(
    async_client, secret, user, settings
):
    settings.STUDIO_DEMO_TOKENS_PER_SECOND = 300
    template = await sync_to_async(template_with_fields)()
    response = await async_client.post(
        GENERATIONS_URL,
        json.dumps({"template": template.slug, "inputs": {"recipient": "Sato"}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}", "Accept": "text/event-stream"},
    )
    assert response.status_code == 201
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    chunks = [chunk async for chunk in response.streaming_content]
    generation = await Generation.objects.aget(user=user)
    assert response["Location"] == f"http://testserver{detail_url(generation)}"
    assert response["X-Stream-URL"] == f"http://testserver{detail_url(generation)}/events"
    events = parse(b"".join(chunks))
    assert events[-1][1] == "done"
    assert events[-1][2]["status"] == "completed"
    assert "".join(data["text"] for _id, name, data in events if name == "delta") == (
        generation.output
    )
    assert "Sato" in generation.output
    # The same events as /events replays, ids included: a dropped client resumes there.
    _response, replayed = await read_events(async_client, generation, secret)
    assert parse(b"".join(replayed)) == events


async def test_asking_for_event_stream_with_bad_inputs_still_gets_json_errors(async_client, secret):
    template = await sync_to_async(template_with_fields)()
    response = await async_client.post(
        GENERATIONS_URL,
        json.dumps({"template": template.slug, "inputs": {}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}", "Accept": "text/event-stream"},
    )
    assert response.status_code == 400
    assert response.json()["errors"]["recipient"]
    assert not await Generation.objects.aexists()
