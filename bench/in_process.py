"""Django in the benchmark's own process, on a throwaway database."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.services import reachable
from tests.support.studio_process import fresh_postgres_database

POSTGRES = os.environ.get("STUDIO_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def setup_django(work: Path, database_name: str) -> str:
    """Set Django up with its data in `work`, on a fresh PostgreSQL database
    `database_name` when PostgreSQL is reachable (SQLite otherwise), migrated;
    returns which database."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="studio.settings",
        STUDIO_DATA_DIR=str(work),
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_SECURE_SSL_REDIRECT="false",
    )
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + "x" * 50)
    database = "sqlite"
    if reachable(POSTGRES, 5432):
        os.environ["DATABASE_URL"] = fresh_postgres_database(POSTGRES, database_name)
        database = "postgresql"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return database
