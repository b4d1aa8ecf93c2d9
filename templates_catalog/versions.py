"""Template versions: what a template was when a generation used it.

A version is a snapshot of everything that shapes a generation (kind, tier,
answer format, the texts and prompts in every language, the fields with their
types, labels, limits and choices) and a digest of it. The writers of the catalogue (admin,
import, duplicate) record one after each save; a generation records the one
it ran with, so that its page can say "version 3" after staff changed the
template. Sort order, status, tags and sample inputs are left out: they do
not change what a person is asked or what the model is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from templates_catalog.models import Template, TemplateField, TemplateVersion

TEMPLATE_TEXTS = ("title", "description", "system_prompt", "prompt_body")
FIELD_TEXTS = ("label", "help_text", "placeholder", "choices")
FIELD_VALUES = (
    "type",
    "required",
    "default",
    "min_length",
    "max_length",
    "min_value",
    "max_value",
)


def _languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def _number(value: Decimal | float | int | None) -> str | None:
    """A limit as text that is the same however it was read (1, 1.0, Decimal("1.0000"))."""
    if value is None:
        return None
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _text(value: str | None) -> str:
    # Text saved from a browser's text area ends its lines with CRLF: the same text.
    return (value or "").replace("\r\n", "\n").replace("\r", "\n")


def _translated(instance: Template | TemplateField, name: str) -> dict[str, str]:
    return {lang: _text(getattr(instance, f"{name}_{lang}")) for lang in _languages()}


def _field_snapshot(field: TemplateField) -> dict[str, Any]:
    data: dict[str, Any] = {"name": field.name}
    for name in FIELD_VALUES:
        data[name] = getattr(field, name)
    data["min_value"] = _number(field.min_value)
    data["max_value"] = _number(field.max_value)
    for name in FIELD_TEXTS:
        data[name] = _translated(field, name)
    return data


def template_snapshot(*, template: Template, fields: Iterable[TemplateField]) -> dict[str, Any]:
    """Everything about `template` and its `fields` that shapes a generation, as JSON."""
    ordered = sorted(fields, key=lambda field: (field.order, field.pk or 0))
    snapshot: dict[str, Any] = {"kind": template.kind, "tier": template.tier}
    # A plain-text template's prompt ends with a line of its own, and its answer
    # is shown differently: a new version. Markdown, the default, is left out,
    # so that versions recorded before templates had a format keep their digest.
    if template.answer_format != Template.AnswerFormat.MARKDOWN:
        snapshot["answer_format"] = template.answer_format
    for name in TEMPLATE_TEXTS:
        snapshot[name] = _translated(template, name)
    snapshot["fields"] = [_field_snapshot(field) for field in ordered]
    return snapshot


def snapshot_digest(snapshot: dict[str, Any]) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def template_version_current(
    *,
    template: Template,
    user=None,
    fields: Iterable[TemplateField] | None = None,
    new: bool = False,
) -> TemplateVersion:
    """The latest version of `template` if it matches what the template holds now,
    else a new one (numbered after the latest); either way it becomes
    `template.current_version`. Pass `fields` when they are already loaded, and
    `new` for a template created in this transaction (it has no version yet, and
    no one else can see it: nothing to look up or lock).

    Call it after the template and its fields are saved. The template's row is
    locked meanwhile, so two requests cannot both record the next number.
    """
    if fields is None:
        fields = TemplateField.objects.filter(template=template)
    snapshot = template_snapshot(template=template, fields=fields)
    digest = snapshot_digest(snapshot)
    created_by = user if user is not None and user.is_authenticated else None

    def record(number: int) -> TemplateVersion:
        return TemplateVersion.objects.create(
            template=template,
            number=number,
            snapshot=snapshot,
            digest=digest,
            created_by=created_by,
        )

    if new:
        return _make_current(template, record(1))
    with transaction.atomic():
        list(Template.objects.select_for_update().filter(pk=template.pk).values_list("pk"))
        latest = TemplateVersion.objects.filter(template=template).order_by("-number").first()
        if latest is not None and latest.digest == digest:
            return _make_current(template, latest)
        return _make_current(template, record(latest.number + 1 if latest else 1))


def _make_current(template: Template, version: TemplateVersion) -> TemplateVersion:
    if template.current_version_id != version.pk:
        # Not save(): that would bump updated_at and rewrite every column.
        Template.objects.filter(pk=template.pk).update(current_version=version)
        template.current_version = version
    return version


# What changed --------------------------------------------------------------------


def _label(name: str) -> str:
    labels = {
        "kind": _("kind"),
        "tier": _("model tier"),
        "answer_format": _("answer format"),
        "title": _("title"),
        "description": _("description"),
        "system_prompt": _("system prompt"),
        "prompt_body": _("prompt body"),
        "type": _("type"),
        "required": _("required"),
        "default": _("default"),
        "min_length": _("minimum length"),
        "max_length": _("maximum length"),
        "min_value": _("minimum value"),
        "max_value": _("maximum value"),
        "label": _("label"),
        "help_text": _("help text"),
        "placeholder": _("placeholder"),
        "choices": _("choices"),
    }
    return labels.get(name, name)


def _changed_keys(before: dict[str, Any], after: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """`keys` whose values differ; a translated one as "title (en)"."""
    changed = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            languages = [lang for lang in {**old, **new} if old.get(lang) != new.get(lang)]
            changed.append(f"{_label(key)} ({', '.join(languages)})")
        else:
            changed.append(_label(key))
    return changed


def version_changes(previous: dict[str, Any] | None, snapshot: dict[str, Any]) -> list[str]:
    """What changed from the `previous` snapshot to `snapshot`, in a few words each."""
    if previous is None:
        return [_("first version")]
    changes = _changed_keys(previous, snapshot, ("kind", "tier", "answer_format", *TEMPLATE_TEXTS))
    before = {field["name"]: field for field in previous.get("fields", [])}
    after = {field["name"]: field for field in snapshot.get("fields", [])}
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    if added:
        changes.append(_("fields added: %(names)s") % {"names": ", ".join(added)})
    if removed:
        changes.append(_("fields removed: %(names)s") % {"names": ", ".join(removed)})
    for name, field in after.items():
        if name in before:
            keys = _changed_keys(before[name], field, (*FIELD_VALUES, *FIELD_TEXTS))
            if keys:
                changes.append(
                    _("field %(name)s: %(changes)s") % {"name": name, "changes": ", ".join(keys)}
                )
    kept_before = [name for name in before if name in after]
    kept_after = [name for name in after if name in before]
    if kept_before != kept_after:
        changes.append(_("fields reordered"))
    return changes or [_("no change")]
