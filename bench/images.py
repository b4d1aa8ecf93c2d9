"""Image benchmark: how fast a Celery worker picks up a queued image job, and how
long post-processing (generation.images.imaging) takes for a 1024×1024 image.

    .venv/bin/python -m bench.images [--jobs 100] [--rounds 30]

(or `make bench-images`). Prints one JSON document:

- `pickup_ms`: queue-to-start latency, from the moment the generation is
  queued (its row is written and the task sent on commit) to the moment a
  worker has claimed it (its `started_at`), p50/p99 over `jobs` jobs sent one
  after another to an idle worker (one prefork process, Redis broker,
  PostgreSQL), as in production.
- `post_processing_ms`: `process_image` (verify, strip metadata, PNG + WebP +
  thumbnail) for a 1024×1024 photo-like PNG and for a demo-model PNG,
  p50/p99 over `rounds` rounds.

Needs PostgreSQL and Redis on this machine (STUDIO_BENCH_POSTGRES,
STUDIO_BENCH_REDIS); uses a throwaway database `studio_bench_images`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

POSTGRES = os.environ.get("STUDIO_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("STUDIO_BENCH_REDIS", "redis://127.0.0.1:6379/13")
DATABASE = "studio_bench_images"


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "min": round(ordered[0], 2),
        "samples": len(ordered),
    }


def photo_like_png(size: int = 1024) -> bytes:
    """A PNG that compresses like a photo: smooth gradients with sensor noise."""
    from PIL import Image, ImageFilter

    noise = Image.effect_noise((size, size), 40).filter(ImageFilter.GaussianBlur(1))
    red = Image.linear_gradient("L").resize((size, size))
    blue = Image.radial_gradient("L").resize((size, size))
    image = Image.merge("RGB", (red, noise, blue))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def post_processing(rounds: int) -> dict:
    from generation.images.imaging import process_image
    from generation.providers.demo_images import draw_demo_image
    from generation.providers.images import ImageRequest

    buffer = io.BytesIO()
    draw_demo_image(ImageRequest(prompt="A product photo of a mug"), 0).save(buffer, "PNG")
    inputs = {"photo_like": photo_like_png(), "demo_model": buffer.getvalue()}
    report = {}
    for name, data in inputs.items():
        process_image(data)  # warm up
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            process_image(data)
            timings.append((time.perf_counter() - started) * 1000)
        report[name] = percentiles(timings) | {"input_bytes": len(data)}
    return report


def pickup(jobs: int, work: Path) -> dict:
    from django.contrib.auth import get_user_model

    from generation.models import Generation
    from generation.services import generation_create
    from templates_catalog.models import Category, Template, TemplateField
    from tests.support.studio_process import WorkerProcess

    user, _ = get_user_model().objects.get_or_create(username="bench")
    category, _ = Category.objects.get_or_create(
        slug="bench", defaults={"name_en": "Bench", "name_ja": "Bench"}
    )
    template, _ = Template.objects.get_or_create(
        slug="bench-image",
        defaults={
            "category": category,
            "kind": "image",
            "status": "published",
            "title_en": "Bench",
            "title_ja": "Bench",
            "prompt_body_en": "A poster of {{ subject }}.",
            "prompt_body_ja": "{{ subject }}のポスター",
        },
    )
    TemplateField.objects.get_or_create(
        template=template, name="subject", defaults={"label_en": "Subject", "label_ja": "Subject"}
    )
    worker = WorkerProcess(dict(os.environ), work / "worker.log", "bench")
    samples = []
    try:
        for number in range(jobs + 3):
            generation = generation_create(
                user=user, template=template, inputs={"subject": "tea"}, language="en"
            )
            deadline = time.monotonic() + 30
            while True:
                row = Generation.objects.values("created_at", "started_at", "status").get(
                    pk=generation.pk
                )
                if row["status"] not in ("queued", "running"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"job {number} was not picked up:\n{worker.log.read_text()}")
                time.sleep(0.005)
            if number >= 3:  # the first jobs warm the worker up
                samples.append((row["started_at"] - row["created_at"]).total_seconds() * 1000)
    finally:
        worker.stop()
    return percentiles(samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)

    from tests.support.studio_process import drop_postgres_database, fresh_postgres_database

    work = Path(tempfile.mkdtemp(prefix="studio-bench-images-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "studio.settings",
            "DATABASE_URL": fresh_postgres_database(POSTGRES, DATABASE),
            "REDIS_URL": REDIS,
            "STUDIO_DATA_DIR": str(work),
            "STUDIO_IMAGE_PROVIDER": "demo",
            "STUDIO_DEMO_IMAGE_SECONDS": "0",
            "STUDIO_LOG_LEVEL": "WARNING",
        }
    )
    import django
    import redis
    from django.core.management import call_command

    redis.Redis.from_url(REDIS).flushdb()
    django.setup()
    call_command("migrate", verbosity=0)
    report = {
        "post_processing_ms": post_processing(args.rounds),
        "pickup_ms": pickup(args.jobs, work),
        "cpus": os.cpu_count(),
    }
    from django.db import connections

    connections.close_all()
    drop_postgres_database(POSTGRES, DATABASE)
    redis.Redis.from_url(REDIS).flushdb()
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
