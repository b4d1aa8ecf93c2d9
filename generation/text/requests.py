"""What to ask the model for a text generation, built from its row."""

from __future__ import annotations

from generation.models import Generation, UsageRecord
from generation.providers.base import TextRequest
from templates_catalog.forms import labelled_values
from templates_catalog.models import TemplateField
from templates_catalog.services import template_render_sample_answer


def generation_text_request(
    generation: Generation,
    *,
    fields: list[TemplateField] | None = None,
    max_output_tokens: int | None = None,
    with_sample_answer: bool = True,
) -> TextRequest:
    """What to ask the model for a text generation: at most the output tokens it
    reserved of the person's quota; the template's sample answer with the
    person's values only `with_sample_answer` (for the demo model)."""
    if fields is None:
        fields = list(generation.template.fields.all()) if generation.template else []
    if max_output_tokens is None:
        reserved = UsageRecord.objects.filter(generation=generation)
        max_output_tokens = reserved.values_list("charged_output_tokens", flat=True).first() or 0
    return TextRequest(
        system=generation.system_prompt,
        prompt=generation.prompt,
        language=generation.language,
        template_title=generation.template_title,
        inputs=labelled_values(generation.inputs, fields, generation.language),
        tier=generation.template.tier if generation.template else "standard",
        continue_from=answer_so_far(generation),
        max_output_tokens=max_output_tokens,
        sample_answer=template_render_sample_answer(
            template=generation.template,
            inputs=generation.inputs,
            language=generation.language,
            fields=fields,
        )
        if with_sample_answer and generation.template
        else "",
    )


def answer_so_far(generation: Generation, *, limit: int = 20) -> str:
    """The whole answer a continuation continues: every earlier part, in order."""
    parts = []
    current = generation.continued_from
    while current is not None and len(parts) < limit:
        parts.append(current.output)
        current = current.continued_from
    return "".join(reversed(parts))
