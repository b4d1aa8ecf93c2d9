"""Tags per language: a template has Japanese tags and English tags; the
catalogue's tag facets and a template's page show the page's language's, a
search or a tag link finds a template by a tag in either language, the
catalogue files carry both (and the shipped ones are complete), and the
import refuses the old mixed list with a way forward."""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from templates_catalog.catalog_check import check_templates
from templates_catalog.models import Template, split_tags
from tests.factories import CategoryFactory, TemplateFactory, template_with_fields
from tests.support.catalogue import shipped_templates

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "split_catalog_tags.py"
LIST = reverse("catalog:list")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
TAG_FACET = re.compile(
    r'<a class="tag[^"]*" href="[^"]*"[^>]*>#([^<✕]+?)(?: ✕)?(?: <span class="count">\d+</span>)?</a>'
)


def facets(page: str) -> list[str]:
    return TAG_FACET.findall(page)


@pytest.fixture
def apology(db):
    category = CategoryFactory(slug="email")
    template = TemplateFactory(
        slug="apology",
        category=category,
        title_ja="お詫びメール",
        title_en="Apology email",
        tags_ja="謝罪, メール, クレーム対応",
        tags_en="apology, email, complaint handling",
    )
    TemplateFactory(
        slug="thanks", category=category, tags_ja="お礼, メール", tags_en="thank you, email"
    )
    return template


@pytest.mark.parametrize(
    ("language", "shown", "hidden"),
    [
        ("ja", {"謝罪", "メール", "クレーム対応", "お礼"}, {"apology", "email", "thank you"}),
        ("en", {"apology", "email", "complaint handling", "thank you"}, {"謝罪", "メール", "お礼"}),
    ],
)
def test_the_catalogue_shows_the_tags_of_the_pages_language(
    client, apology, language, shown, hidden
):
    page = client.get(LIST, headers={"accept-language": language}).content.decode()
    tags = set(facets(page))
    assert shown <= tags
    assert not hidden & tags


@pytest.mark.parametrize(
    ("language", "shown", "hidden"),
    [
        ("ja", "#クレーム対応", "#complaint handling"),
        ("en", "#complaint handling", "#クレーム対応"),
    ],
)
def test_a_templates_page_shows_its_tags_in_the_pages_language(
    client, apology, language, shown, hidden
):
    page = client.get(apology.get_absolute_url(), headers={"accept-language": language})
    text = page.content.decode()
    assert shown in text
    assert hidden not in text


@pytest.mark.parametrize("query", ["クレーム対応", "complaint handling", "謝罪", "apology"])
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_tag_finds_its_template_in_either_language(client, apology, query, language):
    page = client.get(LIST, {"q": query}, headers={"accept-language": language}).content.decode()
    assert 'href="/t/apology/"' in page
    assert 'href="/t/thanks/"' not in page


@pytest.mark.parametrize("tag", ["謝罪", "apology"])
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_tag_link_keeps_working_when_the_language_changes(client, apology, tag, language):
    page = client.get(LIST, {"tag": tag}, headers={"accept-language": language}).content.decode()
    assert 'href="/t/apology/"' in page
    assert 'href="/t/thanks/"' not in page


def test_tags_are_split_on_japanese_commas_too():
    assert split_tags("謝罪、メール，お詫び, 謝罪 ,") == ["謝罪", "メール", "お詫び"]


@pytest.mark.django_db
def test_tags_in_one_language_only_are_reported():
    template = template_with_fields(slug="half", tags_ja="お礼", tags_en="")
    problems = [str(p) for p in check_templates([template])]
    assert "half: tags has no en translation" in problems


@pytest.mark.django_db
def test_the_old_mixed_tags_are_split_by_script_when_migrating():
    migration = importlib.import_module("templates_catalog.migrations.0008_tags_per_language")
    template = TemplateFactory(tags_ja="", tags_en="")
    Template.objects.filter(pk=template.pk).update(tags="謝罪, apology, メール, email")
    migration.split_tags_by_language(apps, None)
    template.refresh_from_db()
    assert (template.tags_ja, template.tags_en) == ("謝罪, メール", "apology, email")


# --- The catalogue files ------------------------------------------------------------


def test_every_shipped_template_has_tags_in_both_languages():
    templates = shipped_templates()
    assert len(templates) > 600  # every file read
    for template in templates:
        assert "tags" not in template, template["slug"]
        japanese, english = template["tags_ja"], template["tags_en"]
        assert japanese, template["slug"]
        assert english, template["slug"]
        assert not [tag for tag in english if JAPANESE.search(str(tag))], template["slug"]
        assert len(set(japanese)) == len(japanese), template["slug"]


def test_the_split_script_writes_both_lists_and_keeps_the_rest(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(
        "category: {slug: email, name_ja: メール, name_en: Email}\n"
        "templates:\n"
        "  # an apology\n"
        "  - slug: apology\n"
        "    tags: [謝罪, お詫び, apology, email, Q&A]\n"
        "    title_ja: お詫び\n",
        encoding="utf-8",
    )
    subprocess.run([sys.executable, SCRIPT, path], check=True, capture_output=True)
    assert path.read_text(encoding="utf-8") == (
        "category: {slug: email, name_ja: メール, name_en: Email}\n"
        "templates:\n"
        "  # an apology\n"
        "  - slug: apology\n"
        "    tags_ja: [謝罪, お詫び, メール, Q&A]\n"
        "    tags_en: [apology, email, Q&A]\n"
        "    title_ja: お詫び\n"
    )


def test_the_split_script_names_a_tag_it_cannot_translate(tmp_path):
    path = tmp_path / "old.yaml"
    original = "templates:\n  - slug: x\n    tags: [謝罪, まったく新しい言葉]\n"
    path.write_text(original, encoding="utf-8")
    result = subprocess.run([sys.executable, SCRIPT, path], capture_output=True, text=True)
    assert result.returncode == 1
    assert "まったく新しい言葉" in result.stderr
    assert path.read_text(encoding="utf-8") == original  # nothing written


@pytest.mark.django_db
def test_importing_the_old_mixed_tags_says_what_to_do(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(
        "category: {slug: email, name_ja: メール, name_en: Email}\n"
        "templates:\n  - {slug: apology, tags: [謝罪, apology]}\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="use tags_ja and tags_en") as raised:
        call_command("import_catalog", path)
    assert "split_catalog_tags.py" in str(raised.value)


@pytest.mark.django_db
def test_tags_round_trip_through_export_and_import(tmp_path):
    template = template_with_fields(
        slug="thanks", tags_ja="お礼, メール", tags_en="thank you, email"
    )
    path = tmp_path / "out.yaml"
    call_command("export_catalog", output=path, category=[template.category.slug])
    text = path.read_text(encoding="utf-8")
    assert "tags_ja: [お礼, メール]" in text
    assert "tags_en: [thank you, email]" in text
    Template.objects.filter(pk=template.pk).update(tags_ja="", tags_en="")
    call_command("import_catalog", path, stdout=io.StringIO())
    template.refresh_from_db()
    assert (template.tags_ja, template.tags_en) == ("お礼, メール", "thank you, email")
