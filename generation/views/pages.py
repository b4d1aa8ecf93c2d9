"""Starting a generation from a template's form, watching it stream, stopping,
continuing and re-running it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import aget_object_or_404, get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from generation.lifecycle.limits import LimitExceeded
from generation.models import Generation
from generation.reading.streams import PageStream, event_stream
from generation.reports.documents import (
    DOCUMENT_FORMATS,
    answer_document,
    attachment_headers,
    download_refusal,
)
from generation.services import generation_cancel, generation_continue, generation_create
from studio.sse import event_stream_response
from templates_catalog.forms import (
    form_data_from_inputs,
    labelled_values,
    stored_inputs,
    template_form,
)
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import PromptRenderError, PromptSyntaxError
from templates_catalog.views import template_page


def _start(
    request: HttpRequest, template: Template, data, fields: list[TemplateField]
) -> HttpResponse:
    """Validate `data` against the template's fields and start a generation, or
    show the form again with the errors next to the fields."""
    form = template_form(template, data, fields=fields)
    generation = None
    if form.is_valid():
        try:
            generation = generation_create(
                user=request.user, template=template, inputs=stored_inputs(form), fields=fields
            )
        except (PromptRenderError, PromptSyntaxError) as exc:
            form.add_error(None, str(exc))
        except LimitExceeded as exc:
            form.add_error(None, exc.message)
    context = {"template": template, "form": form, "generation": generation}
    if request.htmx:
        response = render(request, "templates_catalog/template_detail.html#workspace", context)
        if generation is None:
            return response
        # The address of what the page now shows: a refresh shows it again.
        return push_url(response, reverse("generation:workspace", args=[generation.pk]))
    if generation:
        return redirect(generation)
    return render(request, "templates_catalog/template_detail.html", context)


@require_POST
@login_required
def generation_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(Template.objects.visible_to(request.user), slug=slug)
    return _start(request, template, request.POST, list(template.fields.all()))


@require_POST
@login_required
def generation_regenerate(request: HttpRequest, pk) -> HttpResponse:
    previous = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    template = get_object_or_404(Template.objects.visible_to(request.user), pk=previous.template_id)
    fields = list(template.fields.all())
    return _start(request, template, form_data_from_inputs(previous.inputs, fields), fields)


@require_POST
@login_required
def generation_cancel_view(request: HttpRequest, pk) -> HttpResponse:
    """Stop: the page's stream then ends with the text so far and `done`."""
    generation = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    generation_cancel(generation=generation)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect(generation)


@require_POST
@login_required
def generation_continue_view(request: HttpRequest, pk) -> HttpResponse:
    """Continue an answer that stopped at the length limit, as a new generation."""
    previous = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    if previous.finish_reason != "length":
        return redirect(previous)
    try:
        return redirect(generation_continue(generation=previous))
    except LimitExceeded as exc:
        messages.error(request, exc.message)
        return redirect(previous)


def _on_its_template(request: HttpRequest, mine: Generation, **page) -> HttpResponse | None:
    """The page of the template one of my generations came from, the form filled
    with its inputs (`page`: what else template_page shows); None when I may no
    longer use that template."""
    if mine.template_id is None:
        return None
    visible = Template.objects.visible_to(request.user)
    if (template := visible.filter(pk=mine.template_id).first()) is None:
        return None
    fields = list(template.fields.all())
    inputs = mine.inputs if isinstance(mine.inputs, dict) else {}
    initial = form_data_from_inputs(inputs, fields)
    return template_page(request, template, fields=fields, initial=initial, **page)


@require_GET
@login_required
def generation_rerun(request: HttpRequest, pk) -> HttpResponse:
    """The template's page with the form filled with one of my generations' inputs."""
    generation = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    if (response := _on_its_template(request, generation, rerun_of=generation)) is None:
        raise Http404
    return response


@require_GET
@login_required
def generation_workspace(request: HttpRequest, pk) -> HttpResponse:
    """A generation where it was started: its template's page, the form filled
    with its inputs and the answer beside it, still streaming while it runs.
    The page's address once Generate is pressed, so a refresh keeps the page."""
    generation = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    return _on_its_template(request, generation, generation=generation) or redirect(generation)


@require_GET
@login_required
def generation_detail(request: HttpRequest, pk) -> HttpResponse:
    generation = get_object_or_404(
        Generation.objects.for_user(request.user).select_related(
            "template", "template_version", "usage"
        ),
        pk=pk,
    )
    fields = list(generation.template.fields.all()) if generation.template else []
    if fields:
        inputs = labelled_values(generation.inputs, fields, translation.get_language())
    else:
        inputs = [(name, str(value)) for name, value in generation.inputs.items()]
    return render(request, "generation/detail.html", {"generation": generation, "inputs": inputs})


@require_GET
async def generation_stream(request: HttpRequest, pk) -> HttpResponse:
    user = await request.auser()
    generation = await aget_object_or_404(
        Generation.objects.for_user(user).only("pk", "answer_format"), pk=pk
    )
    # Whatever Last-Event-ID says, the page's stream starts from the beginning:
    # its first `delta` replaces all the text shown (PageStream).
    encode = PageStream(
        generation.pk,
        request,
        allowance="allowance" in request.GET,
        plain=generation.is_plain_text,
    )
    return event_stream_response(event_stream(generation.pk, 0, encode))


@require_GET
@login_required
def generation_download(request: HttpRequest, pk, format_name: str) -> HttpResponse:
    """The answer as a Word document, Markdown or plain text."""
    generation = get_object_or_404(Generation.objects.for_user(request.user), pk=pk)
    if format_name not in DOCUMENT_FORMATS:
        raise Http404
    refusal = download_refusal(generation)
    if refusal:
        messages.error(request, refusal)
        return redirect(generation.get_absolute_url())
    document = answer_document(generation, format_name)
    return HttpResponse(document.content, headers=attachment_headers(document))
