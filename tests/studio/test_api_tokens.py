"""API tokens: created by command or on the account page, shown once, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from studio.models import ApiToken
from studio.services import api_token_create, api_token_revoke, api_token_user
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEMPLATES_URL = "/api/v1/templates"
TOKEN = re.compile(r"ais_[A-Za-z0-9_-]{43}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_command_prints_only_a_token_that_authenticates(client, user):
    out = StringIO()
    call_command("create_api_token", user.username, "--name", "CI", stdout=out)
    token = out.getvalue().strip()
    assert TOKEN.fullmatch(token)
    assert ApiToken.objects.get(user=user).name == "CI"
    response = client.get(TEMPLATES_URL, headers=bearer(token))
    assert response.status_code == 200


def test_command_for_an_unknown_user_says_so():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("create_api_token", "nobody", stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_only_the_hash_and_a_short_prefix_are_stored(user):
    token, secret = api_token_create(user=user, name="Zapier")
    token.refresh_from_db()
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix)
    assert len(token.prefix) < len(secret) // 3
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert secret not in stored


def test_revoked_tokens_and_inactive_users_do_not_authenticate(client, user):
    token, secret = api_token_create(user=user, name="Script")
    assert api_token_user(secret) == user
    api_token_revoke(token=token)
    assert api_token_user(secret) is None
    response = client.get(TEMPLATES_URL, headers=bearer(secret))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "revoked" in response.json()["error"]

    _other, other_secret = api_token_create(user=user, name="Other")
    user.is_active = False
    user.save()
    assert api_token_user(other_secret) is None


def test_last_use_is_recorded_at_most_once_a_minute(user, django_assert_num_queries):
    token, secret = api_token_create(user=user, name="Script")
    with django_assert_num_queries(2):  # the lookup and the first use
        api_token_user(secret)
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    with django_assert_num_queries(1):  # the lookup only
        api_token_user(secret)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - timedelta(minutes=2))
    api_token_user(secret)
    token.refresh_from_db()
    assert token.last_used_at > first_use - timedelta(seconds=1)


def test_the_account_page_shows_a_new_token_once_and_then_only_its_prefix(user_client, user):
    response = user_client.post(reverse("api_tokens"), {"name": "Zapier"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = TOKEN.search(page)[0]
    assert "shown only this once" in page
    assert 'data-copy-from="new-token"' in page
    assert "Never" in page  # not used yet
    token = ApiToken.objects.get(user=user)
    assert api_token_user(secret) == user

    page = user_client.get(reverse("api_tokens")).content.decode()
    assert secret not in page
    assert f"{token.prefix}…" in page
    assert "Zapier" in page
    assert "Never" not in page  # used just now


def test_a_token_needs_a_name_of_reasonable_length(user_client):
    for name in ["", "x" * 101]:
        response = user_client.post(reverse("api_tokens"), {"name": name})
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_on_the_account_page(user_client, user):
    token, secret = api_token_create(user=user, name="Old laptop")
    response = user_client.post(reverse("api_token_revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_token_user(secret) is None
    page = user_client.get(reverse("api_tokens")).content.decode()
    assert "Revoked" in page
    assert reverse("api_token_revoke", args=[token.pk]) not in page


def test_someone_elses_token_cannot_be_revoked_or_seen(user_client):
    others, _secret = api_token_create(user=UserFactory(), name="Not yours")
    assert user_client.post(reverse("api_token_revoke", args=[others.pk])).status_code == 404
    others.refresh_from_db()
    assert others.revoked_at is None
    assert "Not yours" not in user_client.get(reverse("api_tokens")).content.decode()


def test_revoking_needs_a_post(user_client, user):
    token, _secret = api_token_create(user=user, name="Script")
    assert user_client.get(reverse("api_token_revoke", args=[token.pk])).status_code == 405


def test_the_account_pages_need_a_login(client, user):
    token, _secret = api_token_create(user=user, name="Script")
    for response in [
        client.get(reverse("api_tokens")),
        client.post(reverse("api_tokens"), {"name": "x"}),
        client.post(reverse("api_token_revoke", args=[token.pk])),
    ]:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert ApiToken.objects.count() == 1


def test_the_navigation_links_to_the_tokens_page_when_logged_in(user_client):
    assert reverse("api_tokens") in user_client.get(reverse("catalog:home")).content.decode()
    user_client.logout()
    assert reverse("api_tokens") not in user_client.get(reverse("catalog:home")).content.decode()


def test_staff_see_tokens_in_the_admin_without_their_hash(client, user):
    token, _secret = api_token_create(user=user, name="Script")
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get(reverse("admin:studio_apitoken_change", args=[token.pk])).content.decode()
    assert f"{token.prefix}…" in page
    assert token.key_hash not in page
    client.post(
        reverse("admin:studio_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.revoked_at <= timezone.now()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/v1/templates", "application/json"), ("/t/any-template/", "text/html")],
)
def test_an_exhausted_connection_pool_is_a_503_to_retry_not_a_500(
    client, user, monkeypatch, path, content_type
):
    from django.db import OperationalError
    from psycopg_pool import PoolTimeout

    from templates_catalog.models import TemplateQuerySet

    def busy(*args, **kwargs):
        raise OperationalError("couldn't get a connection after 30.00 sec") from PoolTimeout()

    monkeypatch.setattr(TemplateQuerySet, "visible_to", busy)
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith(content_type)
    assert b"busy" in response.content
