"""The shipped catalogue files as read from YAML, read once per test process
(with libyaml: the Python parser takes seconds for them), and a catalogue's
content in the database, to compare one with another."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from modeltranslation.translator import translator

from templates_catalog.models import Category, Template, TemplateField

CATALOG = Path(__file__).resolve().parents[2] / "fixtures" / "catalog"


@functools.cache
def shipped_templates() -> tuple[dict, ...]:
    """Every template in the shipped files, in file order. Shared: do not change them."""
    return tuple(
        template
        for path in sorted(CATALOG.glob("*.yaml"))
        for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for template in document.get("templates") or []
    )


SKIPPED_COLUMNS = {
    "id",
    "template",
    "category",
    "created_at",
    "updated_at",
    "current_version",
    # Bookkeeping of the import (which document it came from), not content.
    "source_digest",
}


def content_columns(model) -> list[str]:
    """The columns that hold content: each language's column of a translated field
    (its untranslated column is modeltranslation's, written in whatever language
    was active), and the rest but ids and timestamps."""
    translated = set(translator.get_options_for_model(model).fields)
    return [
        field.attname
        for field in model._meta.concrete_fields
        if field.name not in SKIPPED_COLUMNS and field.name not in translated
    ]


def catalogue_content() -> dict[str, Any]:
    """Every category and template in the database, with every column (each
    language's), the fields with theirs, the related templates in their order,
    and the current version's digest."""
    categories = {
        c.slug: {"order": c.order, "name_ja": c.name_ja, "name_en": c.name_en}
        for c in Category.objects.all()
    }
    templates = {}
    template_columns = content_columns(Template)
    field_columns = content_columns(TemplateField)
    queryset = Template.objects.select_related("category", "current_version").prefetch_related(
        "fields", "related_links__to_template"
    )
    for template in queryset:
        templates[template.slug] = {
            **{name: getattr(template, name) for name in template_columns},
            "category": template.category.slug,
            "digest": template.current_version.digest,
            "related": [link.to_template.slug for link in template.related_links.all()],
            "fields": [
                {name: getattr(field, name) for name in field_columns}
                for field in template.fields.all()
            ],
        }
    return {"categories": categories, "templates": templates}
