"""Related templates: a template's page links to others for a similar job.
Catalogue files list them by slug (checked on import, all or nothing), export
writes them back, staff edit them in admin, and the page shows only those the
person may open."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from templates_catalog.catalog_io import CatalogError, import_catalog_documents
from templates_catalog.models import RelatedTemplate, Template
from templates_catalog.services import template_duplicate
from tests.factories import TemplateFactory, UserFactory, template_admin_data, template_with_fields
from tests.support.catalogue import shipped_templates

pytestmark = pytest.mark.django_db


def template_doc(slug: str, related: Any = None, **overrides) -> dict[str, Any]:
    doc = {
        "slug": slug,
        "kind": "text",
        "tags_ja": ["お詫び"],
        "tags_en": ["apology"],
        "title_ja": f"お詫び（{slug}）",
        "title_en": f"Apology ({slug})",
        "description_ja": f"{slug}のお詫びを書きます。",
        "description_en": f"Writes the {slug} apology.",
        "prompt_ja": "{{ recipient }}へのお詫び",
        "prompt_en": "An apology to {{ recipient }}",
        "fields": [
            {
                "name": "recipient",
                "type": "short_text",
                "required": True,
                "label_ja": "宛先",
                "label_en": "Recipient",
            }
        ],
    }
    if related is not None:
        doc["related"] = related
    return doc | overrides


def category_file(name: str, *templates: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    slug = Path(name).stem
    category = {"slug": slug, "order": 1, "name_ja": slug, "name_en": slug}
    return name, {"category": category, "templates": list(templates)}


def links(slug: str) -> list[str]:
    return [link.to_template.slug for link in Template.objects.get(slug=slug).related_links.all()]


# Import ------------------------------------------------------------------------


def test_related_templates_are_linked_in_the_order_listed_even_from_a_later_file():
    import_catalog_documents(
        [
            category_file("apologies.yaml", template_doc("late", related=["post", "misdirected"])),
            category_file("letters.yaml", template_doc("post"), template_doc("misdirected")),
        ]
    )
    assert links("late") == ["post", "misdirected"]
    assert links("post") == []


def test_a_file_may_link_to_a_template_imported_before():
    import_catalog_documents([category_file("letters.yaml", template_doc("post"))])
    import_catalog_documents([category_file("apologies.yaml", template_doc("late", ["post"]))])
    assert links("late") == ["post"]


def test_importing_again_replaces_the_links_and_no_list_means_none():
    files = [
        category_file(
            "letters.yaml", template_doc("a", ["b", "c"]), template_doc("b"), template_doc("c")
        )
    ]
    import_catalog_documents(files)
    import_catalog_documents(
        [
            category_file(
                "letters.yaml", template_doc("a", ["c"]), template_doc("b"), template_doc("c")
            )
        ]
    )
    assert links("a") == ["c"]
    import_catalog_documents(
        [category_file("letters.yaml", template_doc("a"), template_doc("b"), template_doc("c"))]
    )
    assert links("a") == []


def test_an_unchanged_file_keeps_its_links():
    files = [category_file("letters.yaml", template_doc("a", ["b"]), template_doc("b", ["a"]))]
    import_catalog_documents(files)
    report = import_catalog_documents(files)
    assert report.unchanged == ["a", "b"]
    assert (links("a"), links("b")) == (["b"], ["a"])


@pytest.mark.parametrize(
    ("related", "message"),
    [
        ("b", "letters.yaml: templates[1] (a).related: expected a list of template slugs"),
        ({"b": 1}, "letters.yaml: templates[1] (a).related: expected a list of template slugs"),
        (["b", 3], "letters.yaml: templates[1] (a).related[2]: expected a template slug"),
        (["b", ""], "letters.yaml: templates[1] (a).related[2]: expected a template slug"),
        ([["b"]], "letters.yaml: templates[1] (a).related[1]: expected a template slug"),
        (
            ["b", "a"],
            "letters.yaml: templates[1] (a).related: a template cannot be related to itself",
        ),
        (["b", "b"], "letters.yaml: templates[1] (a).related: “b” is listed twice"),
        (
            ["b", "nope"],
            "letters.yaml: templates[1] (a).related: no template “nope” "
            "(neither in these files nor imported before)",
        ),
    ],
    ids=["text", "mapping", "number", "empty", "list", "itself", "twice", "unknown"],
)
def test_a_bad_related_list_is_refused_by_name_and_nothing_is_saved(related, message):
    files = [category_file("letters.yaml", template_doc("a", related), template_doc("b"))]
    with pytest.raises(CatalogError) as refused:
        import_catalog_documents(files)
    assert str(refused.value) == message
    assert not Template.objects.exists()
    assert not RelatedTemplate.objects.exists()


def test_a_refused_import_leaves_the_links_as_they_were():
    import_catalog_documents(
        [category_file("letters.yaml", template_doc("a", ["b"]), template_doc("b"))]
    )
    changed = [
        category_file(
            "letters.yaml", template_doc("a", ["b", "gone"], title_en="New"), template_doc("b")
        )
    ]
    with pytest.raises(CatalogError, match="no template “gone”"):
        import_catalog_documents(changed)
    assert links("a") == ["b"]
    assert Template.objects.get(slug="a").title_en == "Apology (a)"


def test_a_bad_upload_names_the_unknown_slug_in_the_command(tmp_path):
    path = tmp_path / "letters.yaml"
    _name, document = category_file("letters.yaml", template_doc("a", ["nope"]))
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(Exception, match="no template “nope”.*nothing was imported"):
        call_command("import_catalog", path, stdout=io.StringIO())
    assert not Template.objects.exists()


# Export ------------------------------------------------------------------------


def test_export_writes_the_links_after_the_tags_and_they_import_back(tmp_path):
    import_catalog_documents(
        [
            category_file(
                "letters.yaml",
                template_doc("a", ["c", "b"]),
                template_doc("b", ["a"]),
                template_doc("c"),
            )
        ]
    )
    out = io.StringIO()
    call_command("export_catalog", category=["letters"], stdout=out)
    text = out.getvalue()
    assert "  tags_en: [apology]\n  related: [c, b]\n  title_ja:" in text
    document = yaml.safe_load(text)
    assert "related" not in document["templates"][2]  # c lists none

    path = tmp_path / "letters.yaml"
    path.write_text(text, encoding="utf-8")
    Template.objects.all().delete()
    call_command("import_catalog", path, stdout=io.StringIO())
    assert (links("a"), links("b"), links("c")) == (["c", "b"], ["a"], [])


# The template page ---------------------------------------------------------------


def linked_templates():
    """A page listing three templates: a published one, a draft and another published one."""
    page = TemplateFactory(slug="apology", title_en="Apology email to a client")
    first = TemplateFactory(
        slug="misdirected",
        title_en="Apology for a misdirected email",
        description_en="Apologises for an email sent to the wrong person.",
    )
    draft = TemplateFactory(
        slug="draft", title_en="Unfinished apology", status=Template.Status.DRAFT
    )
    last = TemplateFactory(
        slug="letter",
        title_en="Apology letter by post",
        description_en="A formal apology letter to post.",
    )
    for position, other in enumerate([last, draft, first], start=1):
        RelatedTemplate.objects.create(from_template=page, to_template=other, order=position)
    return page


def test_the_page_lists_related_templates_with_their_descriptions_in_order(client):
    page = client.get(linked_templates().get_absolute_url()).content.decode()
    section = page[page.index('id="related-heading"') :]
    assert "Related templates" in section
    assert section.index("Apology letter by post") < section.index(
        "Apology for a misdirected email"
    )
    assert "A formal apology letter to post." in section
    assert "Apologises for an email sent to the wrong person." in section
    assert reverse("catalog:template", args=["misdirected"]) in section


@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_the_page_hides_a_related_draft_from_people_who_cannot_open_it(client, who):
    template = linked_templates()
    if who == "member":
        client.force_login(UserFactory())
    page = client.get(template.get_absolute_url()).content.decode()
    assert "Apology letter by post" in page
    assert "Unfinished apology" not in page
    assert client.get(reverse("catalog:template", args=["draft"])).status_code == 404


def test_staff_see_a_related_draft(client):
    template = linked_templates()
    client.force_login(UserFactory(is_staff=True))
    assert "Unfinished apology" in client.get(template.get_absolute_url()).content.decode()


def test_a_page_whose_related_templates_are_all_hidden_shows_no_section(client):
    template = TemplateFactory()
    draft = TemplateFactory(title_en="Unfinished apology", status=Template.Status.DRAFT)
    RelatedTemplate.objects.create(from_template=template, to_template=draft)
    page = client.get(template.get_absolute_url()).content.decode()
    assert "Related templates" not in page
    assert "Unfinished apology" not in page


def test_the_page_in_japanese_names_the_section_in_japanese(client):
    template = linked_templates()
    page = client.get(template.get_absolute_url(), headers={"accept-language": "ja"})
    assert "関連するテンプレート" in page.content.decode()


# Admin -------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def admin_links(template: Template, *targets: Template) -> dict[str, str]:
    """The change form with these related templates as new inline rows."""
    data = template_admin_data(template)
    start = int(data["related_links-TOTAL_FORMS"])
    for i, target in enumerate(targets, start=start):
        data[f"related_links-{i}-to_template"] = str(target.pk)
        data[f"related_links-{i}-order"] = str(i + 1)
    data["related_links-TOTAL_FORMS"] = str(start + len(targets))
    return data


def test_admin_edits_related_templates_with_a_search_box(staff_client):
    template, first, second = template_with_fields(), TemplateFactory(), TemplateFactory()
    url = reverse("admin:templates_catalog_template_change", args=[template.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="related_links-TOTAL_FORMS"' in page
    assert "admin-autocomplete" in page
    response = staff_client.post(url, admin_links(template, second, first))
    assert response.status_code == 302
    assert links(template.slug) == [second.slug, first.slug]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("itself", "A template cannot be related to itself."),
        ("twice", "is listed twice."),
    ],
)
def test_admin_refuses_a_link_to_itself_or_twice_and_saves_nothing(staff_client, targets, message):
    template, other = template_with_fields(), TemplateFactory()
    chosen = (template,) if targets == "itself" else (other, other)
    url = reverse("admin:templates_catalog_template_change", args=[template.pk])
    response = staff_client.post(url, admin_links(template, *chosen))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RelatedTemplate.objects.exists()


def test_a_copy_of_a_template_links_to_the_same_templates():
    template, other = TemplateFactory(), TemplateFactory()
    RelatedTemplate.objects.create(from_template=template, to_template=other, order=1)
    copy = template_duplicate(template=template)
    assert links(copy.slug) == [other.slug]


# The shipped catalogue -----------------------------------------------------------


def test_the_shipped_related_templates_link_both_ways():
    """Every group of related templates lists each of its members on every member,
    so a person finds the group from whichever template they opened first."""
    related = {}
    for template in shipped_templates():
        related[template["slug"]] = set(template.get("related") or [])
    one_way = sorted(
        (slug, other)
        for slug, others in related.items()
        for other in others
        if slug not in related.get(other, set())
    )
    assert one_way == []
    assert sum(1 for others in related.values() if others) >= 16
