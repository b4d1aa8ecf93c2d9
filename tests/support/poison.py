"""A database that refuses one row: a trigger that rejects any generation whose
output contains POISON, as a database refuses a row it cannot store. What one
bad row does to the statements that cover many (checkpoints, leases, reaping)
is then seen exactly as in production."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection

MARKER = "POISON"
_TABLE = "generation_generation"

_POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION refuse_poison() RETURNS trigger AS $$
    BEGIN
        IF NEW.output LIKE '%{MARKER}%' THEN RAISE EXCEPTION 'this row is refused'; END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    f"CREATE TRIGGER refuse_poison BEFORE UPDATE OF output ON {_TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
]
_POSTGRES_DROP = [
    f"DROP TRIGGER IF EXISTS refuse_poison ON {_TABLE}",
    "DROP FUNCTION IF EXISTS refuse_poison()",
]
_SQLITE = [
    f"""CREATE TRIGGER refuse_poison BEFORE UPDATE OF output ON {_TABLE}
    WHEN NEW.output LIKE '%{MARKER}%'
    BEGIN SELECT RAISE(ABORT, 'this row is refused'); END"""
]
_SQLITE_DROP = ["DROP TRIGGER IF EXISTS refuse_poison"]


def statements(vendor: str) -> tuple[list[str], list[str]]:
    if vendor == "postgresql":
        return _POSTGRES, _POSTGRES_DROP
    return _SQLITE, _SQLITE_DROP


@contextlib.contextmanager
def poisoned_database() -> Iterator[None]:
    """The test database refuses POISON in a generation's output meanwhile."""
    create, drop = statements(connection.vendor)
    with connection.cursor() as cursor:
        for statement in create:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in drop:
                cursor.execute(statement)
