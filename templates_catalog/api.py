"""The catalogue in the JSON API: templates and the fields a client must fill."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _

from studio.api import ApiError, api_response, api_view
from templates_catalog.browsing import MAX_QUERY_LENGTH
from templates_catalog.forms import DEFAULT_MAX_LENGTH
from templates_catalog.models import Template, TemplateField
from templates_catalog.search import search_templates

Type = TemplateField.Type


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def field_payload(field: TemplateField) -> dict[str, Any]:
    """A field as the form built from it validates it (the same limits, the same choices)."""
    payload: dict[str, Any] = {
        "name": field.name,
        "label": field.label,
        "type": field.type,
        "required": field.required,
    }
    if field.type in TemplateField.CHOICE_TYPES:
        payload["choices"] = [
            {"value": value, "label": label} for value, label in field.choice_pairs()
        ]
    if field.type in DEFAULT_MAX_LENGTH:
        if field.min_length:
            payload["min_length"] = field.min_length
        payload["max_length"] = field.max_length or DEFAULT_MAX_LENGTH[field.type]
    if field.type in (Type.NUMBER, Type.INTEGER):
        if field.min_value is not None:
            payload["min"] = _number(field.min_value)
        if field.max_value is not None:
            payload["max"] = _number(field.max_value)
    return payload


def template_payload(template: Template) -> dict[str, Any]:
    return {
        "slug": template.slug,
        "title": template.title,
        "description": template.description,
        "kind": template.kind,
        "answer_format": template.answer_format,
        "category": template.category.slug,
        "fields": [field_payload(field) for field in template.fields.all()],
    }


@api_view("GET")
def template_list(request: HttpRequest) -> JsonResponse:
    templates = (
        Template.objects.visible_to(request.user)
        .select_related("category")
        .prefetch_related("fields")
    )
    if category := request.GET.get("category", "").strip():
        templates = templates.filter(category__slug=category)
    if kind := request.GET.get("kind", "").strip():
        if kind not in Template.Kind.values:
            raise ApiError(
                400,
                _("kind must be one of %(kinds)s.") % {"kinds": ", ".join(Template.Kind.values)},
            )
        templates = templates.filter(kind=kind)
    if query := request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]:
        templates = search_templates(templates, query)
    return api_response({"results": [template_payload(template) for template in templates]})
