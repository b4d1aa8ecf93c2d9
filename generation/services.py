"""Writes to generations. The runner calls the `generation_*` steps below from
its event loop through sync_to_async; each is one short transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone, translation

from generation.models import Generation
from templates_catalog.models import Template, TemplateField
from templates_catalog.services import template_render_prompt

Status = Generation.Status


def generation_create(
    *,
    user,
    template: Template,
    inputs: Mapping[str, Any],
    language: str | None = None,
    fields: list[TemplateField] | None = None,
) -> Generation:
    """Record a queued generation of `template` with validated `inputs` and start it
    once the row is committed."""
    from generation.runner import runner

    language = language or translation.get_language() or "ja"
    rendered = template_render_prompt(
        template=template, inputs=inputs, language=language, fields=fields
    )
    with translation.override(language):
        title = template.title
    generation = Generation.objects.create(
        user=user,
        template=template,
        template_title=title,
        kind=template.kind,
        language=language,
        inputs=dict(inputs),
        system_prompt=rendered.system,
        prompt=rendered.prompt,
    )
    transaction.on_commit(lambda: runner.submit(generation.pk))
    return generation


def generation_start(*, generation_id: UUID, provider: str, model: str) -> Generation | None:
    """Mark a queued generation running; None if it is no longer queued."""
    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update(of=("self",))
            .select_related("template")
            .get(pk=generation_id)
        )
        if generation.status != Status.QUEUED:
            return None
        generation.status = Status.RUNNING
        generation.started_at = timezone.now()
        generation.provider, generation.model = provider, model
        generation.save(update_fields=["status", "started_at", "provider", "model"])
    return generation


def generation_record_first_token(*, generation_id: UUID, events_before_text: int) -> None:
    Generation.objects.filter(pk=generation_id).update(
        first_token_at=timezone.now(), events_before_text=events_before_text
    )


def generation_checkpoint(*, generation_id: UUID, output: str) -> None:
    """Save the text so far, so that a crash loses at most one checkpoint interval."""
    Generation.objects.filter(pk=generation_id, status=Status.RUNNING).update(output=output)


def generation_finish(
    *,
    generation_id: UUID,
    status: str,
    output: str,
    finish_reason: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    error_code: str = "",
    error_message: str = "",
) -> Generation:
    with transaction.atomic():
        generation = Generation.objects.select_for_update().get(pk=generation_id)
        generation.status = status
        generation.output = output
        generation.finish_reason = finish_reason
        generation.input_tokens = input_tokens
        generation.output_tokens = output_tokens
        generation.error_code = error_code
        generation.error_message = error_message
        generation.finished_at = timezone.now()
        generation.save()
    return generation
