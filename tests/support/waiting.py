"""Waiting for something to become true, polling briefly, with a generous limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from generation.models import Generation
from generation.text.runner import runner


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """`predicate()`'s first true value; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def wait_for_runs(timeout: float = 30.0) -> None:
    """Block until every generation this process's runner started has finished,
    so that none writes to the database while a test's data is taken away."""
    for generation_id in Generation.objects.values_list("pk", flat=True):
        runner.wait(generation_id, timeout=timeout)
