"""Static files under ASGI: WhiteNoise serves them; every other request passes by it."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def asgi_client(settings):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    return AsyncClient()


async def test_static_files_are_served_under_asgi(asgi_client):
    response = await asgi_client.get("/static/studio/studio.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    body = b"".join(response.streaming_content)
    assert b"{" in body


async def test_a_missing_static_file_is_the_sites_404(asgi_client):
    response = await asgi_client.get("/static/studio/no-such-file.css")
    assert response.status_code == 404


async def test_pages_pass_through_to_django(asgi_client):
    response = await asgi_client.get("/")
    assert response.status_code == 200
    assert b"<html" in response.content
