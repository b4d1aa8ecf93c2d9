"""Every page a person meets, in Japanese, at a laptop's and a phone's width:
nothing wider than the screen, no console error or CSP violation, no serious
or critical accessibility problem that axe-core (vendored from npm) finds.

Each page's screenshot is written to var/screenshots/<look>/ (laptop, phone,
laptop-dark, phone-dark) for a reviewer
to look at (STUDIO_SCREENSHOTS moves them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.helpers import log_in, wait_until

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
SHOTS = Path(os.environ.get("STUDIO_SCREENSHOTS", ROOT / "var" / "screenshots"))
# Each look: its viewport, and its colour scheme (the screenshots' folder name).
LOOKS = {
    "laptop": ((1366, 900), "light"),
    "phone": ((390, 844), "light"),
    "laptop-dark": ((1366, 900), "dark"),
    "phone-dark": ((390, 844), "dark"),
}
TEXT_TEMPLATE = "/t/thank-you-email-after-meeting/"
IMAGE_TEMPLATE = "/t/ec-white-background-product-photo/"

# Recorded in the page before any script runs: CSP violations the browser reports.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sample || ""));
});
"""


def open_visitor(browser, base_url: str, look: str, *, logged_in: bool = True):
    """A Japanese visitor (logged in as the demo user), in one look."""
    (width, height), scheme = LOOKS[look]
    context = browser.new_context(
        base_url=base_url,
        locale="ja-JP",
        viewport={"width": width, "height": height},
        has_touch=width < 500,
        color_scheme=scheme,
    )
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.problems = []
    page.on(
        "console",
        lambda message: (
            page.problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.width_name = look
    page.narrow = width < 500
    return log_in(page) if logged_in else page


@pytest.fixture(params=["laptop", "phone"])
def visitor(request, browser, studio_server):
    page = open_visitor(browser, studio_server, request.param)
    yield page
    page.context.close()


@pytest.fixture(params=["laptop", "phone"])
def stranger(request, browser, studio_server):
    page = open_visitor(browser, studio_server, request.param, logged_in=False)
    yield page
    page.context.close()


@pytest.fixture(params=["laptop-dark", "phone-dark"])
def dark_visitor(request, browser, studio_server):
    page = open_visitor(browser, studio_server, request.param)
    yield page
    page.context.close()


# Buttons, fields, menu items and stand-alone links (not links inside a
# sentence) that are visible and under 44 px high.
TOO_SMALL_TO_TAP = """
[...document.querySelectorAll(
  "main button, main .button, main select, main input:not([type=checkbox]):not([type=radio]):not([type=hidden]),"
  + " main textarea, main summary, .site-header a, .site-header summary, main a:not(p a):not(li a):not(td a):not(dd a):not(.card-link),"
  + " .facet-list a, .chip, .sorts a, .pagination a"
)].filter((e) => {
  if (e.closest(".visually-hidden")) return false;
  const box = e.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && box.height < 43.5 && getComputedStyle(e).visibility !== "hidden";
}).slice(0, 8).map((e) => e.tagName + "." + e.className + " " + (e.textContent || e.name || "").trim().slice(0, 20)
  + " " + Math.round(e.getBoundingClientRect().height) + "px")
"""


def check(page, name: str) -> None:
    """The page as it is now: screenshot, width, console, CSP and axe."""
    folder = SHOTS / page.width_name
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the picture
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    width = page.viewport_size["width"]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{name} is {scroll_width} px wide at {width} px"
    violations = page.evaluate("window.__csp || []")
    assert violations == [], f"{name}: CSP violations {violations}"
    assert page.problems == [], f"{name}: {page.problems}"
    if page.narrow:
        small = page.evaluate(TOO_SMALL_TO_TAP)
        assert small == [], f"{name}: targets under 44 px high on a phone: {small}"
    page.evaluate(AXE)
    found = page.evaluate(
        """async () => {
          const result = await axe.run(document, {resultTypes: ["violations"]});
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => v.id + " (" + v.impact + "): " + v.help + " — "
                 + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
        }"""
    )
    assert found == [], f"{name} at {width} px: {found}"


def check_pages(page, pages: list[tuple[str, str]]) -> None:
    """Open each (name, path) and check it."""
    for name, path in pages:
        page.goto(path)
        check(page, name)


def test_browsing_pages(visitor):
    page = visitor
    check_pages(
        page,
        [
            ("home", "/"),
            ("catalogue", "/templates/"),
            ("search", "/templates/?q=" + "お詫び"),
            ("category", "/categories/business-email/"),
            ("template-form", TEXT_TEMPLATE),
            ("template-sample", TEXT_TEMPLATE + "?sample=1"),
            ("image-template-form", IMAGE_TEMPLATE),
            ("api-tokens", "/accounts/tokens/"),
        ],
    )


def test_a_text_answer_streaming_and_finished_then_history_and_usage(visitor):
    page = visitor
    page.goto(TEXT_TEMPLATE + "?sample=1")
    page.click("form.generate-form button[type=submit]")
    wait_until(page, "document.querySelector('[data-stream-text]')?.textContent.length > 80")
    check(page, "answer-streaming")
    page.wait_for_selector(".answer", timeout=60_000)
    check(page, "answer-finished")
    detail = page.url
    check_pages(
        page,
        [
            ("history", "/generations/"),
            ("history-detail", detail),
            ("usage", "/generations/usage/"),
        ],
    )


def test_an_image_answer_and_its_gallery(visitor):
    page = visitor
    page.goto(IMAGE_TEMPLATE + "?sample=1")
    page.click("form.generate-form button[type=submit]")
    page.wait_for_selector(".gallery-item img", timeout=60_000)
    check(page, "image-gallery")


def test_dark_mode_reads_as_well(dark_visitor):
    """The same checks in the dark colour scheme (contrast above all)."""
    page = dark_visitor
    page.goto(TEXT_TEMPLATE + "?sample=1")
    check(page, "template-sample")
    page.click("form.generate-form button[type=submit]")
    page.wait_for_selector(".answer", timeout=60_000)
    check(page, "answer-finished")
    check_pages(
        page,
        [
            ("home", "/"),
            ("catalogue", "/templates/"),
            ("usage", "/generations/usage/"),
        ],
    )


def test_pages_before_logging_in(stranger):
    page = stranger
    check_pages(
        page,
        [
            ("visitor-home", "/"),
            ("visitor-template", TEXT_TEMPLATE),
            ("login", "/accounts/login/"),
            ("signup", "/accounts/signup/"),
        ],
    )
    # A mistyped address: the studio's own page, in Japanese, with a way back.
    page.problems.clear()
    response = page.goto("/t/no-such-template/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "ページが見つかりません"
    page.problems = [p for p in page.problems if "404" not in p]  # the page's own status
    check(page, "not-found")
