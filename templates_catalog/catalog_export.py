"""Export templates as catalogue source files (the format of
fixtures/catalog/README.md): one document per category, as YAML or JSON.

Export writes what templates_catalog.catalog_io imports, so that exporting and
importing again gives the same templates; the YAML looks like the hand-written
files (prompts as literal blocks, tags and choices on one line each).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from templates_catalog.catalog_io import CHOICE_KEYS, LANGS
from templates_catalog.choices import ChoiceParseError, parse_choices
from templates_catalog.models import Category, Template, TemplateField

# What catalog_documents reads from each template, in a query each.
CATALOG_PREFETCH = ("fields", "related_links__to_template")


def _number(value: Any) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _choices_document(field: TemplateField) -> list[dict[str, str]]:
    labels: dict[str, dict[str, str]] = {}
    values: list[str] = []
    for lang in LANGS:
        try:
            pairs = parse_choices(getattr(field, f"choices_{lang}") or "")
        except ChoiceParseError:
            pairs = []
        for value, label in pairs:
            if value not in labels:
                values.append(value)
                labels[value] = {}
            labels[value][lang] = label
    return [{"value": value, **labels[value]} for value in values]


def _field_document(field: TemplateField) -> dict[str, Any]:
    data: dict[str, Any] = {"name": field.name, "type": field.type, "required": field.required}
    if field.default:
        data["default"] = field.default
    for name in ("min_length", "max_length"):
        if getattr(field, name) is not None:
            data[name] = getattr(field, name)
    for name in ("min_value", "max_value"):
        if getattr(field, name) is not None:
            data[name] = _number(getattr(field, name))
    for name in ("label", "placeholder", "help_text"):
        for lang in LANGS:
            value = getattr(field, f"{name}_{lang}")
            if value or name == "label":
                data[f"{name}_{lang}"] = value or ""
    if choices := _choices_document(field):
        data["choices"] = choices
    return data


def template_document(template: Template, fields: Iterable[TemplateField]) -> dict[str, Any]:
    """One template as the catalogue format has it (the README's keys, in its order;
    the answer format only when it is not Markdown, as hand-written files have it)."""
    own_format = template.answer_format != Template.AnswerFormat.MARKDOWN
    data: dict[str, Any] = {
        "slug": template.slug,
        "kind": template.kind,
        "tier": template.tier,
        **({"answer_format": template.answer_format} if own_format else {}),
        "status": template.status,
        "order": template.order,
        **{f"tags_{lang}": template.tags_in(lang) for lang in LANGS},
    }
    # In the model's order (by position); prefetched with related_links__to_template.
    if related := [link.to_template.slug for link in template.related_links.all()]:
        data["related"] = related
    sources = {
        "title": "title",
        "description": "description",
        "system_prompt": "system_prompt",
        "prompt": "prompt_body",
    }
    for key, name in sources.items():
        for lang in LANGS:
            data[f"{key}_{lang}"] = getattr(template, f"{name}_{lang}") or ""
    data["fields"] = [_field_document(field) for field in fields]
    samples = {
        lang: sample for lang in LANGS if (sample := getattr(template, f"sample_inputs_{lang}"))
    }
    if samples:
        data["sample_inputs"] = samples
    answers = {
        lang: answer for lang in LANGS if (answer := getattr(template, f"sample_answer_{lang}"))
    }
    if answers:
        data["sample_answers"] = answers
    return data


def catalog_documents(
    templates: Iterable[Template], *, categories: Iterable[Category] = ()
) -> list[dict[str, Any]]:
    """One document per category of `templates` (and per one of `categories`, even
    without templates), in catalogue order. Prefetch the templates' fields and
    related links (CATALOG_PREFETCH)."""
    grouped: dict[int, tuple[Category, list[Template]]] = {
        category.pk: (category, []) for category in categories
    }
    for template in templates:
        grouped.setdefault(template.category_id, (template.category, []))[1].append(template)
    documents = []
    for category, members in sorted(grouped.values(), key=lambda g: (g[0].order, g[0].slug)):
        members.sort(key=lambda template: (template.order, template.slug))
        documents.append(
            {
                "category": {
                    "slug": category.slug,
                    "order": category.order,
                    "name_ja": category.name_ja,
                    "name_en": category.name_en,
                },
                "templates": [template_document(t, t.fields.all()) for t in members],
            }
        )
    return documents


class _CatalogDumper(yaml.SafeDumper):
    """Writes files that look like the hand-written ones: prompts as literal
    blocks, tags as `[a, b]`, each choice as `{value: …, ja: …, en: …}`."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _is_short_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list) and not (isinstance(value, str) and "\n" in value)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.SequenceNode:
    flow = bool(value) and all(_is_short_scalar(item) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.MappingNode:
    flow = set(value) <= CHOICE_KEYS and all(_is_short_scalar(item) for item in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


_CatalogDumper.add_representer(str, _represent_text)
_CatalogDumper.add_representer(list, _represent_list)
_CatalogDumper.add_representer(dict, _represent_dict)


def dump_catalog(documents: list[dict[str, Any]], fmt: str) -> str:
    """Documents as a YAML stream (one document each) or JSON (an object for
    one document, a list for several)."""
    if fmt == "json":
        data: Any = documents[0] if len(documents) == 1 else documents
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return yaml.dump_all(
        documents, Dumper=_CatalogDumper, allow_unicode=True, sort_keys=False, width=100
    )
