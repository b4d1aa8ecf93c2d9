"""What the browser tests share: waiting on the page, and the demo login."""

from __future__ import annotations

import time


def wait_until(page, expression: str, timeout: float = 30) -> None:
    """Poll a JS expression. (wait_for_function would need 'unsafe-eval', which our CSP forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


def log_in(page, username: str = "demo", password: str = "studio-demo"):
    """Log in through the login form; back on the home page."""
    page.goto("/accounts/login/")
    # The login form itself (in demo mode a one-click demo login comes first).
    page.fill("form.stacked-form input[name=username]", username)
    page.fill("form.stacked-form input[name=password]", password)
    page.click("form.stacked-form button[type=submit]")
    page.wait_for_url("**/")
    return page
