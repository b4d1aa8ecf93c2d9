"""Staff edit templates in admin; a template whose prompt names a missing field is refused."""

from __future__ import annotations

import pytest
from django.contrib import admin as django_admin
from django.urls import reverse

from templates_catalog.models import Template, TemplateField
from tests.factories import CategoryFactory, UserFactory, template_with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def template_post_data(category, *, body_en, fields, slug="new-template", **extra):
    data = {
        "title_ja": "新しいテンプレート",
        "title_en": "New template",
        "slug": slug,
        "category": category.pk,
        "kind": "text",
        "status": "published",
        "tier": "standard",
        "answer_format": "markdown",
        "order": 0,
        "tags_ja": "",
        "tags_en": "",
        "description_ja": "",
        "description_en": "",
        "system_prompt_ja": "",
        "system_prompt_en": "",
        "prompt_body_ja": "{{ product }}について書いてください。",
        "prompt_body_en": body_en,
        "sample_inputs_ja": "{}",
        "sample_inputs_en": "{}",
        "fields-TOTAL_FORMS": str(len(fields)),
        "fields-INITIAL_FORMS": "0",
        "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
        "related_links-TOTAL_FORMS": "0",
        "related_links-INITIAL_FORMS": "0",
        "related_links-MIN_NUM_FORMS": "0",
        "related_links-MAX_NUM_FORMS": "1000",
    }
    for i, field in enumerate(fields):
        row = {
            "name": "",
            "type": "short_text",
            "required": "on",
            "order": i,
            "label_ja": "項目",
            "label_en": "Field",
            "help_text_ja": "",
            "help_text_en": "",
            "placeholder_ja": "",
            "placeholder_en": "",
            "default": "",
            "min_length": "",
            "max_length": "",
            "min_value": "",
            "max_value": "",
            "choices_ja": "",
            "choices_en": "",
        }
        row.update(field)
        data.update({f"fields-{i}-{key}": value for key, value in row.items()})
    data.update(extra)
    return data


def test_admin_saves_a_template_with_its_fields(staff_client):
    category = CategoryFactory()
    data = template_post_data(
        category, body_en="Write about {{ product }}.", fields=[{"name": "product"}]
    )
    response = staff_client.post(reverse("admin:templates_catalog_template_add"), data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    template = Template.objects.get(slug="new-template")
    assert list(template.fields.values_list("name", flat=True)) == ["product"]


def test_admin_refuses_a_prompt_naming_a_missing_field_and_saves_nothing(staff_client):
    category = CategoryFactory()
    data = template_post_data(
        category,
        body_en="Write about {{ product }} for {{ audience }}.",
        fields=[{"name": "product"}],
    )
    response = staff_client.post(reverse("admin:templates_catalog_template_add"), data)
    assert response.status_code == 200
    assert "names fields that do not exist: audience" in response.content.decode()
    assert not Template.objects.filter(slug="new-template").exists()
    assert not TemplateField.objects.exists()


def test_admin_refuses_deleting_a_field_the_prompt_still_uses(staff_client):
    template = template_with_fields()
    fields = list(template.fields.all())
    url = reverse("admin:templates_catalog_template_change", args=[template.pk])
    data = template_post_data(
        template.category,
        slug=template.slug,
        body_en=template.prompt_body_en,
        fields=[{"id": f.pk, "template": template.pk, "name": f.name} for f in fields],
        **{
            "fields-INITIAL_FORMS": str(len(fields)),
            "fields-0-DELETE": "on",
            "prompt_body_ja": "{{ recipient }}へ",
        },
    )
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "names fields that do not exist: recipient" in response.content.decode()
    assert template.fields.filter(name="recipient").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{% load static %}{{ product }}", "Encountered unknown tag"),
        ("{{ product.__class__ }}", "only field names, if and for are allowed"),
        ("{% include 'base.html' %}", "only field names, if and for are allowed"),
        ("{% if product %}unclosed", "Line 1"),
    ],
)
def test_admin_shows_prompt_syntax_errors_on_the_field(staff_client, body, message):
    data = template_post_data(CategoryFactory(), body_en=body, fields=[{"name": "product"}])
    response = staff_client.post(reverse("admin:templates_catalog_template_add"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Template.objects.exists()


def test_admin_refuses_choices_whose_values_differ_between_languages(staff_client):
    data = template_post_data(
        CategoryFactory(),
        body_en="{{ product }}",
        fields=[
            {
                "name": "product",
                "type": "select",
                "choices_ja": "a|あ\nb|い",
                "choices_en": "a|A\nc|C",
            }
        ],
    )
    response = staff_client.post(reverse("admin:templates_catalog_template_add"), data)
    assert response.status_code == 200
    assert "must be the same, in the same order" in response.content.decode()
    assert not Template.objects.exists()


def test_preview_renders_the_prompt_from_sample_inputs(staff_client):
    template = template_with_fields(sample_inputs_en={"recipient": "Ms Sato", "note": "the demo"})
    url = reverse("admin:templates_catalog_template_preview", args=[template.pk])
    response = staff_client.get(url, {"language": "en"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Write a thank-you email to Ms Sato. Mention: the demo" in page


def test_preview_renders_edited_values_and_reports_bad_ones(staff_client):
    template = template_with_fields()
    url = reverse("admin:templates_catalog_template_preview", args=[template.pk])
    ok = staff_client.post(url, {"language": "en", "recipient": "Mr Ito"}).content.decode()
    assert "Write a thank-you email to Mr Ito." in ok
    bad = staff_client.post(url, {"language": "en", "recipient": ""}).content.decode()
    assert "This field is required." in bad
    assert "Write a thank-you email to" not in bad


def test_preview_is_for_staff_only(client):
    template = template_with_fields()
    client.force_login(UserFactory())
    url = reverse("admin:templates_catalog_template_preview", args=[template.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_changelist_filters_and_searches(staff_client):
    template_with_fields(title_en="Apology email", slug="apology")
    url = reverse("admin:templates_catalog_template_changelist")
    response = staff_client.get(url, {"q": "apology", "status__exact": "published"})
    assert response.status_code == 200
    assert "Apology email" in response.content.decode()


def test_a_template_saved_in_admin_is_loaded_from_its_file_again_next_time(rf):
    """An edit in admin forgets which catalogue document the template came from,
    so the next import of that (unchanged) file is not skipped as unchanged."""
    template = template_with_fields(source_digest="a" * 64)
    model_admin = django_admin.site._registry[Template]
    request = rf.post("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    model_admin.save_model(request, template, form=None, change=True)
    assert Template.objects.get(pk=template.pk).source_digest == ""
