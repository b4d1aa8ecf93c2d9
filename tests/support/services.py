"""Real services for tests: Redis and PostgreSQL on this machine.

In CI (CI=true) a missing service fails the test; elsewhere the test is
skipped with the reason.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI") == "true"


def _worker_redis_url(url: str) -> str:
    """Each pytest-xdist worker gets a Redis database of its own (tests flush
    theirs): the given number for the first worker, one below for the next…"""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker.removeprefix("gw") or 0)
    base, _, number = url.rpartition("/")
    return f"{base}/{int(number) - offset}" if number.isdigit() else url


TEST_REDIS_URL = _worker_redis_url(
    os.environ.get("STUDIO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
)
TEST_POSTGRES_URL = os.environ.get("STUDIO_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def require(url: str, default_port: int, what: str) -> str:
    if not reachable(url, default_port):
        message = f"{what} is not reachable at {url}"
        if IN_CI:
            pytest.fail(f"{message} (required in CI)")
        pytest.skip(message)
    return url


def redis_url() -> str:
    return require(TEST_REDIS_URL, 6379, "Redis")


def postgres_url() -> str:
    return require(TEST_POSTGRES_URL, 5432, "PostgreSQL")
