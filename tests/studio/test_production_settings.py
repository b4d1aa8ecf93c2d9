"""The studio as operators deploy it: DJANGO_DEBUG=false, static files collected
into the manifest, a real daphne process on PostgreSQL, HTTPS redirect off only
because the test talks plain HTTP over loopback. Pages, the API, a stream,
static files and the error pages answer as they must."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from tests.support.event_streams import read_event_stream
from tests.support.services import postgres_url
from tests.support.studio_process import (
    StudioProcess,
    drop_postgres_database,
    manage,
    postgres_database,
    studio_environment,
)

pytestmark = [pytest.mark.server, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    server_url = postgres_url()
    name = f"studio_production_{os.getpid()}"
    data_dir = tmp_path_factory.mktemp("production")
    database_url, token = postgres_database(server_url, name)
    env = studio_environment(
        data_dir,
        DATABASE_URL=database_url,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-production-like-secret-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP over loopback; everything else as in production.
        DJANGO_SECURE_SSL_REDIRECT="false",
    )
    manage(env, "collectstatic", "--noinput", "-v0")
    process = StudioProcess(env, data_dir / "web.log")
    yield process, {"Authorization": f"Bearer {token}"}
    process.stop()
    drop_postgres_database(server_url, name)


def test_pages_answer_with_hashed_static_files_that_are_served(production):
    process, _ = production
    page = httpx.get(f"{process.url}/accounts/login/", timeout=10)
    assert page.status_code == 200
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert assets, "the page links no static files"
    for asset in assets:
        # The manifest's names carry a hash: what a CDN or browser may cache forever.
        assert re.search(r"\.[0-9a-f]{12}\.", asset), asset
        response = httpx.get(process.url + asset, timeout=10)
        assert response.status_code == 200, asset
    for path in ("/", "/templates/", "/t/bench/"):
        assert httpx.get(process.url + path, timeout=10).status_code == 200, path


def test_the_api_starts_and_streams_a_generation(production):
    process, headers = production
    response = httpx.get(f"{process.url}/api/v1/templates", headers=headers, timeout=10)
    assert response.status_code == 200
    assert [t["slug"] for t in response.json()["results"]] == ["bench"]
    response = httpx.post(
        f"{process.url}/api/v1/generations",
        json={"template": "bench", "inputs": {"topic": "deployments"}},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    events = read_event_stream(response.json()["stream_url"], headers, timeout=60)
    assert events[-1][1] == "done"
    assert events[-1][2]["status"] == "completed"


def test_errors_are_the_studios_own_pages_not_debug_output(production):
    process, headers = production
    missing = httpx.get(f"{process.url}/t/no-such-template/", timeout=10)
    assert missing.status_code == 404
    assert "Traceback" not in missing.text
    assert "URLconf" not in missing.text
    api_missing = httpx.get(f"{process.url}/api/v1/nowhere", headers=headers, timeout=10)
    assert api_missing.status_code == 404
    assert api_missing.json()["error"]
    hostile = httpx.get(f"{process.url}/templates/?q=a%00b", timeout=10)
    assert hostile.status_code == 400
    assert "使用できない文字" in hostile.text


def test_cookies_are_secure_and_the_headers_strict(production):
    process, _ = production
    page = httpx.get(f"{process.url}/accounts/login/", timeout=10)
    assert "secure" in page.headers["set-cookie"].lower()
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in page.headers


def test_a_json_body_that_is_not_valid_unicode_is_answered_at_once(production):
    """Over a real server a lone surrogate used to leave the request without
    any answer; now it is a 400 in JSON, and nothing is recorded."""
    process, headers = production
    body = b'{"template": "bench", "inputs": {"topic": "a\\ud800b"}}'
    response = httpx.post(
        f"{process.url}/api/v1/generations",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert "Unicodeとして正しくない文字" in response.json()["error"]  # the site's language
