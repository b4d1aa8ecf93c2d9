"""The shipped catalogue: enough real templates, both languages, samples that pass their own forms."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from templates_catalog.catalog_io import CatalogError, import_catalog_files
from templates_catalog.models import Category, Template
from templates_catalog.services import template_render_sample_answer

pytestmark = pytest.mark.django_db


CATALOG = Path(__file__).resolve().parents[2] / "fixtures" / "catalog"


@pytest.fixture(scope="module")
def shipped_demo(django_db_setup, django_db_blocker):
    """The demo loaded once for the module (613 templates take a while)."""
    with django_db_blocker.unblock():
        call_command("load_demo", verbosity=0)
        yield
        # Committed outside the tests' transactions: leave nothing behind.
        Template.objects.all().delete()
        Category.objects.all().delete()
        get_user_model().objects.filter(username="demo").delete()


@pytest.fixture
def demo(shipped_demo, db):
    return None


@pytest.fixture
def sample_catalogue(tmp_path: Path) -> Path:
    """Two real category files: what load_demo does, without loading all 613.
    Their related templates are among themselves (a link to a template in a
    file left out would be refused)."""
    for name in ("sales.yaml", "images.yaml"):
        shutil.copy(CATALOG / name, tmp_path / name)
    return tmp_path


# First, the tests that need an empty catalogue: the module's demo stays loaded once it is.
def test_dry_run_changes_nothing(db, sample_catalogue):
    if Template.objects.exists():
        pytest.fail("run before the module's demo is loaded: it needs an empty catalogue")
    call_command("load_demo", "--dry-run", "--catalog-dir", str(sample_catalogue), verbosity=0)
    assert not Template.objects.exists()


def test_load_demo_is_idempotent_and_creates_the_demo_login(db, client, sample_catalogue):
    if Template.objects.exists():
        pytest.fail("run before the module's demo is loaded: it needs an empty catalogue")
    call_command("load_demo", "--catalog-dir", str(sample_catalogue), verbosity=0)
    loaded = dict(Template.objects.values_list("slug", "prompt_body_ja"))
    assert len(loaded) == 79
    call_command("load_demo", "--catalog-dir", str(sample_catalogue), verbosity=0)
    assert dict(Template.objects.values_list("slug", "prompt_body_ja")) == loaded
    assert client.login(username="demo", password="studio-demo")


def test_a_second_load_skips_what_did_not_change_and_reloads_what_did(db, sample_catalogue):
    if Template.objects.exists():
        pytest.fail("run before the module's demo is loaded: it needs an empty catalogue")
    first = import_catalog_files(sample_catalogue.glob("*.yaml"))
    assert (len(first.created), len(first.unchanged)) == (79, 0)
    again = import_catalog_files(sample_catalogue.glob("*.yaml"))
    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, 79)
    # A file that changed is loaded again; a template edited since (admin) is
    # loaded again too, so the file's content wins as before.
    path = sample_catalogue / "images.yaml"
    path.write_text(path.read_text().replace("tier: standard", "tier: advanced", 1))
    edited = Template.objects.get(slug="sales-call-script")
    edited.title_en = "Edited in admin"
    edited.source_digest = ""
    edited.save()
    third = import_catalog_files(sample_catalogue.glob("*.yaml"))
    assert "sales-call-script" in third.updated
    assert len(third.updated) == 2
    assert Template.objects.get(slug="sales-call-script").title_en != "Edited in admin"
    Template.objects.all().delete()


def test_a_broken_file_loads_nothing_and_says_where(db, tmp_path: Path):
    good = Path(__file__).resolve().parents[2] / "fixtures" / "catalog" / "planning.yaml"
    (tmp_path / "a.yaml").write_text(good.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        "category: {slug: x, order: 1, name_ja: エックス, name_en: X}\n"
        "templates:\n  - slug: broken\n    titel_en: typo\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match=r"b.yaml: templates\[1\].*unknown keys titel_en"):
        import_catalog_files(tmp_path.glob("*.yaml"))
    assert not Template.objects.exists()
    with pytest.raises(CommandError):
        call_command("load_demo", "--catalog-dir", str(tmp_path), verbosity=0)


def test_a_prompt_naming_an_unknown_field_is_refused(db, tmp_path: Path):
    (tmp_path / "c.yaml").write_text(
        "category: {slug: x, order: 1, name_ja: エックス, name_en: X}\n"
        "templates:\n  - slug: t\n    title_ja: T\n    title_en: T\n"
        "    prompt_ja: '{{ a }}'\n    prompt_en: '{{ a }} {{ secret }}'\n"
        "    fields:\n      - {name: a, type: short_text, label_ja: A, label_en: A}\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match="unknown fields secret"):
        import_catalog_files([tmp_path / "c.yaml"])


def test_catalogue_has_at_least_60_templates_in_10_categories(demo):
    assert Template.objects.published().count() >= 60
    assert Category.objects.filter(templates__isnull=False).distinct().count() >= 10


def test_every_template_is_bilingual_with_typed_fields(demo):
    for template in Template.objects.prefetch_related("fields"):
        for lang in ("ja", "en"):
            for name in ("title", "description", "prompt_body"):
                assert getattr(template, f"{name}_{lang}"), f"{template.slug}: {name}_{lang}"
        fields = list(template.fields.all())
        assert len(fields) >= 2, template.slug
        assert all(f.label_ja and f.label_en for f in fields), template.slug


def test_the_shipped_catalogue_passes_the_check(demo, capsys):
    """Every sample passes its own form and renders a prompt using every field,
    every template has a sample answer in both languages that renders with its
    samples, and no answer is another's: check_catalog, on the demo as loaded."""
    call_command("check_catalog")
    assert f"{Template.objects.count()} templates checked, 0 problem(s)." in capsys.readouterr().out


def test_a_sample_answer_takes_the_persons_own_company(demo):
    template = Template.objects.get(slug="apology-email-to-client")
    inputs = {**template.sample_inputs_ja, "client_company": "株式会社ひかり物産"}
    answer = template_render_sample_answer(template=template, inputs=inputs, language="ja")
    assert answer.startswith("件名：【お詫び】")
    assert "株式会社ひかり物産" in answer
    assert "株式会社みらい商事" not in answer
