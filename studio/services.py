"""API tokens: creating, revoking, and finding who a presented token belongs to."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db.models import Q
from django.utils import timezone

from studio.models import ApiToken

TOKEN_PREFIX = "ais_"
# "ais_" and 8 random characters: enough to tell tokens apart, far too few to guess the rest.
SHOWN_PREFIX_LENGTH = 12
# Anything longer is not one of ours; refuse it before hashing.
MAX_TOKEN_LENGTH = 200
# Knowing when a token was last used to the minute is enough, and spares a
# database write on every API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user` and return it with its plain text, which is not
    stored anywhere: show it to the person once."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[:SHOWN_PREFIX_LENGTH], key_hash=token_hash(raw)
    )
    return token, raw


def api_token_revoke(*, token: ApiToken) -> None:
    """Stop a token from working. Revoking twice keeps the first time."""
    now = timezone.now()
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        token.revoked_at = now


def api_token_user(raw: str):
    """The active user that the token `raw` belongs to, or None if it is unknown,
    revoked, or its user is inactive."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > MAX_TOKEN_LENGTH:
        return None
    # The lookup is by hash, so comparing takes no time that depends on the secret.
    token = (
        ApiToken.objects.active()
        .select_related("user")
        .filter(key_hash=token_hash(raw), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    _record_use(token)
    return token.user


async def aapi_token_user(raw: str):
    """`api_token_user` for async views."""
    return await sync_to_async(api_token_user)(raw)


def _record_use(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    # Conditional, so that concurrent requests write once between them.
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
        pk=token.pk,
    ).update(last_used_at=now)
    token.last_used_at = now
