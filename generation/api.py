"""Generations in the JSON API: start one, read it, cancel it, follow its events.

Inputs are validated by the same form as the template's page, so the API
accepts exactly what the page accepts and explains refusals by field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from generation.database import release_request_connections
from generation.models import Generation
from generation.payloads import error_payload, usage_payload
from generation.services import generation_cancel, generation_create
from generation.sse import event_stream_response, last_event_id, sse_comment, sse_event, sse_retry
from generation.streams import client_events
from studio.api import ApiError, api_response, api_view, json_object
from templates_catalog.forms import stored_inputs, template_form
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import PromptRenderError, PromptSyntaxError
from templates_catalog.views import templates_visible_to

Type = TemplateField.Type


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


def generation_payload(generation: Generation) -> dict[str, Any]:
    has_error = bool(generation.error_code or generation.error_message)
    return {
        "id": str(generation.pk),
        "template": generation.template.slug if generation.template else None,
        "kind": generation.kind,
        "status": generation.status,
        "output": generation.output,
        "finish_reason": generation.finish_reason,
        "usage": usage_payload(generation),
        # Image results are not stored yet; text generations have none.
        "images": [],
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
    template = templates_visible_to(request.user).filter(slug=slug).first()
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
    url = _absolute(request, "api:generation_detail", generation)
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
    return api_response(generation_payload(_own_generation(request, pk)))


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
    # The stream must not hold this request's database connection while it lasts.
    await sync_to_async(release_request_connections)()
    return event_stream_response(api_event_stream(generation.pk, last_event_id(request)))


async def api_event_stream(generation_id, after: int) -> AsyncIterator[bytes]:
    """The generation's events after id `after`, with JSON data, until `done`."""
    # Daphne sends the headers only with the first body bytes: send some now.
    yield sse_retry(settings.STUDIO_SSE_RETRY_MS)
    async for event in client_events(generation_id, after):
        if event is None:
            yield sse_comment("ping")
        else:
            yield sse_event(event.id, event.name, json.dumps(event.data, ensure_ascii=False))
