"""Signing up, logging in and out; browsing needs no account, generating does."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_sign_up_logs_the_new_person_in_and_returns_them_where_they_were(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "hanako",
            "password1": "kyoto-matcha-2026",
            "password2": "kyoto-matcha-2026",
            "next": "/t/some-template/",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/t/some-template/"
    assert get_user_model().objects.filter(username="hanako").exists()
    assert client.get(reverse("generation:history")).status_code == 200


def test_sign_up_refuses_an_offsite_next_url(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "taro",
            "password1": "kyoto-matcha-2026",
            "password2": "kyoto-matcha-2026",
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == reverse("catalog:home")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"username": "", "password1": "kyoto-matcha-2026", "password2": "kyoto-matcha-2026"},
            "This field is required.",
        ),
        (
            {"username": "jiro", "password1": "kyoto-matcha-2026", "password2": "different-2026"},
            "didn’t match",
        ),
        ({"username": "jiro", "password1": "123", "password2": "123"}, "too short"),
    ],
)
def test_bad_sign_up_shows_why_and_creates_nobody(client, data, message):
    response = client.post(reverse("signup"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not get_user_model().objects.exists()


def test_duplicate_username_is_refused(client):
    UserFactory(username="hanako")
    response = client.post(
        reverse("signup"),
        {"username": "hanako", "password1": "kyoto-matcha-2026", "password2": "kyoto-matcha-2026"},
    )
    assert "already exists" in response.content.decode()
    assert get_user_model().objects.count() == 1


def test_log_in_and_log_out(client):
    UserFactory(username="hanako")
    response = client.post(
        reverse("login"), {"username": "hanako", "password": "a-long-test-password"}
    )
    assert response.status_code == 302
    assert client.get(reverse("generation:history")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("generation:history")).status_code == 302


def test_wrong_password_is_a_clear_message(client):
    UserFactory(username="hanako")
    response = client.post(reverse("login"), {"username": "hanako", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
