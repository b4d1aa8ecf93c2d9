"""Generations in the JSON API: start one, read it, cancel it, follow its events.

Inputs are validated by the same form as the template's page, so the API
accepts exactly what the page accepts and explains refusals by field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from generation.images.files import folder_of
from generation.lifecycle.limits import LimitExceeded
from generation.models import GeneratedImage, Generation
from generation.payloads import error_payload, usage_payload
from generation.reading.streams import event_stream, json_frames
from generation.reports.documents import (
    DOCUMENT_FORMATS,
    answer_document,
    attachment_headers,
    download_refusal,
)
from generation.services import generation_cancel, generation_create
from studio.api import ApiError, api_response, api_view, json_object
from studio.sse import event_stream_response, last_event_id
from templates_catalog.forms import stored_inputs, template_form
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import PromptRenderError, PromptSyntaxError

Type = TemplateField.Type
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def form_data_from_json(
    inputs: Mapping[str, Any], fields: list[TemplateField]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """JSON inputs as the form data the page's form reads, and the errors a form
    cannot see: unknown names and JSON types that do not fit the field."""
    by_name = {field.name: field for field in fields}
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in inputs.items():
        field = by_name.get(name)
        if field is None:
            errors[name] = [_("This template has no field of that name.")]
        elif value is None:
            continue
        elif field.type == Type.CHECKBOX:
            if not isinstance(value, bool):
                errors[name] = [_("Enter true or false.")]
            elif value:
                data[name] = "on"
        elif field.type == Type.MULTI_SELECT:
            if not isinstance(value, list) or not all(_is_scalar(item) for item in value):
                errors[name] = [_("Enter a list of choice values.")]
            else:
                data[name] = [str(item) for item in value]
        elif not _is_scalar(value):
            errors[name] = [_("Enter a string or a number.")]
        else:
            data[name] = str(value)
    return data, errors


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _absolute(request: HttpRequest, name: str, generation: Generation) -> str:
    return request.build_absolute_uri(reverse(name, args=[generation.pk]))


def image_payloads(request: HttpRequest, generation: Generation) -> list[dict[str, Any]]:
    def url(image: GeneratedImage, variant: str) -> str:
        path = reverse("api:generation_image", args=[generation.pk, image.index, variant])
        return request.build_absolute_uri(path)

    return [
        {
            "url": url(image, "png"),
            "webp_url": url(image, "webp"),
            "thumbnail_url": url(image, "thumbnail"),
            "width": image.width,
            "height": image.height,
            "bytes": image.bytes,
        }
        for image in generation.images.all()
    ]


def generation_payload(request: HttpRequest, generation: Generation) -> dict[str, Any]:
    has_error = bool(generation.error_code or generation.error_message)
    return {
        "id": str(generation.pk),
        "template": generation.template.slug if generation.template else None,
        "kind": generation.kind,
        "status": generation.status,
        "answer_format": generation.answer_format,
        "output": generation.output,
        "finish_reason": generation.finish_reason,
        "usage": usage_payload(generation),
        "image_count": generation.image_count,
        "images": image_payloads(request, generation),
        "error": error_payload(generation) if has_error else None,
        "created_at": generation.created_at,
        "first_token_at": generation.first_token_at,
        "finished_at": generation.finished_at,
    }


def _own_generation(request: HttpRequest, pk) -> Generation:
    """The asker's generation `pk`; someone else's is as unknown as a missing one."""
    generation = (
        Generation.objects.for_user(request.user).select_related("template").filter(pk=pk).first()
    )
    if generation is None:
        raise ApiError(404, _("There is no generation with this id."))
    return generation


def _visible_template(request: HttpRequest, body: dict[str, Any]) -> Template:
    slug = body.get("template")
    if not isinstance(slug, str) or not slug:
        raise ApiError(400, errors={"template": [_("Give the slug of a template.")]})
    # What is not a slug names no template; it never reaches a query.
    is_slug = _SLUG.fullmatch(slug) is not None
    visible = Template.objects.visible_to(request.user)
    template = visible.filter(slug=slug).first() if is_slug else None
    if template is None:
        raise ApiError(404, _("There is no template “%(slug)s”.") % {"slug": slug})
    return template


def _validated_inputs(
    template: Template, inputs: Mapping[str, Any], fields: list[TemplateField]
) -> dict[str, Any]:
    """The inputs as stored, or an ApiError with the page's messages by field name."""
    data, errors = form_data_from_json(inputs, fields)
    form = template_form(template, data, fields=fields)
    if form.is_valid() and not errors:
        return stored_inputs(form)
    form_errors = form.errors.get_json_data()
    messages = {name: [error["message"] for error in errs] for name, errs in form_errors.items()}
    raise ApiError(400, errors={**messages, **errors})


def _wants_event_stream(request: HttpRequest) -> bool:
    """Whether the client asked for the events rather than the JSON body."""
    return request.accepts("text/event-stream") and not request.accepts("application/json")


