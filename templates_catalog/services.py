"""Catalogue services: turning a template and validated inputs into a prompt,
copying a template, and linking templates to related ones."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import translation

from templates_catalog.forms import longest_inputs, prompt_values
from templates_catalog.models import RelatedTemplate, Template, TemplateField
from templates_catalog.prompting import (
    PromptBudgetError,
    PromptRenderError,
    PromptSyntaxError,
    can_outgrow_its_inputs,
    render_prompt,
)
from templates_catalog.versions import template_version_current

COPY_SUFFIXES = {"ja": "（コピー）", "en": " (copy)"}
# The last line of a plain-text template's prompt, in the prompt's language:
# what the person pastes into a mail or a chat shows Markdown as stray marks.
PLAIN_TEXT_INSTRUCTIONS = {
    "ja": (
        "Markdown記法（**や#、表）は使わず、"
        "そのまま貼り付けられるプレーンテキストで書いてください。"
    ),
    "en": "Write plain text ready to paste: no Markdown (no ** or #, no tables).",
}


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
    """Render the template's system prompt and body in `language` (falling back to
    Japanese); a plain-text template's body ends with the line that asks for no Markdown."""
    fields = fields if fields is not None else list(template.fields.all())
    values = prompt_values(inputs, fields, language)
    with translation.override(language):
        system_source, body_source = template.system_prompt, template.prompt_body
    prompt = render_prompt(body_source, values)
    if template.answer_format == Template.AnswerFormat.PLAIN:
        # In the body's own language: one missing in `language` falls back to Japanese.
        own = (getattr(template, f"prompt_body_{language}", "") or "").strip()
        body_language = language if own and language in PLAIN_TEXT_INSTRUCTIONS else "ja"
        prompt = f"{prompt}\n\n{PLAIN_TEXT_INSTRUCTIONS[body_language]}"
    return RenderedPrompt(
        system=render_prompt(system_source or "", values),
        prompt=prompt,
        language=language,
    )


def template_render_sample_answer(
    *,
    template: Template,
    inputs: Mapping[str, Any],
    language: str,
    fields: list[TemplateField] | None = None,
) -> str:
    """The template's sample answer in `language` (no other language stands in),
    with the person's values where it names fields; '' when it has none or it
    does not render with these values."""
    source = getattr(template, f"sample_answer_{language}", "") or ""
    if not source.strip():
        return ""
    fields = fields if fields is not None else list(template.fields.all())
    try:
        return render_prompt(source, prompt_values(inputs, fields, language))
    except (PromptRenderError, PromptSyntaxError):
        return ""


def template_prompt_budget_problems(
    *, template: Template, fields: list[TemplateField], languages: tuple[str, ...] = ("ja", "en")
) -> list[str]:
    """Render every prompt of the template with the largest inputs its form accepts;
    the first body that would cost more than a prompt may (prompting's budget) is
    named with the reason. Other render errors are left to the sample checks."""
    inputs = longest_inputs(fields)
    for language in languages:
        values = prompt_values(inputs, fields, language)
        for name in ("system_prompt", "prompt_body", "sample_answer"):
            source = getattr(template, f"{name}_{language}", None) or ""
            try:
                if not can_outgrow_its_inputs(source):
                    continue
                render_prompt(source, values)
            except PromptBudgetError as exc:
                # One is enough to refuse the template; trying the rest could
                # take a budget's time each.
                return [f"{name}_{language}: {exc}"]
            except (PromptRenderError, PromptSyntaxError):
                continue  # reported by the syntax and sample checks
    return []


def _free_copy_slug(slug: str) -> str:
    """`<slug>-copy`, else `<slug>-copy-2`, `-copy-3`…: the first one no template has,
    shortened to fit the slug's length."""
    limit = Template._meta.get_field("slug").max_length
    for number in itertools.count(1):
        suffix = "-copy" if number == 1 else f"-copy-{number}"
        candidate = slug[: limit - len(suffix)].rstrip("-") + suffix
        if not Template.objects.filter(slug=candidate).exists():
            return candidate
    raise AssertionError("unreachable")


def template_duplicate(*, template: Template, user=None) -> Template:
    """A draft copy of `template` with its fields, under a free `-copy` slug and
    with "(copy)" after its titles, with its first version recorded."""
    title_limit = Template._meta.get_field("title").max_length
    with transaction.atomic():
        copy = Template.objects.get(pk=template.pk)
        fields = list(TemplateField.objects.filter(template=copy))
        copy.pk = None
        copy._state.adding = True
        copy.slug = _free_copy_slug(template.slug)
        copy.status = Template.Status.DRAFT
        copy.current_version = None
        copy.source_digest = ""
        for lang, suffix in COPY_SUFFIXES.items():
            title = getattr(copy, f"title_{lang}") or ""
            setattr(copy, f"title_{lang}", title[: title_limit - len(suffix)] + suffix)
        copy.save()
        for field in fields:
            field.pk = None
            field._state.adding = True
            field.template = copy
        TemplateField.objects.bulk_create(fields)
        RelatedTemplate.objects.bulk_create(
            RelatedTemplate(
                from_template=copy, to_template_id=link.to_template_id, order=link.order
            )
            for link in RelatedTemplate.objects.filter(from_template=template)
        )
        template_version_current(template=copy, user=user, fields=fields)
    return copy


def templates_related_replace(*, links: Mapping[str, Sequence[str]]) -> list[str]:
    """Make each template (by slug) link to these templates, in this order, in
    place of the links it had; only those whose list changed are rewritten. The
    slugs that no template has are returned, and then nothing is changed."""
    slugs = set(links) | {slug for related in links.values() for slug in related}
    ids = dict(Template.objects.filter(slug__in=slugs).values_list("slug", "pk"))
    unknown = sorted(slugs - set(ids))
    if unknown:
        return unknown
    current: dict[int, list[int]] = {ids[slug]: [] for slug in links}
    for from_id, to_id in RelatedTemplate.objects.filter(from_template_id__in=current).values_list(
        "from_template_id", "to_template_id"
    ):  # in the model's order: by template, then position
        current[from_id].append(to_id)
    wanted = {ids[slug]: [ids[other] for other in related] for slug, related in links.items()}
    stale = [pk for pk, related in wanted.items() if current[pk] != related]
    if stale:
        RelatedTemplate.objects.filter(from_template_id__in=stale).delete()
        RelatedTemplate.objects.bulk_create(
            RelatedTemplate(from_template_id=pk, to_template_id=other, order=position)
            for pk in stale
            for position, other in enumerate(wanted[pk], start=1)
        )
    return []
