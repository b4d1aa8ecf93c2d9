"""Django's own words that our Japanese says better (sign-up's help and
errors): listed here so that `make messages` keeps them in our catalogue,
which Django reads before its own. Nothing calls these functions."""

from __future__ import annotations

from django.utils.translation import gettext_noop, ngettext


def _django_auth_words() -> None:  # pragma: no cover - read by makemessages only
    gettext_noop("Password confirmation")
    gettext_noop("Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.")
    gettext_noop("Your password can’t be too similar to your other personal information.")
    gettext_noop("Your password can’t be a commonly used password.")
    gettext_noop("Your password can’t be entirely numeric.")
    gettext_noop("This password is too common.")
    gettext_noop("This password is entirely numeric.")
    ngettext(
        "Your password must contain at least %(min_length)d character.",
        "Your password must contain at least %(min_length)d characters.",
        1,
    )
    ngettext(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        1,
    )
