"""A template's answer format (Markdown or plain text): read from and written to
catalogue files, refused when unknown, edited in admin, and a change of format
is a new version (the prompt the model is sent changes)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.urls import reverse

from templates_catalog.catalog_io import CatalogError, import_catalog_files
from templates_catalog.models import Template, TemplateVersion
from templates_catalog.services import template_render_prompt
from templates_catalog.versions import template_version_current
from tests.factories import UserFactory, template_admin_data, template_with_fields

pytestmark = pytest.mark.django_db

PLAIN = Template.AnswerFormat.PLAIN
MARKDOWN = Template.AnswerFormat.MARKDOWN


def template_document(slug: str, **extra) -> dict:
    return {
        "slug": slug,
        "title_ja": "お礼状",
        "title_en": "Thank-you letter",
        "prompt_ja": "{{ recipient }}へのお礼状を書いてください。",
        "prompt_en": "Write a thank-you letter to {{ recipient }}.",
        "fields": [
            {
                "name": "recipient",
                "type": "short_text",
                "required": True,
                "label_ja": "宛先",
                "label_en": "Recipient",
            }
        ],
        **extra,
    }


def write_catalogue(path: Path, *templates: dict) -> Path:
    document = {
        "category": {"slug": "letters", "order": 1, "name_ja": "手紙", "name_en": "Letters"},
        "templates": list(templates),
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_a_file_marks_a_template_plain_and_one_without_the_key_stays_markdown(tmp_path):
    path = write_catalogue(
        tmp_path / "letters.yaml",
        template_document("thanks", answer_format="plain"),
        template_document("report"),
    )
    import_catalog_files([path])
    thanks, report = Template.objects.get(slug="thanks"), Template.objects.get(slug="report")
    assert (thanks.answer_format, report.answer_format) == (PLAIN, MARKDOWN)
    prompt = template_render_prompt(template=thanks, inputs={"recipient": "Ms Sato"}, language="en")
    assert prompt.prompt == (
        "Write a thank-you letter to Ms Sato.\n\n"
        "Write plain text ready to paste: no Markdown (no ** or #, no tables)."
    )


def test_export_writes_the_format_of_a_plain_template_only_and_it_reads_back(tmp_path):
    plain = template_with_fields(answer_format=PLAIN)
    template_with_fields(category=plain.category)
    out = io.StringIO()
    call_command("export_catalog", category=[plain.category.slug], stdout=out)
    document = yaml.safe_load(out.getvalue())
    documents = {t["slug"]: t for t in document["templates"]}
    plain_document = documents.pop(plain.slug)
    [markdown_document] = documents.values()
    # Where the README puts it, after the tier; a Markdown template leaves it out.
    assert list(plain_document)[:4] == ["slug", "kind", "tier", "answer_format"]
    assert plain_document["answer_format"] == "plain"
    assert "answer_format" not in markdown_document
    path = tmp_path / "export.yaml"
    path.write_text(out.getvalue(), encoding="utf-8")
    Template.objects.update(answer_format=MARKDOWN)
    import_catalog_files([path])
    assert Template.objects.get(slug=plain.slug).answer_format == PLAIN


@pytest.mark.parametrize("value", ["html", "Plain", "", 1, ["plain"], {"plain": True}])
def test_an_unknown_format_is_refused_naming_the_template_and_nothing_is_saved(tmp_path, value):
    existing = template_with_fields(slug="thanks")
    path = write_catalogue(
        tmp_path / "letters.yaml",
        template_document("fresh", answer_format="plain"),
        template_document("thanks", title_en="Changed", answer_format=value),
    )
    with pytest.raises(CatalogError) as error:
        import_catalog_files([path])
    assert str(error.value) == (
        f"letters.yaml: templates[2] (thanks).answer_format: {value!r} is not an answer "
        "format; use markdown or plain"
    )
    assert not Template.objects.filter(slug="fresh").exists()  # nothing half-saved
    existing.refresh_from_db()
    assert (existing.title_en, existing.answer_format) == ("Thank-you email", MARKDOWN)


def test_the_import_command_reports_an_unknown_format_as_an_error(tmp_path):
    path = write_catalogue(tmp_path / "letters.yaml", template_document("t", answer_format="txt"))
    with pytest.raises(CommandError, match=r"answer_format: 'txt' is not an answer format"):
        call_command("import_catalog", path, stdout=io.StringIO())
    assert not Template.objects.exists()


def test_changing_the_format_records_a_version_that_says_so(tmp_path):
    path = write_catalogue(tmp_path / "letters.yaml", template_document("thanks"))
    import_catalog_files([path])
    write_catalogue(path, template_document("thanks", answer_format="plain"))
    report = import_catalog_files([path])
    assert report.changed == ["thanks"]
    template = Template.objects.get(slug="thanks")
    assert template.current_version.number == 2
    assert template.versions.get(number=2).snapshot["answer_format"] == "plain"
    # Back to Markdown: the version says what changed, and a save without a
    # change records nothing.
    template.answer_format = MARKDOWN
    template.save()
    third = template_version_current(template=template)
    assert third.number == 3
    assert template_version_current(template=template) == third
    assert TemplateVersion.objects.filter(template=template).count() == 3


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_staff_set_the_format_in_admin_and_the_versions_table_says_what_changed(staff_client):
    template = template_with_fields()
    template_version_current(template=template)
    url = reverse("admin:templates_catalog_template_change", args=[template.pk])
    page = staff_client.get(url).content.decode()
    assert '<option value="markdown" selected>Markdown (headings, lists, tables)</option>' in page
    assert '<option value="plain">Plain text, ready to paste</option>' in page

    response = staff_client.post(url, template_admin_data(template, answer_format="plain"))
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.answer_format == PLAIN
    assert template.current_version.number == 2
    page = staff_client.get(url).content.decode()
    assert "<td>answer format</td>" in page  # the versions table: what version 2 changed


def test_admin_refuses_an_unknown_format_beside_the_field_and_saves_nothing(staff_client):
    template = template_with_fields()
    url = reverse("admin:templates_catalog_template_change", args=[template.pk])
    response = staff_client.post(
        url, template_admin_data(template, answer_format="html", title_en="Changed")
    )
    assert response.status_code == 200
    assert "Select a valid choice. html is not one of the available choices." in (
        response.content.decode()
    )
    template.refresh_from_db()
    assert (template.answer_format, template.title_en) == (MARKDOWN, "Thank-you email")
