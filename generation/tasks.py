"""Celery tasks. Thin: they take ids, call a service, and own retries."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from generation.image_runs import RetryLater, image_generation_run


@shared_task(bind=True, name="generation.generate_images", max_retries=None)
def generate_images(self, generation_id: str) -> None:
    """Draw the images of one generation (idempotent: see generation.image_runs)."""
    outcome = image_generation_run(generation_id=UUID(generation_id), attempt=self.request.retries)
    if isinstance(outcome, RetryLater):
        raise self.retry(countdown=outcome.seconds)
