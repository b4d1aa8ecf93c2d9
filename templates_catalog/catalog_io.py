"""Import catalogue source files (fixtures/catalog/*.yaml, format in its
README), as YAML or JSON (their export: templates_catalog.catalog_export).

Import is strict (an unknown key is an error, so a YAML slip cannot silently
change a label) and idempotent: categories and templates are matched by slug
and updated in place, and a template's fields and related templates are
replaced by the file's. Related templates are linked once every document is in,
so a template may name one from a later file or one imported before.
Every imported template gets its current version recorded
(templates_catalog.versions).

A file holds one category per document: a YAML file may hold several
documents (separated by `---`), a JSON file one object or a list of them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from templates_catalog.catalog_files import CatalogError, parse_catalog
from templates_catalog.choices import format_choices
from templates_catalog.models import Category, Template, TemplateField, split_tags
from templates_catalog.prompting import PromptSyntaxError, unknown_names
from templates_catalog.services import (
    template_prompt_budget_problems,
    templates_related_replace,
)
from templates_catalog.versions import template_version_current

LANGS = ("ja", "en")
CATEGORY_KEYS = {"slug", "order", "name_ja", "name_en"}
TEMPLATE_KEYS = {
    "slug",
    "kind",
    "tier",
    "answer_format",
    "order",
    "status",
    "tags_ja",
    "tags_en",
    "related",
    "title_ja",
    "title_en",
    "description_ja",
    "description_en",
    "system_prompt_ja",
    "system_prompt_en",
    "prompt_ja",
    "prompt_en",
    "fields",
    "sample_inputs",
    "sample_answers",
}
FIELD_KEYS = {
    "name",
    "type",
    "required",
    "default",
    "min_length",
    "max_length",
    "min_value",
    "max_value",
    "choices",
    "label_ja",
    "label_en",
    "help_text_ja",
    "help_text_en",
    "placeholder_ja",
    "placeholder_en",
}
CHOICE_KEYS = {"value", "ja", "en"}


@dataclass
class ImportReport:
    categories: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    # Imported before from the very same document, and not edited since: skipped.
    unchanged: list[str] = field(default_factory=list)
    # The templates whose content changed: each got a new version.
    changed: list[str] = field(default_factory=list)
    # Each template's related templates (slugs), with where the file names them.
    related: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    @property
    def templates(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)

    @property
    def slugs(self) -> list[str]:
        return self.created + self.updated + self.unchanged


def _check_keys(where: str, data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CatalogError(f"{where}: expected a mapping")
    unknown = sorted(map(str, set(data) - allowed))
    if unknown:
        raise CatalogError(f"{where}: unknown keys {', '.join(unknown)}")
    return data


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _field(where: str, data: dict[str, Any], order: int) -> TemplateField:
    _check_keys(where, data, FIELD_KEYS)
    choices = data.get("choices")
    choices = [] if choices is None else choices
    if not isinstance(choices, list):
        raise CatalogError(f"{where}.choices: expected a list")
    for number, choice in enumerate(choices, start=1):
        _check_keys(f"{where}.choices[{number}]", choice, CHOICE_KEYS)
        if choice.get("value") in (None, ""):
            raise CatalogError(f"{where}.choices[{number}]: a choice needs a value")
    instance = TemplateField(
        name=data.get("name", ""),
        type=data.get("type", ""),
        required=bool(data.get("required", False)),
        default=_as_text(data.get("default")),
        min_length=data.get("min_length"),
        max_length=data.get("max_length"),
        min_value=data.get("min_value"),
        max_value=data.get("max_value"),
        order=order,
    )
    for lang in LANGS:
        setattr(instance, f"label_{lang}", data.get(f"label_{lang}") or "")
        setattr(instance, f"help_text_{lang}", data.get(f"help_text_{lang}") or "")
        setattr(instance, f"placeholder_{lang}", data.get(f"placeholder_{lang}") or "")
        pairs = [(str(c["value"]), str(c.get(lang) or c["value"])) for c in choices]
        setattr(instance, f"choices_{lang}", format_choices(pairs))
    return instance


def _validate(where: str, instance) -> None:
    # Uniqueness is the importer's own (templates are matched by slug, field names
    # checked per template) and related rows are the ones it just saved: checking
    # them again costs a query each, thousands for the catalogue.
    relations = [field.name for field in instance._meta.concrete_fields if field.is_relation]
    try:
        instance.full_clean(exclude=relations, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise CatalogError(f"{where}: {exc.message_dict}") from exc


def import_category_file(data: Any, *, source: str, report: ImportReport, user=None) -> None:
    data = _check_keys(source, data, {"category", "templates"})
    cat = _check_keys(f"{source}: category", data.get("category"), CATEGORY_KEYS)
    category = Category.objects.filter(slug=cat.get("slug")).first() or Category(
        slug=cat.get("slug")
    )
    category.order = cat.get("order", 0)
    category.name_ja, category.name_en = cat.get("name_ja"), cat.get("name_en")
    _validate(f"{source}: category", category)
    category.save()
    report.categories += 1
    templates = data.get("templates")
    templates = [] if templates is None else templates
    if not isinstance(templates, list):
        raise CatalogError(f"{source}: templates: expected a list")
    # One query for what the file's templates were last imported from, instead
    # of one each: a restart with nothing changed then costs next to nothing.
    slugs = [raw.get("slug") for raw in templates if isinstance(raw, dict)]
    digests = dict(
        Template.objects.filter(slug__in=[s for s in slugs if isinstance(s, str)]).values_list(
            "slug", "source_digest"
        )
    )
    for number, raw in enumerate(templates, start=1):
        where = f"{source}: templates[{number}]"
        _import_template(where, raw, category, report, user=user, digests=digests)


def _answer_format(where: str, value: Any) -> str:
    """The template's answer format; absent means Markdown. Anything else is
    refused here, before the template is saved, naming what is allowed."""
    if value is None:
        return Template.AnswerFormat.MARKDOWN
    allowed = " or ".join(Template.AnswerFormat.values)
    if value not in Template.AnswerFormat.values:
        raise CatalogError(
            f"{where}.answer_format: {value!r} is not an answer format; use {allowed}"
        )
    return value


def _source_digest(category: Category, raw: dict[str, Any]) -> str:
    """The digest of a template's document as imported (with its category's slug)."""
    canonical = json.dumps(
        {"category": category.slug, "template": raw},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _import_template(
    where: str,
    raw: Any,
    category: Category,
    report: ImportReport,
    *,
    user=None,
    digests: dict[str, str],
) -> None:
    if isinstance(raw, dict) and raw.get("slug"):
        where = f"{where} ({raw['slug']})"
    if isinstance(raw, dict) and "tags" in raw:
        raise CatalogError(
            f"{where}: tags are given per language: use tags_ja and tags_en "
            "(scripts/split_catalog_tags.py splits a file's tags)"
        )
    raw = _check_keys(where, raw, TEMPLATE_KEYS)
    related = _related_slugs(where, raw)
    digest = _source_digest(category, raw)
    if digests.get(raw.get("slug")) == digest:
        report.unchanged.append(raw["slug"])
        report.related[raw["slug"]] = (where, related)
        return
    template = Template.objects.filter(slug=raw.get("slug")).first()
    created = template is None
    template = template or Template(slug=raw.get("slug"))
    template.category = category
    template.kind = raw.get("kind", Template.Kind.TEXT)
    template.status = raw.get("status", Template.Status.PUBLISHED)
    template.tier = raw.get("tier", Template.Tier.STANDARD)
    template.answer_format = _answer_format(where, raw.get("answer_format"))
    template.order = raw.get("order", 0)
    for lang in LANGS:
        tags = raw.get(f"tags_{lang}") or []
        if not isinstance(tags, str | list):
            raise CatalogError(f"{where}.tags_{lang}: expected a list")
        words = split_tags(tags) if isinstance(tags, str) else [str(tag) for tag in tags]
        setattr(template, f"tags_{lang}", ", ".join(words))
    samples = _jsonable(
        _check_keys(f"{where}.sample_inputs", raw.get("sample_inputs") or {}, set(LANGS))
    )
    for lang, sample in samples.items():
        if not isinstance(sample, dict):
            raise CatalogError(f"{where}.sample_inputs.{lang}: expected a mapping")
    answers = _check_keys(f"{where}.sample_answers", raw.get("sample_answers") or {}, set(LANGS))
    for lang, answer in answers.items():
        if not isinstance(answer, str):
            raise CatalogError(f"{where}.sample_answers.{lang}: expected text")
    for lang in LANGS:
        template_fields = {
            "title": raw.get(f"title_{lang}"),
            "description": raw.get(f"description_{lang}"),
            "system_prompt": raw.get(f"system_prompt_{lang}"),
            "prompt_body": raw.get(f"prompt_{lang}"),
        }
        for name, value in template_fields.items():
            setattr(template, f"{name}_{lang}", value or "")
        setattr(template, f"sample_inputs_{lang}", samples.get(lang) or {})
        setattr(template, f"sample_answer_{lang}", answers.get(lang) or "")
    template.source_digest = digest
    _validate(where, template)

    raw_fields = raw.get("fields")
    raw_fields = [] if raw_fields is None else raw_fields
    if not isinstance(raw_fields, list):
        raise CatalogError(f"{where}.fields: expected a list")
    fields = [
        _field(f"{where}.fields[{n}]", item, order=n * 10)
        for n, item in enumerate(raw_fields, start=1)
    ]
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise CatalogError(f"{where}: two fields share a name")
    for lang in LANGS:
        sources = (f"prompt_body_{lang}", f"system_prompt_{lang}", f"sample_answer_{lang}")
        for source_name in sources:
            try:
                unknown = unknown_names(getattr(template, source_name), names)
            except PromptSyntaxError as exc:
                raise CatalogError(f"{where}.{source_name}: {exc}") from exc
            if unknown:
                raise CatalogError(f"{where}.{source_name}: unknown fields {', '.join(unknown)}")
    for problem in template_prompt_budget_problems(template=template, fields=fields):
        raise CatalogError(f"{where}.{problem}")

    template.save()
    if not created:
        template.fields.all().delete()
    for instance in fields:
        instance.template = template
        _validate(f"{where}.fields.{instance.name}", instance)
    TemplateField.objects.bulk_create(fields)
    previous_version_id = template.current_version_id
    version = template_version_current(template=template, user=user, fields=fields, new=created)
    (report.created if created else report.updated).append(template.slug)
    report.related[template.slug] = (where, related)
    if version.pk != previous_version_id:
        report.changed.append(template.slug)


def _related_slugs(where: str, raw: dict[str, Any]) -> list[str]:
    related = raw.get("related")
    related = [] if related is None else related
    if not isinstance(related, list):
        raise CatalogError(f"{where}.related: expected a list of template slugs")
    for number, slug in enumerate(related, start=1):
        if not isinstance(slug, str) or not slug:
            raise CatalogError(f"{where}.related[{number}]: expected a template slug")
        if slug == raw.get("slug"):
            raise CatalogError(f"{where}.related: a template cannot be related to itself")
        if slug in related[: number - 1]:
            raise CatalogError(f"{where}.related: “{slug}” is listed twice")
    return related


def _link_related(report: ImportReport) -> None:
    links = {slug: related for slug, (_where, related) in report.related.items()}
    for unknown in templates_related_replace(links=links):
        for where, related in report.related.values():
            if unknown in related:
                raise CatalogError(
                    f"{where}.related: no template “{unknown}” "
                    "(neither in these files nor imported before)"
                )


# Told after each document: (its name, how many of them are done, how many in all).
Progress = Callable[[str, int, int], None]


def import_catalog_documents(
    documents: Iterable[tuple[str, Any]], *, user=None, progress: Progress | None = None
) -> ImportReport:
    """Import parsed documents in one transaction: all of them, or none on any error."""
    report = ImportReport()
    documents = list(documents)
    with transaction.atomic():
        for done, (source, data) in enumerate(documents, start=1):
            try:
                import_category_file(data, source=source, report=report, user=user)
            except RecursionError as exc:
                raise CatalogError(f"{source}: nested too deeply") from exc
            if progress is not None:
                progress(source, done, len(documents))
        _link_related(report)
    return report


def import_catalog_files(
    paths: Iterable[Path], *, user=None, progress: Progress | None = None
) -> ImportReport:
    """Import every file in one transaction: all of them, or none on any error."""
    documents = []
    for path in sorted(paths):
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CatalogError(f"{path.name}: cannot be read: {exc.strerror}") from exc
        documents.extend(parse_catalog(content, name=path.name))
    return import_catalog_documents(documents, user=user, progress=progress)
