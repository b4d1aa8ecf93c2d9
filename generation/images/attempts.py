"""One attempt at an image generation, inside a Celery task (generation.tasks).

The task may be delivered more than once: a worker that dies mid-job has its
job put back on the queue (acks_late, reject_on_worker_lost), a retry after a
429 is a new delivery, and a broker may redeliver anyway. So an attempt first
*claims* the generation under a row lock, with a token of its own and a lease
it renews while it works:

- a finished generation is left alone (the job was done already);
- a generation another attempt holds, with its lease still running, is tried
  again once the lease would have lapsed (the holder may be alive);
- otherwise this attempt takes it, and deletes the files any earlier attempt
  left behind.

Files are written under the attempt's own folder, and the images are recorded
in one transaction that checks the claim is still this attempt's: however
many deliveries there are, a generation gets its images once, and is charged
(`image_count`) once. A failure records a clear message and no images.
"""

from __future__ import annotations

import logging
import threading
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from generation.events.images import (
    image_event_publish,
    image_queue_positions_publish,
)
from generation.events.log import EventName
from generation.images import imaging
from generation.images.files import delete_generation_files, folder_of
from generation.lifecycle.images import (
    RetryLater,
    image_claim,
    image_finish,
    image_release_for_retry,
    image_renew_lease,
)
from generation.lifecycle.slots import RedisSlots, image_slots_for
from generation.models import GeneratedImage, Generation
from generation.providers.base import ProviderError
from generation.providers.images import (
    ASPECT_RATIOS,
    ImagePreview,
    ImageProvider,
    ImageRequest,
    ImageResult,
    get_image_provider,
    is_retryable,
    requested_images,
    retry_after_of,
)
from templates_catalog.forms import labelled_values

logger = logging.getLogger(__name__)
Status = Generation.Status

# Progress, in percent, at each stage; drawing fills the span in between.
_STARTED, _DRAWN, _PROCESSING = 5, 85, 90


class _Cancelled(Exception):
    """Someone asked for the generation to stop."""


class _ClaimLost(Exception):
    """Another attempt took the generation over (this one was presumed dead)."""


def image_request(generation: Generation) -> ImageRequest:
    """The provider's request from a generation: its prompt, and the parameters
    that image templates take from fields of these names."""
    inputs = generation.inputs
    aspect_ratio = str(inputs.get("aspect_ratio") or "1:1")
    fields = list(generation.template.fields.all()) if generation.template else []
    return ImageRequest(
        prompt=generation.prompt,
        negative_prompt=str(inputs.get("negative_prompt") or ""),
        aspect_ratio=aspect_ratio if aspect_ratio in ASPECT_RATIOS else "1:1",
        count=requested_images(inputs),
        language=generation.language,
        template_title=generation.template_title,
        tier=generation.template.tier if generation.template else "standard",
        inputs=labelled_values(inputs, fields, generation.language),
    )


class _LeaseKeeper:
    """Renews the attempt's lease from a thread of its own while the model draws
    (a single request may take a minute or more without a word)."""

    def __init__(self, generation_id: UUID, claim: str, line: RedisSlots | None = None) -> None:
        self.generation_id = generation_id
        self.claim = claim
        self.line = line
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="image-lease", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.STUDIO_LEASE_SECONDS / 3):
                renewed = image_renew_lease(generation_id=self.generation_id, claim=self.claim)
                self.lost = self.lost or not renewed
                if self.line is not None:
                    self.line.keep(str(self.generation_id))
        except Exception:
            logger.exception("the lease of image generation %s was not renewed", self.generation_id)
        finally:
            connection.close()


class _Attempt:
    """The work of one claimed attempt: previews, files and the final record."""

    def __init__(self, generation_id: UUID, claim: str, request: ImageRequest) -> None:
        self.generation_id = generation_id
        self.claim = claim
        self.request = request
        self.folder = f"{folder_of(generation_id)}/{claim}"
        self.written: list[str] = []

    def progress(self, data: dict, *, check_cancel: bool = True) -> None:
        event = image_event_publish(
            generation_id=self.generation_id, name=EventName.PROGRESS, data=data, claim=self.claim
        )
        if event is None:
            raise _ClaimLost
        stop_asked = Generation.objects.filter(
            pk=self.generation_id, cancel_requested_at__isnull=False
        )
        if check_cancel and stop_asked.exists():
            raise _Cancelled

    def save(self, name: str, data: bytes) -> str:
        stored = default_storage.save(f"{self.folder}/{name}", ContentFile(data))
        self.written.append(stored)
        return stored

    def on_preview(self, preview: ImagePreview) -> None:
        try:
            data = imaging.preview_image(preview.data)
        except imaging.ImageRejected:
            return  # a preview is a nicety: the final image is checked properly
        name = self.save(f"preview-{preview.index}-{preview.step}.webp", data)
        count = self.request.count
        span = (_DRAWN - _STARTED) / count
        # Models send up to three previews of an image: each moves a quarter on.
        done = preview.index + min(preview.step, 3) / 4
        self.progress(
            {
                "stage": "drawing",
                "percent": int(_STARTED + span * done),
                "image": preview.index + 1,
                "images": count,
                "preview_url": reverse(
                    "api:generation_preview",
                    args=[self.generation_id, self.claim, name.rsplit("/", 1)[-1]],
                ),
            }
        )

    def record(self, result: ImageResult, processed: list[imaging.ProcessedImage]) -> bool:
        """Store the images and end the generation, if this attempt still holds it."""
        rows = []
        for index, image in enumerate(processed):
            rows.append(
                GeneratedImage(
                    generation_id=self.generation_id,
                    index=index,
                    original=self.save(f"{index}.png", image.png),
                    webp=self.save(f"{index}.webp", image.webp),
                    thumbnail=self.save(f"{index}-thumbnail.webp", image.thumbnail),
                    width=image.width,
                    height=image.height,
                    bytes=len(image.png),
                )
            )
        notice = ""
        if result.filtered:
            notice = ngettext(
                "%(count)d image was withheld by the model's safety filter.",
                "%(count)d images were withheld by the model's safety filter.",
                len(result.filtered),
            ) % {"count": len(result.filtered)}
        with transaction.atomic():
            holder = (
                Generation.objects.select_for_update()
                .filter(pk=self.generation_id, claim=self.claim, status=Status.RUNNING)
                .values_list("pk", flat=True)
                .first()
            )
            if holder is None:
                return False
            GeneratedImage.objects.bulk_create(rows)
            image_finish(
                self.generation_id,
                claim=self.claim,
                status=Status.COMPLETED,
                finish_reason="content_filter" if result.filtered else "stop",
                error_message=notice,
                image_count=len(rows),
                model=result.model,
                output=result.revised_prompt,
            )
        self.discard_previews()
        return True

    def discard_previews(self) -> None:
        for name in [n for n in self.written if "/preview-" in n]:
            default_storage.delete(name)

    def fail(self, code: str, message: str, *, finish_reason: str = "") -> None:
        """End the generation as failed, leaving no file of this attempt behind."""
        self.discard()
        image_finish(
            self.generation_id,
            claim=self.claim,
            status=Status.FAILED,
            finish_reason=finish_reason,
            error_code=code,
            error_message=message,
        )

    def discard(self) -> None:
        for name in self.written:
            default_storage.delete(name)
        self.written.clear()


