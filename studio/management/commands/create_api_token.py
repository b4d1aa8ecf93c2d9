"""Print a new API token for a user.

For setting up a client or a script without a browser: the token is the only
thing written to stdout, so `TOKEN=$(manage.py create_api_token hanako)` works.
It is shown this once; the database keeps only its hash.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio.models import ApiToken
from studio.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (and nothing else) on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="Who the token acts as.")
        parser.add_argument(
            "--name", default="Command line", help="What the token is for (shown in its list)."
        )

    def handle(self, *args, username: str, name: str, **options) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"There is no user named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"The user {username!r} is inactive: a token would not work.")
        max_length = ApiToken._meta.get_field("name").max_length
        name = name.strip()
        if not name or len(name) > max_length:
            raise CommandError(f"--name must be 1 to {max_length} characters.")
        token, raw = api_token_create(user=user, name=name)
        if options["verbosity"] >= 2:
            self.stderr.write(f"Created the token {token} for {username}.")
        self.stdout.write(raw)