@api_view("POST")
def generation_create_view(request: HttpRequest) -> JsonResponse:
    body = json_object(request)
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        raise ApiError(400, errors={"inputs": [_("Give an object keyed by field name.")]})
    template = _visible_template(request, body)
    fields = list(template.fields.all())
    try:
        generation = generation_create(
            user=request.user,
            template=template,
            inputs=_validated_inputs(template, inputs, fields),
            language=translation.get_language(),
            fields=fields,
        )
    except (PromptRenderError, PromptSyntaxError) as exc:
        raise ApiError(400, str(exc)) from exc
    except LimitExceeded as exc:
        raise ApiError(429, exc.message, retry_after=exc.retry_after) from exc
    url = _absolute(request, "api:generation_detail", generation)
    if _wants_event_stream(request):
        # Start and follow in one round trip: the events from the first, exactly
        # as /events would send them (which a dropped client resumes from).
        response = event_stream_response(event_stream(generation.pk, 0, json_frames))
        response.status_code = 201
        response["Location"] = url
        response["X-Stream-URL"] = _absolute(request, "api:generation_events", generation)
        return response
    response = api_response(
        {
            "id": str(generation.pk),
            "status": generation.status,
            "kind": generation.kind,
            "stream_url": _absolute(request, "api:generation_events", generation),
            "url": url,
        },
        status=201,
    )
    response["Location"] = url
    return response


@api_view("GET")
def generation_detail(request: HttpRequest, pk) -> JsonResponse:
    return api_response(generation_payload(request, _own_generation(request, pk)))


@api_view("GET")
def generation_export(request: HttpRequest, pk) -> HttpResponse:
    """The answer as a file: `?format=docx|md|txt`."""
    generation = _own_generation(request, pk)
    format_name = request.GET.get("format", "")
    if format_name not in DOCUMENT_FORMATS:
        raise ApiError(400, _("Choose format=docx, md or txt."))
    refusal = download_refusal(generation)
    if refusal:
        raise ApiError(409 if generation.kind == Template.Kind.TEXT else 400, refusal)
    document = answer_document(generation, format_name)
    return HttpResponse(document.content, headers=attachment_headers(document))


@api_view("POST")
def generation_cancel_view(request: HttpRequest, pk) -> JsonResponse:
    """Ask the generation to stop: 202 whether it stops now, later, or had finished."""
    generation = _own_generation(request, pk)
    generation_cancel(generation=generation)
    generation.refresh_from_db(fields=["status"])
    return api_response({"id": str(generation.pk), "status": generation.status}, status=202)


@api_view("GET")
async def generation_events(request: HttpRequest, pk) -> HttpResponse:
    generation = await Generation.objects.for_user(request.user).only("pk").filter(pk=pk).afirst()
    if generation is None:
        raise ApiError(404, _("There is no generation with this id."))
    # The stream lets the request's thread and connection go (studio.sse).
    return event_stream_response(event_stream(generation.pk, last_event_id(request), json_frames))


# Variant in the URL: (the image's field, content type, file extension).
IMAGE_VARIANTS = {
    "png": ("original", "image/png", "png"),
    "webp": ("webp", "image/webp", "webp"),
    "thumbnail": ("thumbnail", "image/webp", "webp"),
}
_PREVIEW_NAME = re.compile(r"preview-\d{1,2}-\d{1,2}\.webp")
_CLAIM = re.compile(r"[0-9a-f]{32}")


def _image_response(name: str, content_type: str, *, download_as: str = "") -> HttpResponse:
    """A stored image for its owner (read whole: images are a few megabytes at most)."""
    try:
        with default_storage.open(name, "rb") as file:
            data = file.read()
    except FileNotFoundError as exc:
        raise ApiError(404, _("This image is no longer available.")) from exc
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"
    if download_as:
        response["Content-Disposition"] = content_disposition_header(True, download_as)
    return response


@api_view("GET")
def generation_image(request: HttpRequest, pk, index: int, variant: str) -> HttpResponse:
    """One image of one's own generation; `?download=1` saves it as a file."""
    generation = _own_generation(request, pk)
    image = generation.images.filter(index=index).first()
    if image is None or variant not in IMAGE_VARIANTS:
        raise ApiError(404, _("There is no such image."))
    field, content_type, extension = IMAGE_VARIANTS[variant]
    download_as = ""
    if request.GET.get("download") == "1":
        stem = generation.template.slug if generation.template else "image"
        download_as = f"{stem}-{str(generation.pk)[:8]}-{index + 1}.{extension}"
    return _image_response(getattr(image, field).name, content_type, download_as=download_as)


@api_view("GET")
def generation_preview(request: HttpRequest, pk, claim: str, name: str) -> HttpResponse:
    """A partial rendering shown while one's own image generation runs."""
    generation = _own_generation(request, pk)
    if not (_CLAIM.fullmatch(claim) and _PREVIEW_NAME.fullmatch(name)):
        raise ApiError(404, _("There is no such image."))
    return _image_response(f"{folder_of(generation.pk)}/{claim}/{name}", "image/webp")
