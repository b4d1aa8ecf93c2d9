"""A Google credential for the tests: refreshable, and with no network behind it."""

from __future__ import annotations

import datetime

from google.auth import credentials as google_credentials


class FakeCredentials(google_credentials.Credentials):
    """A refreshable Google credential that mints tokens locally.

    Tokens are `fake-token-1`, `fake-token-2`…, each valid for `lifetime`;
    `refreshes` counts how often google-genai asked for a new one.
    """

    def __init__(self, lifetime: datetime.timedelta = datetime.timedelta(hours=1)) -> None:
        super().__init__()
        self.lifetime = lifetime
        self.refreshes = 0

    def refresh(self, request: object) -> None:
        self.refreshes += 1
        self.token = f"fake-token-{self.refreshes}"
        # google-auth compares expiries as naive UTC datetimes.
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        self.expiry = now + self.lifetime

    def expire(self) -> None:
        """Make the current token stale, as if its hour were up."""
        self.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
