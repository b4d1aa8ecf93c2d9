"""What only a browser shows: the answer growing on the page, history, refresh, Stop,
and that no script from model output ever runs."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.helpers import log_in, wait_until
from tests.support.studio_process import StudioProcess, demo_environment

pytestmark = [pytest.mark.browser]

# An email: a plain-text template, shown as written (templates_catalog's answer format).
TEMPLATE = "/t/thank-you-email-after-meeting/"
STREAM_TEXT = "[data-stream-text]"
ANSWER = ".answer"


def start_generation(page, **overrides: str) -> None:
    page.goto(TEMPLATE + "?sample=1")
    for name, value in overrides.items():
        page.fill(f"[name={name}]", value)
    page.click("form.generate-form button[type=submit]")


def test_the_answer_grows_on_the_page_and_lands_in_history(logged_in):
    page = logged_in
    start_generation(page, client_company="Kaito Trading")
    # Sample the streaming text until the finished answer replaces it.
    lengths = []
    while page.locator(ANSWER).count() == 0:
        lengths.append(
            page.evaluate(f"document.querySelector('{STREAM_TEXT}')?.textContent.length ?? 0")
        )
        time.sleep(0.2)
    growing = [n for n in lengths if n > 0]
    assert len(set(growing)) >= 5, lengths  # seen at five or more sizes on its way
    assert growing == sorted(growing)  # text is only ever added
    assert "/generations/" in page.url  # the address of this generation, for refresh and sharing
    page.wait_for_selector(ANSWER, timeout=30_000)
    answer = page.text_content(ANSWER)
    assert "Kaito Trading" in answer
    assert page.locator(".badge.status").first.text_content().strip() == "Completed"
    assert page.errors == []

    page.click("text=History")
    page.wait_for_selector("table.history")
    page.click("table.history tbody tr:first-child a")
    page.wait_for_selector(ANSWER)
    assert "Kaito Trading" in page.text_content(ANSWER)
    assert "Time taken" in page.text_content(".timings")


@pytest.fixture(scope="module")
def studio_with_plans(tmp_path_factory) -> str:
    """The demo as `make demo` runs it, with the plans' limits enforced."""
    data_dir = tmp_path_factory.mktemp("plans")
    env = demo_environment(
        data_dir, STUDIO_DEMO_TOKENS_PER_SECOND="40", STUDIO_ENFORCE_PLANS="true"
    )
    server = StudioProcess(env, data_dir / "daphne.log")
    yield server.url
    server.stop()


# A template whose sample answer (what the demo model streams) has headings.
WITH_HEADINGS = "/t/featured-snippet-answer-block/"


def generations_left(page) -> int:
    text = page.text_content("[data-allowance]")
    return int(re.search(r"About ([\d,]+) more generations? today", text)[1].replace(",", ""))


def test_the_answer_is_formatted_as_it_streams_and_the_allowance_is_right_after(
    browser, studio_with_plans
):
    context = browser.new_context(base_url=studio_with_plans, locale="en-US")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page)
    page.goto(WITH_HEADINGS + "?sample=1")
    before = generations_left(page)
    page.click("form.generate-form button[type=submit]")
    # A heading of the answer is a heading while it is still being written.
    page.wait_for_selector(f"{STREAM_TEXT} h2, {STREAM_TEXT} h3", timeout=30_000)
    assert page.locator(ANSWER).count() == 0  # not finished yet
    assert page.get_attribute(STREAM_TEXT, "aria-busy") == "true"
    assert "##" not in page.text_content(STREAM_TEXT)
    reserved = generations_left(page)  # the run holds its whole reservation meanwhile
    assert reserved < before
    page.wait_for_selector(ANSWER, timeout=60_000)
    assert page.text_content("[id$='-status'][role=status]").strip() == "Completed"
    # Once it ends, the allowance shows what is really left: the answer used
    # fewer tokens than it reserved, so one more generation is left again.
    wait_until(
        page,
        f"!document.querySelector('[data-allowance]').textContent.includes('About {reserved} more')",
    )
    assert reserved < generations_left(page) <= before
    assert errors == []
    context.close()


def test_refresh_mid_generation_shows_the_text_so_far_and_continues(logged_in):
    page = logged_in
    start_generation(page, client_company="Refresh Holdings")
    wait_until(page, f"document.querySelector('{STREAM_TEXT}')?.textContent.length > 30")
    page.reload()
    # The same page as before: the form as it was filled in, the answer going on.
    assert page.input_value("[name=client_company]") == "Refresh Holdings"
    page.wait_for_selector(ANSWER, timeout=30_000)
    assert page.input_value("[name=client_company]") == "Refresh Holdings"
    answer = page.text_content(ANSWER)
    assert answer.count("Thank you for taking the time to meet us") == 1  # nothing doubled
    assert "Refresh Holdings" in answer
    assert page.errors == []


def test_stop_ends_the_answer_and_keeps_what_was_written(logged_in):
    page = logged_in
    start_generation(page, client_company="Stop Industries")
    wait_until(page, f"document.querySelector('{STREAM_TEXT}')?.textContent.length > 20")
    page.click("button.stop")
    page.wait_for_selector("text=Stopped. The text written before that is kept.", timeout=5_000)
    kept = page.text_content(ANSWER)
    assert kept.strip()
    assert page.locator("button.stop").count() == 0
    time.sleep(1)  # nothing more arrives
    assert page.text_content(ANSWER) == kept
    assert page.text_content(".badge.status").strip() == "Stopped"  # as the button said
    page.goto("/generations/")
    assert "Stopped" in page.text_content("main")
    assert page.errors == []


PAYLOAD = (
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    "[click me](javascript:window.__pwned=3)"
)


def test_script_in_model_output_never_runs(logged_in):
    page = logged_in
    start_generation(page, client_company=PAYLOAD[:100], discussion_points=PAYLOAD)
    wait_until(page, f"document.querySelector('{STREAM_TEXT}')?.textContent.includes('script')")
    assert page.evaluate("window.__pwned") is None
    page.wait_for_selector(ANSWER, timeout=30_000)
    assert page.evaluate("window.__pwned") is None
    assert page.locator(f"{ANSWER} script, {ANSWER} img").count() == 0
    hrefs = page.eval_on_selector_all(f"{ANSWER} a", "links => links.map(a => a.href)")
    assert not [href for href in hrefs if href.lower().startswith("javascript")]
    assert "<script>" in page.text_content(ANSWER)  # shown as text, harmlessly
    page.reload()
    page.wait_for_selector(ANSWER)
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []
