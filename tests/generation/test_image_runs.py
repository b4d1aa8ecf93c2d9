"""One attempt at an image generation (generation.images.attempts), in this process,
with a scripted provider at the provider seam: images stored once however
often the task is delivered, retries, failures, cancels and files."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from generation.events.log import EventName, events_from_database
from generation.images.attempts import RetryLater
from generation.images.attempts import image_generation_run as run
from generation.images.files import delete_generation_files, folder_of, generation_files
from generation.models import GeneratedImage, Generation
from generation.providers.base import ProviderError
from generation.services import generation_cancel, generation_create
from tests.factories import image_template
from tests.fakes import ScriptedImageProvider

Status = Generation.Status


@pytest.fixture
def template(db):
    return image_template()


def _create(user, template, **inputs) -> Generation:
    values = {"subject": "a ceramic mug", "aspect_ratio": "16:9", "count": 2} | inputs
    return generation_create(user=user, template=template, inputs=values, language="en")


def test_a_run_stores_each_image_as_png_webp_and_thumbnail(user, template):
    generation = _create(user, template)
    provider = ScriptedImageProvider()

    assert run(generation_id=generation.pk, attempt=0, provider=provider) is None

    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert generation.image_count == 2
    assert generation.model == "scripted-1"
    request = provider.requests[0]
    assert (request.count, request.aspect_ratio) == (2, "16:9")
    assert request.prompt == "A studio photo of a ceramic mug on a white background."
    images = list(generation.images.all())
    assert [image.index for image in images] == [0, 1]
    assert (images[0].width, images[0].height) == (64, 48)
    for image in images:
        with default_storage.open(image.original.name) as file:
            assert Image.open(file).format == "PNG"
        with default_storage.open(image.webp.name) as file:
            assert Image.open(file).format == "WEBP"
        assert image.bytes == default_storage.size(image.original.name)
    # Previews are gone once the images are there.
    assert not [name for name in generation_files(generation.pk) if "preview" in name]


def test_a_redelivered_task_does_not_store_the_images_again(user, template):
    generation = _create(user, template)
    run(generation_id=generation.pk, attempt=0, provider=ScriptedImageProvider())
    files = generation_files(generation.pk)
    again = ScriptedImageProvider()

    assert run(generation_id=generation.pk, attempt=0, provider=again) is None

    assert again.requests == []  # the model was not even asked
    assert GeneratedImage.objects.filter(generation=generation).count() == 2
    assert generation_files(generation.pk) == files
    generation.refresh_from_db()
    assert generation.image_count == 2


def test_a_delivery_waits_while_another_attempt_holds_a_live_lease(user, template, settings):
    settings.STUDIO_LEASE_SECONDS = 30
    generation = _create(user, template)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.RUNNING,
        claim="a" * 32,
        lease_expires_at=timezone.now() + timedelta(seconds=20),
    )
    provider = ScriptedImageProvider()

    outcome = run(generation_id=generation.pk, attempt=0, provider=provider)

    assert isinstance(outcome, RetryLater)
    assert 19 <= outcome.seconds <= 22
    assert provider.requests == []


def test_a_delivery_takes_over_from_a_dead_attempt_and_clears_its_files(user, template):
    generation = _create(user, template)
    dead_claim = "b" * 32
    leftover = default_storage.save(f"{folder_of(generation.pk)}/{dead_claim}/0.png", _file())
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.RUNNING,
        claim=dead_claim,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    assert run(generation_id=generation.pk, attempt=0, provider=ScriptedImageProvider()) is None

    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert generation.images.count() == 2
    assert not default_storage.exists(leftover)
    assert all(dead_claim not in name for name in generation_files(generation.pk))


@pytest.mark.django_db(transaction=True)
def test_an_attempt_that_lost_its_claim_records_nothing(user, template):
    generation = _create(user, template)
    gate = threading.Event()
    provider = ScriptedImageProvider(gate=gate, previews=1)
    outcome: list = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            run(generation_id=generation.pk, attempt=0, provider=provider)
        )
    )
    worker.start()
    assert provider.drawing.wait(10)
    # Another delivery took over (this attempt was presumed dead).
    Generation.objects.filter(pk=generation.pk).update(claim="c" * 32)
    gate.set()
    worker.join(10)

    assert outcome == [None]
    assert GeneratedImage.objects.filter(generation=generation).count() == 0
    generation.refresh_from_db()
    assert generation.status == Status.RUNNING  # still the other attempt's
    assert generation_files(generation.pk) == []


def test_a_busy_service_puts_the_generation_back_in_line_with_backoff(user, template, settings):
    settings.STUDIO_IMAGE_RETRY_BACKOFF_SECONDS = 2
    generation = _create(user, template)
    busy = ProviderError("rate_limited", "The model service is busy right now.")
    busy.retry_after = 7
    provider = ScriptedImageProvider(errors=[busy])

    outcome = run(generation_id=generation.pk, attempt=1, provider=provider)

    assert outcome == RetryLater(7)  # what the service asked for, above the 4 s backoff
    generation.refresh_from_db()
    assert generation.status == Status.QUEUED
    assert generation.claim == ""
    assert generation.progress["data"]["stage"] == "retrying"
    assert generation.progress["data"]["retry_in"] == 7
    # The next delivery draws it.
    assert run(generation_id=generation.pk, attempt=2, provider=provider) is None
    generation.refresh_from_db()
    assert (generation.status, generation.image_count) == (Status.COMPLETED, 2)


def test_a_service_still_busy_after_the_last_retry_fails_with_its_message(user, template, settings):
    settings.STUDIO_IMAGE_TASK_RETRIES = 2
    generation = _create(user, template)
    provider = ScriptedImageProvider(
        errors=[ProviderError("provider_unavailable", "The model service is unavailable.")]
    )

    assert run(generation_id=generation.pk, attempt=2, provider=provider) is None

    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error_message == "The model service is unavailable."
    assert generation.image_count == 0  # nothing charged


def test_a_safety_refusal_is_reported_and_not_retried(user, template):
    generation = _create(user, template)
    provider = ScriptedImageProvider(
        errors=[ProviderError("content_filter", "The safety filter withheld every image.")]
    )

    assert run(generation_id=generation.pk, attempt=0, provider=provider) is None

    generation.refresh_from_db()
    assert (generation.status, generation.finish_reason) == (Status.FAILED, "content_filter")
    assert generation.error_message == "The safety filter withheld every image."


def test_images_withheld_by_the_filter_are_noted_beside_the_rest(user, template):
    generation = _create(user, template, count=2)
    provider = ScriptedImageProvider(images=[_png()], filtered=["Sexual content"])

    run(generation_id=generation.pk, attempt=0, provider=provider)

    generation.refresh_from_db()
    assert (generation.status, generation.finish_reason) == (Status.COMPLETED, "content_filter")
    assert generation.image_count == 1
    assert "1 image was withheld" in generation.error_message


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a not really", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x89PNG\r\n\x1a\n"],
    ids=["empty", "gif", "svg", "truncated-png"],
)
def test_an_unreadable_image_from_the_service_fails_cleanly(user, template, data):
    generation = _create(user, template, count=1)

    run(generation_id=generation.pk, attempt=0, provider=ScriptedImageProvider(images=[data]))

    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error_message
    assert generation.image_count == 0
    assert GeneratedImage.objects.filter(generation=generation).count() == 0
    assert generation_files(generation.pk) == []


@pytest.mark.django_db(transaction=True)
def test_stop_while_drawing_cancels_without_images(user, template):
    generation = _create(user, template)
    gate = threading.Event()
    provider = ScriptedImageProvider(gate=gate, previews=2)
    worker = threading.Thread(
        target=lambda: run(generation_id=generation.pk, attempt=0, provider=provider)
    )
    worker.start()
    assert provider.drawing.wait(10)
    generation_cancel(generation=generation)
    gate.set()
    worker.join(10)

    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED
    assert generation.image_count == 0
    assert generation_files(generation.pk) == []


def test_stop_while_queued_cancels_before_any_drawing(user, template):
    generation = _create(user, template)
    generation_cancel(generation=generation)
    provider = ScriptedImageProvider()

    assert run(generation_id=generation.pk, attempt=0, provider=provider) is None

    assert provider.requests == []
    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED


def test_progress_is_numbered_after_the_queued_event_and_ends_with_done(user, template):
    generation = _create(user, template, count=1)
    assert generation.progress == {"event": "queued", "data": {"position": 1}}
    assert events_from_database(generation, 0)[0].name is EventName.QUEUED
    seen: list[dict] = []

    class Watching(ScriptedImageProvider):
        def generate(self, request, *, on_preview):
            def watch(preview):
                on_preview(preview)
                seen.append(Generation.objects.get(pk=generation.pk).progress)

            return super().generate(request, on_preview=watch)

    run(generation_id=generation.pk, attempt=0, provider=Watching(previews=2))

    stages = [state["data"]["stage"] for state in seen]
    percents = [state["data"]["percent"] for state in seen]
    assert stages == ["drawing", "drawing"]
    assert percents == sorted(percents)
    assert percents[0] > 5
    assert all(state["data"]["preview_url"].endswith(".webp") for state in seen)
    generation.refresh_from_db()
    # queued (1), starting (2), two previews (3, 4), processing (5), then done.
    assert generation.events_before_text == 5
    events = events_from_database(generation, 0)
    assert [(event.id, event.name) for event in events] == [(6, EventName.DONE)]


def test_the_queue_position_counts_earlier_image_generations_only(user, template):
    first = _create(user, template)
    second = _create(user, template)
    assert second.progress["data"]["position"] == 2

    run(generation_id=first.pk, attempt=0, provider=ScriptedImageProvider())

    second.refresh_from_db()
    assert second.progress == {"event": "queued", "data": {"position": 1}}


def test_deleting_a_generation_deletes_its_files(
    user, template, django_capture_on_commit_callbacks
):
    generation = _create(user, template)
    generation_id = generation.pk  # delete() clears the instance's pk
    run(generation_id=generation_id, attempt=0, provider=ScriptedImageProvider())
    assert generation_files(generation_id)

    with django_capture_on_commit_callbacks(execute=True):
        generation.delete()

    assert generation_files(generation_id) == []


def test_delete_generation_files_ignores_a_generation_without_files(db):
    delete_generation_files("00000000-0000-0000-0000-000000000000")


def _png() -> bytes:
    from tests.fakes import png_bytes

    return png_bytes()


def _file():
    from django.core.files.base import ContentFile

    return ContentFile(_png())


# --- The line for an image model (with Redis) --------------------------------------


@pytest.fixture
def image_line(settings):
    import redis

    from generation.lifecycle.slots import image_slots_for, reset_slots
    from tests.support.services import redis_url

    settings.REDIS_URL = redis_url()
    settings.STUDIO_MAX_CONCURRENT_GENERATIONS = 1
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    reset_slots()
    yield image_slots_for(ScriptedImageProvider.name)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    reset_slots()


def test_an_image_job_waits_its_turn_when_every_slot_of_its_model_is_busy(
    user, template, image_line
):
    generation = _create(user, template)
    assert image_line.take("another-job") == 0  # drawing elsewhere
    provider = ScriptedImageProvider()

    outcome = run(generation_id=generation.pk, attempt=0, provider=provider)

    assert outcome == RetryLater(2.0, waiting=True)
    assert provider.requests == []
    generation.refresh_from_db()
    assert generation.status == Status.QUEUED
    assert image_line.waiting() == 1

    image_line.give_back("another-job")
    assert run(generation_id=generation.pk, attempt=0, provider=provider) is None
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    # Its slot was given back: the next job draws at once.
    assert image_line.take("next-job") == 0
    assert image_line.waiting() == 0


def test_an_image_job_gives_its_slot_back_when_it_fails(user, template, image_line):
    generation = _create(user, template)
    broken = ScriptedImageProvider(errors=[ProviderError("content_filter", "Refused.")])
    assert run(generation_id=generation.pk, attempt=0, provider=broken) is None
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert image_line.take("next-job") == 0
