from __future__ import annotations

import os
import shutil

import pytest
from asgiref.sync import SyncToAsync
from django.conf import settings as django_settings
from django.db import connections

from generation.lifecycle.slots import reset_slots
from generation.text.runner import close_database_connections
from tests.factories import UserFactory
from tests.support.services import TEST_POSTGRES_URL, reachable
from tests.support.studio_process import (
    RUN_DIR_VARIABLE,
    drop_template_database,
    run_directory,
    start_preparing,
)

# The modules that take longest (real processes, browsers, the whole catalogue)
# start first, so that the workers finish together rather than one waiting on
# the last of them.
LONG_MODULES = (
    "tests/browser/test_design.py",
    "tests/browser/test_generate.py",
    "tests/generation/test_processes.py",
    "tests/generation/test_redis_restart.py",
    "tests/generation/test_slots_processes.py",
    "tests/generation/test_image_worker.py",
    "tests/browser/test_queue.py",
    "tests/browser/test_console.py",
    "tests/templates_catalog/test_catalog_export.py",
    "tests/templates_catalog/test_catalog_check.py",
    "tests/studio/test_production_settings.py",
    "tests/studio/test_demo_mode.py",
    "tests/templates_catalog/test_load_demo.py",
    "tests/templates_catalog/test_search.py",
)


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config) -> None:
    # One directory for the whole run, shared by the workers (they inherit the
    # environment): what tests/support/studio_process.py prepares once per run.
    if _is_controller(config) and RUN_DIR_VARIABLE not in os.environ:
        config.studio_run_dir = run_directory()
        # On a parallel run, the longest of it starts at once, before the
        # workers have even collected the tests.
        if getattr(config.option, "numprocesses", None):
            postgres = TEST_POSTGRES_URL if reachable(TEST_POSTGRES_URL, 5432) else None
            config.studio_preparing = start_preparing(postgres)


def pytest_unconfigure(config) -> None:
    run_dir = getattr(config, "studio_run_dir", None)
    if run_dir is None:
        return
    for process in getattr(config, "studio_preparing", []):
        process.wait()
    if reachable(TEST_POSTGRES_URL, 5432):
        drop_template_database(TEST_POSTGRES_URL, run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    del os.environ[RUN_DIR_VARIABLE]


def pytest_collection_modifyitems(config, items) -> None:
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return LONG_MODULES.index(path) if path in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # stable: the order within a module is kept


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
    # Every delta its own event, unless a test is about coalescing.
    settings.STUDIO_COALESCE_MS = 0
    settings.STUDIO_DELIVERY_GRACE_SECONDS = 0.2
    # The runner's lease upkeep only where a test asks for it.
    settings.STUDIO_LEASE_SECONDS = 3600
    settings.LANGUAGE_CODE = "en"
    # Plans' limits only where a test is about them (tests/generation/test_limits.py).
    settings.STUDIO_ENFORCE_PLANS = False
    reset_slots()


@pytest.fixture(scope="session", autouse=True)
def _runner_upkeep_only_when_asked():
    """The runner is a module-level singleton whose loop outlives each test, and
    the session. Its lease upkeep (renewals, reaping) reaches the database every
    third of a lease: with the session's lease long, that happens only in tests
    that ask for a short one, never between tests ("Database access not
    allowed") nor after the test databases are gone. Never reverted, for that."""
    django_settings.STUDIO_LEASE_SECONDS = 3600


@pytest.fixture(scope="session", autouse=True)
def _close_background_connections(django_db_setup, django_db_blocker):
    """The runner and async code reach the database from threads of their own;
    close those connections so that the test database can be dropped."""
    yield
    with django_db_blocker.unblock():
        close_database_connections()
        SyncToAsync.single_thread_executor.submit(connections.close_all).result()
        _close_connection_pools()


def _close_connection_pools() -> None:
    """The pool (PostgreSQL) keeps connections of its own, shared by every thread,
    and refills itself in the background: close it, or it keeps knocking at a
    test database that has been dropped."""
    for connection in connections.all():
        if connection.alias in getattr(connection, "_connection_pools", {}):
            connection.close_pool()


def pytest_sessionfinish(session, exitstatus) -> None:
    # Dropping the test databases opens a pool of its own: close that one too.
    _close_connection_pools()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client
