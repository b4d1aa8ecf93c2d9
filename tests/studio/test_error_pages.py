"""The error pages: the studio's own, in the page's language (Accept-Language
or the language cookie), with a way back, and the right status. The 500 page
reaches no database and no context processor, and never fails itself."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.template import engines
from django.test import Client, RequestFactory
from django.utils import translation

from studio import errors
from tests.factories import GenerationFactory, UserFactory

pytestmark = pytest.mark.urls("tests.studio.error_urls")

LANGUAGES = [
    ("ja", {"headers": {"accept-language": "ja"}}),
    ("en", {"headers": {"accept-language": "en"}}),
    ("ja", {"cookie": "ja", "headers": {"accept-language": "en"}}),
    ("en", {"cookie": "en", "headers": {"accept-language": "ja"}}),
]
PAGES = {
    # path: (status, Japanese heading, English heading)
    "/no-such-page/": (404, "ページが見つかりません", "Page not found"),
    "/t/no-such-template/": (404, "ページが見つかりません", "Page not found"),
    "/forbidden/": (403, "このページは表示できません", "You can't open this page"),
    "/bad/": (400, "リクエストを処理できませんでした", "We couldn't process this request"),
    "/broken/": (500, "エラーが発生しました", "Something went wrong"),
}


def visitor(language_choice: dict) -> tuple[Client, dict]:
    client = Client(raise_request_exception=False)
    if cookie := language_choice.get("cookie"):
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = cookie
    return client, language_choice["headers"]


def assert_a_way_back(page: str) -> None:
    assert 'action="/templates/"' in page
    assert 'name="q"' in page
    assert 'href="/"' in page
    assert "Traceback" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(("language", "choice"), LANGUAGES)
def test_each_error_page_is_the_studios_own_in_the_pages_language(path, language, choice):
    status, japanese, english = PAGES[path]
    client, headers = visitor(choice)
    response = client.get(path, headers=headers)
    assert response.status_code == status
    page = response.content.decode()
    assert f'<html lang="{language}">' in page
    assert f"<h1>{japanese if language == 'ja' else english}</h1>" in page
    assert 'class="site-header"' in page  # base.html: it looks like the product
    assert_a_way_back(page)


@pytest.mark.django_db
def test_someone_elses_generation_is_the_friendly_404():
    client = Client()
    client.force_login(UserFactory())
    response = client.get(GenerationFactory().get_absolute_url(), headers={"accept-language": "ja"})
    assert response.status_code == 404
    assert "ページが見つかりません" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "message"),
    [("ja", "フォームを送信できませんでした"), ("en", "The form could not be sent")],
)
def test_a_form_without_its_security_token_gets_a_page_that_says_what_to_do(language, message):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/accounts/login/",
        {"username": "a", "password": "b"},
        headers={"accept-language": language},
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert message in page
    assert "CSRF" not in page
    assert_a_way_back(page)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "message"), [("ja", "使用できない文字"), ("en", "a control character")]
)
def test_an_address_with_a_control_character_is_refused_in_the_pages_language(language, message):
    response = Client().get("/templates/?q=a%00b", headers={"accept-language": language})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'<html lang="{language}">' in page
    assert "a\x00b" not in page


@pytest.mark.django_db
def test_errors_under_the_api_stay_json():
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/broken", headers={"accept-language": "en"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "Something went wrong on our side. Please try again in a moment."
    }
    assert Client().get("/api/nowhere").json()["error"]


@pytest.fixture
def broken_context_processor(monkeypatch):
    """Every page's context processors, and one that fails (a broken configuration)."""

    def broken(request):
        raise RuntimeError("the provider's configuration is broken")

    engine = engines["django"].engine
    processors = (*engine.template_context_processors, broken)
    monkeypatch.setattr(engine, "template_context_processors", processors)


@pytest.mark.usefixtures("broken_context_processor")
def test_the_500_page_needs_no_database_and_no_context_processor():
    """No `db` mark: any query would fail this test."""
    for language, heading in (("ja", "エラーが発生しました"), ("en", "Something went wrong")):
        request = RequestFactory().get("/anything/", headers={"accept-language": language})
        with translation.override(language):
            response = errors.server_error(request)
        assert response.status_code == 500
        assert f"<h1>{heading}</h1>" in response.content.decode()


def test_a_500_page_that_cannot_be_rendered_is_sent_plain(monkeypatch):
    def broken_render(*args, **kwargs):
        raise RuntimeError("templates are gone")

    monkeypatch.setattr(errors, "render_to_string", broken_render)
    response = errors.server_error(RequestFactory().get("/anything/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "エラーが発生しました" in page
    assert "Something went wrong" in page


@pytest.mark.django_db
@pytest.mark.usefixtures("broken_context_processor")
def test_a_404_whose_full_page_fails_is_rendered_without_the_request():
    response = Client().get("/no-such-page/", headers={"accept-language": "en"})
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in response.content.decode()
