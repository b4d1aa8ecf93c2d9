"""Catalogue files out and in: export_catalog writes what import_catalog reads,
so the shipped catalogue survives a round trip unchanged; bad files are
refused whole, with the file and template named."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from modeltranslation.translator import translator

from templates_catalog.catalog_io import import_catalog_files
from templates_catalog.models import Category, Template, TemplateField, TemplateVersion
from tests.factories import CategoryFactory, TemplateFieldFactory, template_with_fields

pytestmark = pytest.mark.django_db

CATALOG = Path(settings.BASE_DIR) / "fixtures" / "catalog"
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


@pytest.fixture(scope="module")
def shipped(django_db_setup, django_db_blocker, tmp_path_factory):
    """The shipped catalogue's content and its export, made once for the module
    (it is large) in a transaction that is then rolled back. JSON's round trip
    is shown on a smaller catalogue (test_several_categories_to_one_file_import_back)."""
    exports = {fmt: tmp_path_factory.mktemp(f"export-{fmt}") for fmt in ("yaml",)}
    with django_db_blocker.unblock(), transaction.atomic():
        import_catalog_files(CATALOG.glob("*.yaml"))
        content = catalogue_content()
        for fmt, folder in exports.items():
            call_command("export_catalog", format=fmt, output=folder, verbosity=0)
        transaction.set_rollback(True)
    return content, exports


def test_exporting_the_shipped_catalogue_and_importing_it_gives_identical_templates(shipped):
    content, exports = shipped
    fmt = "yaml"
    files = sorted(exports[fmt].iterdir())
    assert [f.name for f in files] == sorted(f"{p.stem}.{fmt}" for p in CATALOG.glob("*.yaml"))
    assert not Template.objects.exists()

    call_command("import_catalog", *files, stdout=io.StringIO())

    imported = catalogue_content()
    assert imported["categories"] == content["categories"]
    assert imported["templates"].keys() == content["templates"].keys()
    for slug, expected in content["templates"].items():
        assert imported["templates"][slug] == expected, slug


def test_export_writes_the_catalogue_format_that_people_edit(shipped):
    _content, exports = shipped
    text = (exports["yaml"] / "business-email.yaml").read_text(encoding="utf-8")
    assert text.startswith("category:\n  slug: business-email\n")
    assert "  prompt_ja: |\n" in text
    assert "\n  tags_ja: [" in text
    assert "\n  tags_en: [" in text
    assert "- {value: " in text


def test_one_category_goes_to_stdout(capsys):
    template = template_with_fields()
    call_command("export_catalog", category=[template.category.slug])
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["category"]["slug"] == template.category.slug
    assert [t["slug"] for t in document["templates"]] == [template.slug]
    assert [f["name"] for f in document["templates"][0]["fields"]] == ["recipient", "note"]


def test_several_categories_to_one_file_import_back(tmp_path):
    first = template_with_fields()
    second = template_with_fields(category=CategoryFactory())
    TemplateFieldFactory(
        template=second,
        name="tone",
        type=TemplateField.Type.SELECT,
        choices_ja="formal|丁寧\nwarm|温かく",
        choices_en="formal|Formal\nwarm|Warm",
        min_length=None,
        order=3,
    )
    for fmt in ("yaml", "json"):
        path = tmp_path / f"all.{fmt}"
        call_command("export_catalog", format=fmt, output=path, verbosity=0)
        before = {t.slug: t.current_version_id for t in Template.objects.all()}
        Template.objects.all().delete()
        Category.objects.all().delete()
        call_command("import_catalog", path, stdout=io.StringIO())
        assert set(Template.objects.values_list("slug", flat=True)) == set(before)
    tone = TemplateField.objects.get(name="tone")
    assert (tone.choices_ja, tone.choices_en) == (
        "formal|丁寧\nwarm|温かく",
        "formal|Formal\nwarm|Warm",
    )
    assert Template.objects.get(slug=first.slug).fields.count() == 2


def test_exporting_an_unknown_category_is_an_error():
    with pytest.raises(CommandError, match="No such category: nowhere"):
        call_command("export_catalog", category=["nowhere"])


def write_category(path: Path, *, title_en: str = "Thank-you email") -> Path:
    document = {
        "category": {"slug": "letters", "order": 1, "name_ja": "手紙", "name_en": "Letters"},
        "templates": [
            {
                "slug": "thanks",
                "kind": "text",
                "title_ja": "お礼状",
                "title_en": title_en,
                "prompt_ja": "{{ recipient }}へのお礼状",
                "prompt_en": "A thank-you letter to {{ recipient }}",
                "fields": [
                    {
                        "name": "recipient",
                        "type": "short_text",
                        "required": True,
                        "label_ja": "宛先",
                        "label_en": "Recipient",
                    },
                ],
            }
        ],
    }
    if path.suffix == ".json":
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_import_reports_created_and_updated_and_versions_only_what_changed(tmp_path):
    path = write_category(tmp_path / "letters.json")
    out = io.StringIO()
    call_command("import_catalog", path, stdout=out)
    assert "1 created, 0 updated (1 with a new version)" in out.getvalue()

    out = io.StringIO()
    call_command("import_catalog", path, stdout=out)
    assert "0 created, 0 updated (0 with a new version), 1 unchanged." in out.getvalue()

    write_category(path, title_en="A thank-you letter")
    out = io.StringIO()
    call_command("import_catalog", path, stdout=out)
    assert "0 created, 1 updated (1 with a new version), 0 unchanged." in out.getvalue()
    template = Template.objects.get(slug="thanks")
    assert template.current_version.number == 2
    assert template.current_version.snapshot["title"]["en"] == "A thank-you letter"


def test_a_dry_run_checks_and_saves_nothing(tmp_path):
    path = write_category(tmp_path / "letters.yml")
    out = io.StringIO()
    call_command("import_catalog", path, dry_run=True, stdout=out)
    assert "Checked 1 templates in 1 categories: 1 created" in out.getvalue()
    assert not Template.objects.exists()
    assert not Category.objects.exists()


BAD_FILES = [
    (
        "unknown.yaml",
        b"category: {slug: x, name_ja: x, name_en: x}\ntemplates:\n  - {slug: bad-one, colour: red}\n",
        "unknown.yaml: templates[1] (bad-one): unknown keys colour",
    ),
    ("broken.yaml", b"category: [unclosed\n", "broken.yaml: not valid YAML"),
    ("broken.json", b'{"category": ', "broken.json: not valid JSON"),
    ("latin1.yaml", "category: {name_ja: café}".encode("latin-1"), "latin1.yaml: not UTF-8"),
    (
        "list.json",
        b'{"category": {"slug": "x", "name_ja": "x", "name_en": "x"}, "templates": {}}',
        "list.json: templates: expected a list",
    ),
    ("notes.txt", b"category: {}", "notes.txt: use a .yaml, .yml or .json file"),
    ("empty.yaml", b"", "empty.yaml: no category in the file"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES)
def test_a_bad_file_is_refused_with_the_file_named_and_nothing_saved(
    tmp_path, name, content, message
):
    good = write_category(tmp_path / "a-good.yaml")
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(CommandError) as raised:
        call_command("import_catalog", good, bad, stdout=io.StringIO())
    assert message in str(raised.value)
    assert "nothing was imported" in str(raised.value)
    assert not Template.objects.exists()
    assert not Category.objects.exists()
    assert not TemplateVersion.objects.exists()


def test_a_template_that_fails_its_checks_is_named(tmp_path):
    path = write_category(tmp_path / "letters.yaml")
    path.write_text(
        path.read_text(encoding="utf-8").replace("{{ recipient }}へ", "{{ sender }}へ"),
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match=r"letters.yaml: templates\[1\] \(thanks\)"):
        call_command("import_catalog", path)
    assert not Template.objects.exists()