def image_generation_run(
    *, generation_id: UUID, attempt: int, provider: ImageProvider | None = None
) -> RetryLater | None:
    """Run one delivery of an image generation's task. Returns when to try again,
    if the task should; records every other outcome on the generation."""
    provider = provider or get_image_provider()
    line, key = image_slots_for(provider.name), str(generation_id)
    if line is not None and line.take(key):
        # Every slot for this model is busy: wait in line (its place on the page
        # is its place among the queued image generations).
        return RetryLater(settings.STUDIO_IMAGE_SLOT_POLL_SECONDS, waiting=True)
    claim = image_claim(generation_id, provider=provider.name, model_for=provider.model_for)
    if not isinstance(claim, str):
        if claim is None and line is not None:
            line.give_back(key)  # finished or stopped: nobody needs the slot
        # Otherwise a live attempt holds the generation, and the slot with it.
        return claim
    try:
        return _run_claimed(generation_id, claim, provider, attempt=attempt, line=line)
    finally:
        if line is not None:
            line.give_back(key)


def _run_claimed(
    generation_id: UUID,
    claim: str,
    provider: ImageProvider,
    *,
    attempt: int,
    line: RedisSlots | None,
) -> RetryLater | None:
    generation = Generation.objects.select_related("template").get(pk=generation_id)
    # Whatever an attempt that died left behind.
    delete_generation_files(generation_id, keep=claim)
    image_queue_positions_publish()
    with translation.override(generation.language):
        run = _Attempt(generation_id, claim, image_request(generation))
        try:
            return _draw(run, provider, attempt=attempt, line=line)
        except _ClaimLost:
            run.discard()
            return None


def _draw(
    run: _Attempt, provider: ImageProvider, *, attempt: int, line: RedisSlots | None
) -> RetryLater | None:
    generation_id, claim = run.generation_id, run.claim
    try:
        run.progress({"stage": "starting", "percent": _STARTED, "images": run.request.count})
        with _LeaseKeeper(generation_id, claim, line) as lease:
            result = provider.generate(run.request, on_preview=run.on_preview)
        if lease.lost:
            raise _ClaimLost
        run.progress({"stage": "processing", "percent": _PROCESSING})
        processed = [imaging.process_image(data) for data in result.images]
        if not processed:
            raise ProviderError("content_filter", _("The model returned no image."))
        if not run.record(result, processed):
            raise _ClaimLost
        return None
    except _Cancelled:
        run.discard()
        image_finish(generation_id, claim=claim, status=Status.CANCELLED, finish_reason="cancelled")
    except ProviderError as exc:
        run.discard()
        if is_retryable(exc) and attempt < settings.STUDIO_IMAGE_TASK_RETRIES:
            return _release_for_retry(run, exc, attempt=attempt)
        reason = "content_filter" if exc.code == "content_filter" else ""
        run.fail(exc.code, exc.message, finish_reason=reason)
    except imaging.ImageRejected as exc:
        run.fail(exc.code, exc.message)
    except SoftTimeLimitExceeded:
        run.fail("timeout", _("Drawing the images took too long. Please try again."))
    except _ClaimLost:
        raise
    except Exception:
        logger.exception("image generation %s failed", generation_id)
        run.fail("unknown_error", _("Something went wrong while generating. Please try again."))
    return None


def _release_for_retry(run: _Attempt, error: ProviderError, *, attempt: int) -> RetryLater | None:
    """Put the generation back in line to be tried again after a backoff (or what
    the service asked for), telling the page why it waits."""
    backoff = settings.STUDIO_IMAGE_RETRY_BACKOFF_SECONDS * (2**attempt)
    seconds = max(backoff, retry_after_of(error) or 0.0)
    retrying = {"stage": "retrying", "percent": 0, "retry_in": round(seconds)}
    try:
        run.progress(retrying | {"message": error.message}, check_cancel=False)
    except _ClaimLost:
        return None
    released = image_release_for_retry(
        generation_id=run.generation_id, claim=run.claim, seconds=seconds
    )
    return RetryLater(seconds) if released else None
