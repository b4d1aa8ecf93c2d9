"""Catalogue files out and in: export_catalog writes what import_catalog reads
(the shipped catalogue's round trip is in test_load_demo.py, where it is
loaded); bad files are refused whole, with the file and template named."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from templates_catalog.models import Category, Template, TemplateField, TemplateVersion
from tests.factories import CategoryFactory, TemplateFieldFactory, template_with_fields

pytestmark = pytest.mark.django_db

CATALOG = Path(settings.BASE_DIR) / "fixtures" / "catalog"


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
