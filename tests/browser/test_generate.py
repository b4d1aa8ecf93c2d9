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


def test_bad_input_shows_the_message_next_to_the_field(logged_in):
    page = logged_in
    page.goto(TEMPLATE)
    page.fill("[name=contact_name]", "Ms Sato")
    page.click("form.generate-form button[type=submit]")
    error = page.locator('[data-field="client_company"] .errorlist')
    error.wait_for()
    assert "This field is required." in error.text_content()
    assert page.url.endswith(TEMPLATE)


def test_search_as_you_type_narrows_the_list(page):
    page.goto("/templates/")
    total = page.locator(".template-card").count()
    page.fill("#template-search", "TikTok")
    wait_until(page, f"document.querySelectorAll('.template-card').length < {total}")
    titles = page.locator(".template-card h2").all_text_contents()
    assert "TikTok video script" in titles
    assert "Apology email to a client" not in titles
    assert "q=TikTok" in page.url


def test_the_language_switcher_changes_the_interface(page):
    page.goto("/")
    with page.expect_navigation():
        page.select_option("#language-select-header", "ja")  # submits itself: no button needed
    assert page.locator(".main-nav >> text=テンプレート").count() == 1
    assert page.locator("html[lang=ja]").count() == 1
    with page.expect_navigation():
        page.select_option("#language-select-header", "en")
    assert page.locator(".main-nav >> text=Templates").count() == 1


def test_the_language_switcher_keeps_the_page_its_filters_and_sort(page):
    page.goto("/templates/")
    # Filters and sort change the address without reloading (htmx).
    page.click(".facets a[href*='kind=image']")
    wait_until(page, "location.search.includes('kind=image')")
    page.click(".sorts a[href*='sort=popular']")
    wait_until(page, "location.search.includes('sort=popular')")
    with page.expect_navigation():
        page.select_option("#language-select-header", "ja")
    assert "/templates/" in page.url
    assert "kind=image" in page.url
    assert "sort=popular" in page.url
    assert page.locator(".sorts [aria-current]").inner_text() == "人気順"
    with page.expect_navigation():
        page.select_option("#language-select-header", "en")


def test_copy_puts_the_answer_on_the_clipboard(logged_in, browser):
    page = logged_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    start_generation(page, client_company="Copy Corp")
    page.wait_for_selector(ANSWER, timeout=30_000)
    page.click("[data-copy-from]")
    page.wait_for_selector("[data-copied]")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("(A sample answer from the offline demo model")
    assert "Subject: Thank you for your time" in copied
    assert "Copy Corp" in copied


def test_a_plain_text_answer_keeps_its_lines_as_it_streams_and_copy_gives_exactly_them(
    logged_in,
):
    page = logged_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    start_generation(page, client_company="Plain Lines Ltd")
    # While it is written: the email's own lines, blank ones too, and no Markdown made HTML.
    wait_until(
        page, f"document.querySelector('{STREAM_TEXT}.plain-text')?.innerText.includes('Dear')"
    )
    streaming = page.inner_text(STREAM_TEXT)
    assert "\n\nSubject: Thank you for your time" in streaming
    assert page.locator(f"{STREAM_TEXT} :is(p, br, li, h2, strong)").count() == 0
    page.wait_for_selector(".plain-text.answer", timeout=30_000)
    shown = page.inner_text(".plain-text.answer")
    page.click("[data-copy-from]")
    page.wait_for_selector("[data-copied]")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown  # what is pasted is what was read
    assert "Plain Lines Ltd" in copied
    assert "**" not in copied
    assert "\n- " not in copied
    assert page.errors == []


def test_an_image_job_shows_its_progress_then_the_gallery(logged_in):
    page = logged_in
    page.goto("/t/instagram-post-image/?sample=1")
    page.fill("[name=count]", "2")
    page.click("form.generate-form button[type=submit]")
    # Sample the progress bar until the gallery replaces it.
    values, previews = [], 0
    deadline = time.monotonic() + 60
    while page.locator(".gallery").count() == 0:
        assert time.monotonic() < deadline, values
        value = page.evaluate("document.querySelector('.image-progress progress')?.value ?? null")
        if value is not None:
            values.append(value)
        previews = max(previews, page.locator(".image-progress img.preview").count())
        time.sleep(0.1)
    seen = sorted(set(values))
    assert len(seen) >= 3, values  # the bar moved on at least twice
    assert values == sorted(values)  # and never back
    assert previews == 1  # a partial rendering was shown while drawing
    images = page.locator(".gallery img")
    assert images.count() == 2
    # Each thumbnail really loaded (a broken image has no natural width).
    wait_until(
        page,
        "[...document.querySelectorAll('.gallery img')].every(i => i.complete && i.naturalWidth > 0)",
    )
    download = page.locator(".gallery a[download]").first.get_attribute("href")
    assert download.endswith("/png?download=1")
    assert page.locator(".badge.status").first.text_content().strip() == "Completed"
    assert page.errors == []

    page.click("text=History")
    page.wait_for_selector("table.history")
    assert page.locator("table.history tbody tr:first-child img.history-thumb").count() == 1


PHONE_PAGES = [
    "/",
    "/templates/",
    TEMPLATE,
    "/generations/",
    "/generations/usage/",
    "/generations/usage/staff/",
    "/accounts/tokens/",
]


@pytest.mark.parametrize("width", [390, 320])
def test_no_page_is_wider_than_a_phone(logged_in, width):
    page = logged_in
    start_generation(page, client_company="Narrow Ltd")  # so history has a table
    page.wait_for_selector(ANSWER, timeout=30_000)
    page.set_viewport_size({"width": width, "height": 844})
    for path in PHONE_PAGES:
        page.goto(path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            f"[...document.querySelectorAll('body *')]"
            f".filter(e => e.getBoundingClientRect().right > {width} + 1)"
            f".slice(0, 5).map(e => e.tagName + '.' + e.className)"
        )
        assert scroll_width <= width, f"{path} is {scroll_width} px wide at {width} px: {wide}"
        # The menu is one button; opened, each item is one line (never a
        # character per line) and easy to tap.
        assert page.locator(".main-nav").is_hidden()
        page.click(".phone-menu summary")
        items = page.locator(
            ".phone-menu .menu-panel a, .phone-menu .menu-panel button.menu-item"
        ).all()
        assert len(items) >= 5, path
        for item in items:
            box = item.bounding_box()
            assert 44 <= box["height"] < 60, (path, item.inner_text(), box)
        page.keyboard.press("Escape")
        assert page.locator(".phone-menu .menu-panel").is_hidden()
    assert page.errors == []
