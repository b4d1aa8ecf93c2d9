from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.SECURE_SSL_REDIRECT = False
    settings.STUDIO_DEMO_TOKENS_PER_SECOND = 0
    settings.STUDIO_CHECKPOINT_SECONDS = 0.05
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(scope="session", autouse=True)
def _close_background_connections():
    """The runner and async views reach the database from asgiref's shared
    thread; close that thread's connections so the test database can be dropped."""
    yield
    async_to_sync(sync_to_async(connections.close_all))()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client
