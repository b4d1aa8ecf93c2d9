"""Demo mode (STUDIO_DEMO, set by `make demo`): the login page says the demo's
login and logs in with one click; nowhere else does it. And the demo runs
without DEBUG: a mistyped address gets the studio's own 404 page, not
Django's technical one, and static files are served from the source folders."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import httpx
import pytest
from django.contrib.auth import get_user_model

from studio.demo import DEMO_PASSWORD, DEMO_USERNAME
from tests.support.studio_process import (
    ROOT,
    demo_environment,
    free_port,
    wait_until_answering,
)

DEMO_NOTICE = ".demo-login"


def hidden_inputs(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))


@pytest.fixture
def demo_user(db):
    return get_user_model().objects.create_user(DEMO_USERNAME, password=DEMO_PASSWORD)


@pytest.mark.usefixtures("demo_user")
@pytest.mark.parametrize(
    ("language", "button"),
    [("ja", "デモ用アカウントでログイン"), ("en", "Log in as the demo user")],
)
def test_in_demo_mode_the_login_page_says_the_demo_login(client, settings, language, button):
    settings.STUDIO_DEMO = True
    page = client.get("/accounts/login/", headers={"accept-language": language}).content.decode()
    assert 'class="notice demo-login"' in page
    assert f"<code>{DEMO_USERNAME}</code>" in page
    assert f"<code>{DEMO_PASSWORD}</code>" in page
    assert button in page


def test_one_click_logs_in_as_the_demo_user(client, settings, demo_user):
    settings.STUDIO_DEMO = True
    page = client.get("/accounts/login/?next=/templates/").content.decode()
    demo_form = page[page.index('class="notice demo-login"') :]
    demo_form = demo_form[: demo_form.index("</form>")]
    fields = hidden_inputs(demo_form)
    assert fields["username"] == DEMO_USERNAME
    assert fields["next"] == "/templates/"
    response = client.post("/accounts/login/", fields)
    assert response.status_code == 302
    assert response["Location"] == "/templates/"
    assert client.session["_auth_user_id"] == str(demo_user.pk)


@pytest.mark.usefixtures("demo_user")
def test_outside_demo_mode_the_login_page_says_nothing_of_it(client, settings):
    settings.STUDIO_DEMO = False
    page = client.get("/accounts/login/").content.decode()
    assert "demo-login" not in page
    assert DEMO_PASSWORD not in page


@pytest.mark.django_db
def test_in_demo_mode_without_the_demo_user_there_is_nothing_to_offer(client, settings):
    settings.STUDIO_DEMO = True
    page = client.get("/accounts/login/").content.decode()
    assert "demo-login" not in page


# --- The demo as `make demo` serves it --------------------------------------------------


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """scripts/serve.sh (daphne and a Celery worker) on the demo's SQLite
    database as `make demo` leaves it, with the environment `make demo` gives
    it: no DJANGO_DEBUG, no HTTPS settings."""
    data_dir = tmp_path_factory.mktemp("demo")
    env = demo_environment(data_dir)
    for name in ("DJANGO_DEBUG", "DJANGO_SECURE_SSL_REDIRECT"):
        env.pop(name)
    port = free_port()
    log = data_dir / "serve.log"
    process = subprocess.Popen(
        ["bash", "scripts/serve.sh", "127.0.0.1", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the script, daphne and the worker
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url + "/accounts/login/", process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.server
@pytest.mark.timeout(180)
def test_the_demo_serves_the_studios_own_404_and_its_static_files(demo_server):
    for language, heading in (("ja", "ページが見つかりません"), ("en", "Page not found")):
        response = httpx.get(
            f"{demo_server}/no-such-page/", headers={"accept-language": language}, timeout=10
        )
        assert response.status_code == 404
        assert f"<h1>{heading}</h1>" in response.text
        assert "URLconf" not in response.text
        assert "DEBUG = True" not in response.text
    login = httpx.get(f"{demo_server}/accounts/login/", timeout=10)
    assert login.status_code == 200  # plain HTTP: no redirect to HTTPS
    assert "secure" not in login.headers["set-cookie"].lower()
    assert f"<code>{DEMO_PASSWORD}</code>" in login.text
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', login.text)
    assert assets
    for asset in assets:
        assert httpx.get(demo_server + asset, timeout=10).status_code == 200, asset
