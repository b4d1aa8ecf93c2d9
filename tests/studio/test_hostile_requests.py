"""Every request answers: malformed Unicode, NUL and control characters in any
path, query, header or body get a 4xx (JSON under /api/, a page elsewhere),
never a 500 and never silence. Property-based, over the API and the form views."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_from_bytes

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generation.models import Generation
from studio.services import api_token_create
from tests.factories import UserFactory, template_with_fields

pytestmark = pytest.mark.django_db

# Any text Python can hold: lone surrogates, NUL, controls, astral characters.
ANY_TEXT = st.text(max_size=40)
# What HTTP can carry in a header value (latin-1), controls included.
HEADER_TEXT = st.text(st.characters(max_codepoint=0xFF), max_size=40)
# Any bytes, percent-encoded into a path or a query: invalid UTF-8 and %00 too.
ANY_BYTES = st.binary(max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def world(db):
    user = UserFactory()
    template = template_with_fields(slug="thanks")
    _token, secret = api_token_create(user=user, name="tests")
    api = Client(headers={"Authorization": f"Bearer {secret}"}, raise_request_exception=False)
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    return {"api": api, "browser": browser, "template": template}


def assert_answered(response, *, api: bool) -> None:
    assert response.status_code < 500, response.content[:500]
    if api:
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
    elif not 300 <= response.status_code < 400:
        assert response.content, "an empty answer"


@HYPOTHESIS
@given(template=JSON_VALUES, inputs=JSON_VALUES, extra=JSON_VALUES)
def test_any_json_body_gets_a_json_answer(world, template, inputs, extra):
    body = {"template": template, "inputs": inputs, "extra": extra}
    # ensure_ascii: a lone surrogate travels as its \\u escape, as a client would send it.
    response = world["api"].post("/api/v1/generations", json.dumps(body), "application/json")
    assert_answered(response, api=True)
    if response.status_code == 201:
        assert Generation.objects.filter(pk=response.json()["id"]).exists()


@HYPOTHESIS
@given(name=ANY_TEXT, value=ANY_TEXT)
def test_any_text_in_a_json_input_is_stored_cleanly_or_refused(world, name, value):
    body = {"template": "thanks", "inputs": {"recipient": value, name: value}}
    before = Generation.objects.count()
    response = world["api"].post("/api/v1/generations", json.dumps(body), "application/json")
    assert_answered(response, api=True)
    if response.status_code != 201:
        assert Generation.objects.count() == before  # nothing half-saved
    else:
        stored = Generation.objects.get(pk=response.json()["id"])
        json.dumps(stored.inputs, ensure_ascii=False).encode("utf-8")


def test_a_lone_surrogate_or_nul_in_json_is_refused_by_name(world):
    for escape, words in (("\\ud800", "not valid Unicode"), ("\\u0000", "NUL")):
        body = '{"template": "thanks", "inputs": {"recipient": "a' + escape + 'b"}}'
        response = world["api"].post("/api/v1/generations", body, "application/json")
        assert response.status_code == 400
        assert words in response.json()["error"]
    assert not Generation.objects.exists()


def test_a_slug_that_is_not_a_slug_is_a_json_404(world):
    for slug in ("a\x00b", "../thanks", "thanks\n", "テンプレ"):
        body = json.dumps({"template": slug, "inputs": {}})
        body = body.replace("\\u0000", "\\u0001")  # NUL itself is refused before: see above
        response = world["api"].post("/api/v1/generations", body, "application/json")
        assert response.status_code == 404
        assert response.json()["error"].startswith("There is no template")


@HYPOTHESIS
@given(segment=ANY_BYTES, q=ANY_BYTES, category=ANY_BYTES, kind=ANY_BYTES)
def test_any_api_path_or_query_gets_a_json_answer(world, segment, q, category, kind):
    query = f"q={quote_from_bytes(q)}&category={quote_from_bytes(category)}&kind={quote_from_bytes(kind)}"
    for path in (
        f"/api/v1/templates?{query}",
        f"/api/v1/generations/{quote_from_bytes(segment)}",
        f"/api/v1/generations/{quote_from_bytes(segment)}/events?last_event_id={quote_from_bytes(q)}",
        f"/api/v1/{quote_from_bytes(segment)}?{query}",
    ):
        assert_answered(world["api"].get(path), api=True)


@HYPOTHESIS
@given(authorization=HEADER_TEXT, last_event_id=HEADER_TEXT, language=HEADER_TEXT)
def test_any_header_gets_an_answer(world, authorization, last_event_id, language):
    headers = {"Accept-Language": language, "Last-Event-ID": last_event_id}
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/templates", headers={"Authorization": authorization, **headers})
    assert_answered(response, api=True)
    assert response.status_code in {200, 400, 401}
    assert_answered(world["browser"].get("/templates/", headers=headers), api=False)


@HYPOTHESIS
@given(query=st.dictionaries(ANY_BYTES, ANY_BYTES, max_size=5))
def test_any_query_on_the_pages_gets_a_page(world, query):
    encoded = "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in query.items())
    for path in ("/", "/templates/", "/t/thanks/", "/generations/", "/generations/usage/"):
        assert_answered(world["browser"].get(f"{path}?{encoded}"), api=False)


@HYPOTHESIS
@given(recipient=ANY_BYTES, note=ANY_BYTES, extra=ANY_BYTES)
def test_any_form_body_gets_the_form_or_a_generation(world, recipient, note, extra):
    body = (
        f"recipient={quote_from_bytes(recipient)}&note={quote_from_bytes(note)}"
        f"&{quote_from_bytes(extra)}={quote_from_bytes(note)}"
    )
    before = Generation.objects.count()
    response = world["browser"].generic(
        "POST", "/generations/new/thanks/", body, "application/x-www-form-urlencoded"
    )
    assert_answered(response, api=False)
    if response.status_code != 302:
        assert Generation.objects.count() == before
    else:
        stored = Generation.objects.latest("created_at")
        assert "\x00" not in stored.prompt
        stored.prompt.encode("utf-8")


@pytest.mark.parametrize(
    "path",
    ["/templates/?q=a%00b", "/t/thanks/?x=%07", "/generations/?q=%1b[31m", "/%00/"],
)
def test_control_characters_in_the_address_get_the_bad_request_page(world, path):
    response = world["browser"].get(path, headers={"accept-language": "ja"})
    assert response.status_code == 400
    assert "使用できない文字" in response.content.decode()


def test_control_characters_under_the_api_get_json(world):
    response = world["api"].get("/api/v1/templates?q=a%00b")
    assert response.status_code == 400
    assert "control character" in response.json()["error"]


def test_a_nul_in_a_form_field_is_refused_beside_the_field(world):
    response = world["browser"].post("/generations/new/thanks/", {"recipient": "a\x00b"})
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert not Generation.objects.exists()


def test_invisible_control_characters_are_removed_from_form_text(world):
    response = world["browser"].post(
        "/generations/new/thanks/", {"recipient": "Ms\x07 Sato\x1b", "note": "line\x0b two"}
    )
    assert response.status_code == 302
    stored = Generation.objects.get()
    assert stored.inputs == {"recipient": "Ms Sato", "note": "line two"}


def test_a_url_quoted_path_with_a_surrogate_like_sequence_is_answered(world):
    # The UTF-8 form of a surrogate is not UTF-8: it decodes to U+FFFD.
    path = "/t/" + quote("thanks") + "%ED%A0%80/"
    assert_answered(world["browser"].get(path), api=False)
