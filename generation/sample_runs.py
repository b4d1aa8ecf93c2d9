"""Sample runs: staff try a template on its sample inputs with the offline demo
model, from admin, without creating a generation (nothing is stored, nothing
is charged). The answer streams as Server-Sent Events with the page's event
names: `delta` (escaped text), `error`, and a final `done`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.conf import settings
from django.utils import translation
from django.utils.html import escape, format_html
from django.utils.translation import gettext as _

from generation.providers.base import TextDelta, TextRequest
from generation.providers.demo import DemoTextProvider
from studio.sse import sse_event, sse_retry
from templates_catalog.forms import (
    TemplateInputForm,
    form_data_from_inputs,
    labelled_values,
    stored_inputs,
    template_form,
)
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import PromptRenderError, PromptSyntaxError
from templates_catalog.services import template_render_prompt, template_render_sample_answer


@dataclass(frozen=True, slots=True)
class SampleRun:
    """The sample inputs through the template's form, and what the model would be
    asked (None when the samples do not validate or the prompt does not render)."""

    template: Template
    language: str
    form: TemplateInputForm
    request: TextRequest | None
    error: str = ""


def sample_run_prepare(
    *, template: Template, language: str, fields: list[TemplateField] | None = None
) -> SampleRun:
    """Validate the template's sample inputs in `language` and render its prompt."""
    fields = fields if fields is not None else list(template.fields.all())
    sample = getattr(template, f"sample_inputs_{language}", None) or template.sample_inputs
    form = template_form(template, form_data_from_inputs(sample or {}, fields), fields=fields)
    if not form.is_valid():
        return SampleRun(
            template, language, form, None, _("The sample inputs do not pass the form.")
        )
    inputs = stored_inputs(form)
    try:
        rendered = template_render_prompt(
            template=template, inputs=inputs, language=language, fields=fields
        )
    except (PromptRenderError, PromptSyntaxError) as exc:
        return SampleRun(template, language, form, None, str(exc))
    with translation.override(language):
        title = template.title
    request = TextRequest(
        system=rendered.system,
        prompt=rendered.prompt,
        language=language,
        template_title=title,
        inputs=labelled_values(inputs, fields, language),
        tier=template.tier,
        sample_answer=template_render_sample_answer(
            template=template, inputs=inputs, language=language, fields=fields
        ),
    )
    return SampleRun(template, language, form, request)


async def sample_run_events(
    run: SampleRun, *, after: int = 0, ui_language: str = "ja"
) -> AsyncIterator[bytes]:
    """The demo model's answer to `run` as events (messages in `ui_language`). The
    answer is deterministic, so a reconnect with Last-Event-ID `after` gets
    exactly the events after it."""
    yield sse_retry(settings.STUDIO_SSE_RETRY_MS)
    if run.request is None:
        yield sse_event(1, "error", escape(run.error))
        yield sse_event(2, "done", "")
        return
    event_id = 0
    async for item in DemoTextProvider().stream(run.request):
        event_id += 1
        if event_id <= after:
            continue
        if isinstance(item, TextDelta):
            yield sse_event(event_id, "delta", escape(item.text))
        else:
            with translation.override(ui_language):
                summary = _("Finished (%(reason)s): %(input)d tokens in, %(output)d out.") % {
                    "reason": item.finish_reason,
                    "input": item.input_tokens,
                    "output": item.output_tokens,
                }
            yield sse_event(event_id, "done", format_html('<p class="done">{}</p>', summary))
