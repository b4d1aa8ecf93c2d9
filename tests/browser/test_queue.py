"""What only a browser shows of the line and the plan: a second generation
waiting its turn shows its place, then streams; the form shows what is left;
the usage page draws its charts."""

from __future__ import annotations

import pytest

from tests.browser.helpers import log_in, wait_until
from tests.browser.test_generate import ANSWER, STREAM_TEXT, TEMPLATE
from tests.support.studio_process import StudioProcess, demo_environment

pytestmark = [pytest.mark.browser]

QUEUE_PLACE = "[data-queue-place]"


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory) -> str:
    """The demo as `make demo` runs it, but with room for one answer at a time,
    and the plans enforced."""
    data_dir = tmp_path_factory.mktemp("queue")
    env = demo_environment(
        data_dir,
        STUDIO_DEMO_TOKENS_PER_SECOND="80",
        STUDIO_MAX_CONCURRENT_GENERATIONS="1",
        STUDIO_ENFORCE_PLANS="true",
    )
    server = StudioProcess(env, data_dir / "daphne.log")
    yield server.url
    server.stop()


def demo_page(browser, base_url: str):
    context = browser.new_context(base_url=base_url, locale="en-US")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return log_in(page)


def test_a_generation_in_line_shows_its_place_then_streams(browser, one_at_a_time):
    first, second = demo_page(browser, one_at_a_time), demo_page(browser, one_at_a_time)
    first.goto(TEMPLATE + "?sample=1")
    allowance = first.text_content("[data-allowance]")
    assert "Free plan:" in allowance
    assert "more generations today." in allowance
    assert "token" not in allowance
    first.click("form.generate-form button[type=submit]")
    wait_until(first, f"document.querySelector('{STREAM_TEXT}')?.textContent.length > 0")

    second.goto(TEMPLATE + "?sample=1")
    second.click("form.generate-form button[type=submit]")
    second.wait_for_selector(f"{QUEUE_PLACE} .stage", timeout=10_000)
    assert second.is_visible(QUEUE_PLACE)
    assert second.inner_text(QUEUE_PLACE).strip() == "Waiting in line: number 1"
    assert second.text_content(STREAM_TEXT) == ""

    # Its turn comes when the first answer is done; the place gives way to text.
    first.wait_for_selector(ANSWER, timeout=60_000)
    wait_until(second, f"document.querySelector('{STREAM_TEXT}')?.textContent.length > 0")
    assert not second.is_visible(QUEUE_PLACE)
    second.wait_for_selector(ANSWER, timeout=60_000)
    assert second.locator(".badge.status").first.text_content().strip() == "Completed"

    second.goto("/generations/usage/")
    chart = second.locator("svg[role=img]").first
    chart.wait_for()
    assert chart.get_attribute("aria-label")
    assert first.errors == second.errors == []
