"""The page keeps to its own Content-Security-Policy: submitting a form and
following the answer to its end leaves nothing in the console, and the browser
reports no CSP violation.

Browsers' autofill and extensions (password managers, grammar checkers) put
`style` on form fields. htmx, settling a swap, copied the `style` of each old
element onto the new one with the same id, which the policy refuses: about
eight violations a submit. The fields here are styled the way such an
extension does it (through the CSSOM, which the policy allows)."""

from __future__ import annotations

import pytest

from tests.browser.test_generate import ANSWER, TEMPLATE

pytestmark = [pytest.mark.browser]

# Runs before any of the page's own scripts (Playwright injects it, not the page,
# so the policy does not apply to it): every violation the page raises is kept.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(
    event.violatedDirective + " " + event.blockedURI + " " + (event.sample || "")
  );
});
"""


@pytest.fixture
def watched(logged_in):
    page = logged_in
    page.console = []
    page.on(
        "console",
        lambda message: (
            page.console.append(f"{message.type}: {message.text}")
            if message.type in {"error", "warning"}
            else None
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    return page


def style_the_fields_as_an_extension_would(page) -> None:
    page.evaluate(
        """document.querySelectorAll(".generate-form [id]").forEach(function (field) {
          field.style.backgroundImage = "none";
        })"""
    )
    assert page.locator(".generate-form [style]").count() > 3


def test_a_submitted_form_and_its_streamed_answer_raise_no_console_error(watched):
    page = watched
    page.goto(TEMPLATE + "?sample=1")
    style_the_fields_as_an_extension_would(page)
    page.click("form.generate-form button[type=submit]")
    page.wait_for_selector(ANSWER, timeout=30_000)
    page.wait_for_selector(".badge.status", timeout=10_000)
    assert page.text_content(".badge.status").strip() == "Completed"
    # The finished answer has been swapped in and settled.
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cspViolations") == []
    assert page.console == []
    assert page.errors == []


def test_a_form_with_an_error_raises_no_console_error_either(watched):
    page = watched
    page.goto(TEMPLATE)
    style_the_fields_as_an_extension_would(page)
    page.click("form.generate-form button[type=submit]")
    page.locator('[data-field="client_company"] .errorlist').wait_for()
    # Fill it in and submit again: a second swap of the same workspace.
    style_the_fields_as_an_extension_would(page)
    page.fill("[name=client_company]", "Kaito Trading")
    page.fill("[name=contact_name]", "Ms Sato")
    page.fill("[name=meeting_date]", "2026-05-01")
    page.fill("[name=discussion_points]", "Next quarter's order volume")
    page.click("form.generate-form button[type=submit]")
    page.wait_for_selector(ANSWER, timeout=30_000)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cspViolations") == []
    assert page.console == []
    assert page.errors == []
