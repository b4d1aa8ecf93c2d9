"""Content-Security-Policy on every page, and production settings that pass Django's deploy check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import template_with_fields

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def csp(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())


@pytest.mark.parametrize("name", ["catalog:home", "catalog:list", "login", "signup"])
def test_pages_forbid_inline_script_and_foreign_sources(client, name):
    directives = csp(client.get(reverse(name)))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in client.get(reverse(name))["Content-Security-Policy"]


def test_pages_carry_no_inline_script(user_client):
    page = user_client.get(template_with_fields().get_absolute_url()).content.decode()
    assert "<script>" not in page
    assert " on" + "click=" not in page
    assert all("src=" in tag for tag in page.split("<script")[1:])


def test_production_settings_pass_the_deploy_check():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "x7-" + "k" * 20 + "-production-secret-" + "Q" * 30,
        "DJANGO_ALLOWED_HOSTS": "studio.example.com",
    }
    env.pop("DJANGO_SECURE_SSL_REDIRECT", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_static_files_are_served_in_production(tmp_path):
    """collectstatic, then the ASGI app serves htmx through WhiteNoise with DEBUG off."""
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "test-" + "s" * 60,
        "STUDIO_DATA_DIR": str(tmp_path),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    script = (
        "import django; django.setup();"
        "from django.test import Client;"
        "from django.templatetags.static import static;"
        "url = static('vendor/htmx-2.0.11.min.js');"
        "r = Client().get(url, secure=True);"
        "print(r.status_code, url, b''.join(r.streaming_content)[:20])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "studio.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.startswith("200 /static/vendor/htmx-2.0.11."), (
        result.stdout + result.stderr
    )
