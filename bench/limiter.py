"""What the limits add to a generation's time to first token.

    .venv/bin/python -m bench.limiter [--rounds 2000]      (or `make bench-limiter`)

Prints one JSON document:

- `slot_acquire_ms`: taking a free slot before the model is called (one Lua
  call to Redis; `local`: without Redis), p50/p99. This is all the line adds
  to the time to first token when nobody waits.
- `slot_release_ms`: giving it back after the answer (not on the path to the
  first token).
- `plan_check_ms`: the plan's check and reservation in the transaction that
  records a generation (a row lock and one aggregate query), on PostgreSQL when
  it is reachable, SQLite otherwise.

Redis is required (STUDIO_BENCH_REDIS, default redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.in_process import setup_django
from bench.streaming import percentiles
from tests.support.services import reachable

REDIS = os.environ.get("STUDIO_BENCH_REDIS", "redis://127.0.0.1:6379/13")


async def slot_timings(slots, rounds: int) -> tuple[list[float], list[float]]:
    acquire, release = [], []
    for number in range(rounds):
        key = f"bench-{number}"
        started = time.perf_counter()
        context = slots.slot(key, lambda position: None)
        await context.__aenter__()
        acquired = time.perf_counter()
        await context.__aexit__(None, None, None)
        acquire.append(acquired - started)
        release.append(time.perf_counter() - acquired)
    return acquire, release


def plan_check_timings(rounds: int) -> list[float]:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from generation.lifecycle.limits import reserve
    from studio.models import Plan

    Plan.objects.update(max_concurrent=None, requests_per_minute=None, daily_output_tokens=10**9)
    user, _ = get_user_model().objects.get_or_create(username="bench-limits")
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        with transaction.atomic():
            reserve(user=user, kind="text")
        timings.append(time.perf_counter() - started)
    return timings


async def run(args: argparse.Namespace) -> dict:
    from django.conf import settings

    from generation.lifecycle.slots import LocalSlots, RedisSlots

    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 32
    settings.STUDIO_ENFORCE_PLANS = True
    redis_slots = RedisSlots("bench", REDIS)
    await redis_slots.client.flushdb()
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    await slot_timings(redis_slots, 50)  # warm up: connection, script load
    acquire, release = await slot_timings(redis_slots, args.rounds)
    local_acquire, _ = await slot_timings(LocalSlots("bench"), args.rounds)
    report["slot_acquire_ms"] = {
        "redis": percentiles(acquire),
        "local": percentiles(local_acquire),
    }
    report["slot_release_ms"] = {"redis": percentiles(release)}
    await redis_slots.client.flushdb()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    if not reachable(REDIS, 6379):
        raise SystemExit(f"Redis is not reachable at {REDIS}")
    with tempfile.TemporaryDirectory(prefix="studio-bench-limits-") as work:
        database = setup_django(Path(work), "studio_bench_limits")
        report = asyncio.run(run(args))
        plan_check_timings(50)
        report["plan_check_ms"] = {database: percentiles(plan_check_timings(args.rounds // 4))}
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
