# The Celery app is configured whenever Django is, so that tasks queued from
# web processes go to the configured broker (DESIGN: studio.celery:app).
from studio.celery import app as celery_app

__all__ = ("celery_app",)
