"""Catalogue services: turning a template and validated inputs into a prompt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import translation

from templates_catalog.forms import prompt_values
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import render_prompt


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    system: str
    prompt: str
    language: str


def template_render_prompt(
    *,
    template: Template,
    inputs: Mapping[str, Any],
    language: str,
    fields: list[TemplateField] | None = None,
) -> RenderedPrompt:
    """Render the template's system prompt and body in `language` (falling back to Japanese)."""
    fields = fields if fields is not None else list(template.fields.all())
    values = prompt_values(inputs, fields, language)
    with translation.override(language):
        system_source, body_source = template.system_prompt, template.prompt_body
    return RenderedPrompt(
        system=render_prompt(system_source or "", values),
        prompt=render_prompt(body_source, values),
        language=language,
    )
