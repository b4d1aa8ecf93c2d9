"""A real studio under daphne with a Celery worker on the embedded broker (on a
fresh SQLite database, as `make demo` runs it) and a real Chromium driven by
Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.helpers import log_in
from tests.support.services import IN_CI
from tests.support.studio_process import StudioProcess, WorkerProcess, demo_environment

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory) -> str:
    data_dir = tmp_path_factory.mktemp("studio")
    env = demo_environment(
        data_dir,
        # Demo mode, as `make demo` serves it (no DEBUG: the studio's own error pages).
        STUDIO_DEMO="true",
        DJANGO_DEBUG="false",
        STUDIO_DEMO_TOKENS_PER_SECOND="60",
        STUDIO_DEMO_IMAGE_SECONDS="2.5",
    )
    server = StudioProcess(env, data_dir / "daphne.log")
    worker = WorkerProcess(env, data_dir / "worker.log", "browser")
    yield server.url
    worker.stop()
    server.stop()


@pytest.fixture(scope="package")
def browser():
    # Package scope: Playwright's sync API keeps an event loop running on this
    # thread, which must be gone before any asyncio test runs.
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("Chromium is required in CI (scripts/install-browser.sh installs it)")
        pytest.skip("Chromium is not installed: run `make browser` as root to install it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, studio_server):
    context = browser.new_context(base_url=studio_server, locale="en-US")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on(
        "dialog", lambda dialog: (page.errors.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    yield page
    context.close()


@pytest.fixture
def logged_in(page):
    return log_in(page)
