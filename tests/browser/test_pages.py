"""What only a browser shows around the answer: the form's messages, search as
you type, the language switcher, copying an answer (a plain-text one exactly as
shown), an image job's gallery, and pages that fit a phone."""

from __future__ import annotations

import time

import pytest

from tests.browser.helpers import wait_until
from tests.browser.test_generate import ANSWER, STREAM_TEXT, TEMPLATE, start_generation

pytestmark = [pytest.mark.browser]


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


READ_CLIPBOARD = """async () => {
  const found = {};
  for (const item of await navigator.clipboard.read())
    for (const type of item.types) found[type] = await (await item.getType(type)).text();
  return found;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_a_formatted_answer_copies_as_html_and_text_and_downloads_as_word(logged_in, width):
    page = logged_in
    page.set_viewport_size({"width": width, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/t/prose-to-bullet-points/?sample=1")  # headings, a table and bold
    page.click("form.generate-form button[type=submit]")
    page.wait_for_selector(".markdown.answer h2, .markdown.answer h3", timeout=60_000)
    page.click("[data-copy-from]")
    page.wait_for_selector("[data-copied]")
    copied = page.evaluate(READ_CLIPBOARD)
    assert "<h2" in copied["text/html"] or "<h3" in copied["text/html"]
    assert "<table" in copied["text/html"]
    assert "<strong>" in copied["text/html"]
    assert "##" in copied["text/plain"]  # the Markdown as written, for plain-text editors
    assert "<" not in copied["text/plain"].split("\n")[0]
    with page.expect_download() as download:
        page.click(".downloads a:text('Word')")
    assert download.value.suggested_filename.endswith(".docx")
    with open(download.value.path(), "rb") as file:
        assert file.read(2) == b"PK"  # a Word document is a zip
    assert page.errors == []


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
    # So that history and usage have a table, with one of the longest titles
    # ("Answer block for the top of search results (featured snippet)").
    page.goto("/t/featured-snippet-answer-block/?sample=1")
    page.click("form.generate-form button[type=submit]")
    page.wait_for_selector(ANSWER, timeout=60_000)
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
