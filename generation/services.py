"""The commands a request calls: start a generation (text on this process's
runner, images as a Celery task), continue one, stop one. The row writes
themselves are in generation.lifecycle."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext

from generation.events.images import image_events_publish_end, image_events_publish_queued
from generation.lifecycle import limits
from generation.lifecycle.transitions import (
    generation_fail,
    generation_record_image,
    generation_record_text,
    generation_request_cancel,
)
from generation.lifecycle.usage import usage_record_create
from generation.models import Generation
from generation.providers import get_text_provider
from generation.providers.images import requested_images
from generation.tasks import generate_images
from generation.text.requests import generation_text_request
from generation.text.runner import runner
from templates_catalog.models import Template, TemplateField
from templates_catalog.services import template_render_prompt
from templates_catalog.versions import template_version_current

logger = logging.getLogger(__name__)
Status = Generation.Status


def generation_create(
    *,
    user,
    template: Template,
    inputs: Mapping[str, Any],
    language: str | None = None,
    fields: list[TemplateField] | None = None,
    continued_from: Generation | None = None,
) -> Generation:
    """Record a queued generation of `template` with validated `inputs` and start it
    once the row is committed."""
    language = language or translation.get_language() or "ja"
    rendered = template_render_prompt(
        template=template, inputs=inputs, language=language, fields=fields
    )
    with translation.override(language):
        title = template.title
    # The id is on the template's row already; only a template that no writer
    # has versioned yet (made in code, or before versions) records one now.
    version_id = template.current_version_id
    if version_id is None:
        version_id = template_version_current(template=template, fields=fields).pk
    return _queue(
        user=user,
        template=template,
        template_version_id=version_id,
        template_title=title,
        kind=template.kind,
        answer_format=template.answer_format,
        language=language,
        inputs=dict(inputs),
        system_prompt=rendered.system,
        prompt=rendered.prompt,
        continued_from=continued_from,
        template_fields=fields,
    )


def generation_continue(*, generation: Generation) -> Generation:
    """Start a generation that picks up where `generation` stopped at the length limit.

    It reuses the stored prompt rather than the template's current one, so the
    continuation follows the answer it continues even if staff changed it since.
    """
    return _queue(
        user=generation.user,
        template=generation.template,
        template_version_id=generation.template_version_id,
        template_title=generation.template_title,
        kind=generation.kind,
        answer_format=generation.answer_format,
        language=generation.language,
        inputs=generation.inputs,
        system_prompt=generation.system_prompt,
        prompt=generation.prompt,
        continued_from=generation,
    )


def _queue(*, template_fields: list[TemplateField] | None = None, **fields: Any) -> Generation:
    """Record a queued generation, with its reservation against the person's
    quotas, and start it once the row is committed: a text generation on this
    process's runner (leased to this process), an image generation as a Celery
    task (generation.images.attempts). Raises limits.LimitExceeded."""
    with transaction.atomic():
        if fields["kind"] == Template.Kind.IMAGE:
            reservation = limits.reserve(
                user=fields["user"], kind=fields["kind"], images=requested_images(fields["inputs"])
            )
            generation = generation_record_image(**fields)
            transaction.on_commit(lambda: _send_image_task(generation))
        else:
            provider = runner.provider or get_text_provider()
            limits.refuse_when_the_line_is_full(provider)
            reservation = limits.reserve(user=fields["user"], kind=fields["kind"])
            generation = generation_record_text(**fields)
        usage_record_create(
            generation=generation,
            output_tokens=reservation.output_tokens,
            images=reservation.images,
        )
        if generation.kind == Template.Kind.TEXT:
            # What to ask the model is worked out here, on the request's own
            # thread, so that the runner's threads only write.
            request = generation_text_request(
                generation,
                fields=template_fields,
                max_output_tokens=reservation.output_tokens,
                with_sample_answer=provider.uses_sample_answers,
            )
            transaction.on_commit(lambda: runner.submit(generation.pk, request=request))
    return generation


def _send_image_task(generation: Generation) -> None:
    image_events_publish_queued(generation=generation)
    try:
        generate_images.apply_async(args=[str(generation.pk)], retry=False)
    except Exception:
        # The broker is unreachable: say so now rather than leave it queued.
        logger.exception("the image task for %s could not be queued", generation.pk)
        with translation.override(generation.language):
            message = gettext("The image service is not available right now. Please try again.")
        generation_fail(
            generation_id=generation.pk,
            error_code="queue_unavailable",
            error_message=message,
            statuses=(Status.QUEUED,),
        )
        image_events_publish_end(generation_id=generation.pk)


def generation_cancel(*, generation: Generation) -> None:
    """Ask for a generation to stop. A queued one is cancelled at once; a running
    one is stopped by the process that runs it, which keeps the text so far and
    sends `done`. Cancelling a finished generation does nothing."""
    stopped = generation_request_cancel(generation_id=generation.pk)
    if generation.kind == Template.Kind.IMAGE:
        # The worker holding a running one sees the request at its next step.
        if stopped:
            image_events_publish_end(generation_id=generation.pk)
    else:
        # Running, or waiting in line: its run stops, leaves the line and sends `done`.
        runner.cancel(generation.pk)
