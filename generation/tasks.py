"""Celery tasks. Thin: they take ids, call a service, and own retries."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from generation.images.attempts import RetryLater, image_generation_run


@shared_task(bind=True, name="generation.generate_images", max_retries=None)
def generate_images(self, generation_id: str, failures: int = 0) -> None:
    """Draw the images of one generation (idempotent: see generation.images.attempts).
    `failures` counts the deliveries that failed; waiting one's turn is not one."""
    outcome = image_generation_run(generation_id=UUID(generation_id), attempt=failures)
    if isinstance(outcome, RetryLater):
        failures += 0 if outcome.waiting else 1
        raise self.retry(countdown=outcome.seconds, kwargs={"failures": failures})
