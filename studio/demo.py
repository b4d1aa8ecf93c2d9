"""The demo's account: the one `manage.py load_demo` creates, and which the
login page offers in demo mode (STUDIO_DEMO, set by `make demo`) and only there:
it is staff, and its password is printed for anyone to read."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "studio-demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str


def demo_login() -> DemoLogin | None:
    """The demo's username and password, when this site is the demo and its
    account exists (load_demo has run); None otherwise."""
    if not settings.STUDIO_DEMO:
        return None
    users = get_user_model().objects.filter(username=DEMO_USERNAME, is_active=True)
    return DemoLogin(DEMO_USERNAME, DEMO_PASSWORD) if users.exists() else None
