"""A sandbox with a budget: prompt bodies that would blow up memory or CPU are
refused when they are checked (admin save, import, check_catalog) within a
second, and stopped cheaply at render time if one was stored anyway."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from generation.models import Generation
from templates_catalog.catalog_io import CatalogError, import_catalog_documents
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import (
    PromptBudgetError,
    PromptSyntaxError,
    parse_prompt,
    render_prompt,
)
from tests.factories import CategoryFactory, UserFactory, template_with_fields
from tests.templates_catalog.test_admin import template_post_data

VALUES = {"text": "あ" * 4000, "n": 10**6, "items": ["a", "b"]}

# Bodies that cost too much whatever the inputs: refused when parsed.
CONSTANT_BLOWUPS = [
    ('{{ "x" * 10**9 }}', "longer than 100,000 characters"),
    ("{{ 10**10**10 }}", "number too large"),
    ("{{ 9**9**9 }}", "number too large"),
    ('{{ "ab" * 99999 * 99999 }}', "longer than 100,000 characters"),
    ('{{ "%999999999d" % 1 }}', "formatting with the percent operator"),
    ('{{ ("a" * 90000) ~ ("a" * 90000) }}', "longer than 100,000 characters"),
]
# Bodies that are fine on a short sample and blow up on long inputs.
INPUT_BLOWUPS = [
    "{% for a in text %}{% for b in text %}{% for c in text %}{% endfor %}{% endfor %}{% endfor %}",
    "{{ text * n }}",
    '{{ text|replace("あ", text)|replace("あ", text) }}',
    "{{ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text ~ text }}",
    "{{ n ** n }}",
    "{{ items * n }}",
    "{% for a in text %}{{ text|join(text) }}{% endfor %}",
]
# What a prompt needs stays possible.
ORDINARY = [
    ("{{ text|truncate(10) }}", "あああああああ..."),
    (
        '{% for i in items %}{{ loop.index }}{{ i }} {% endfor %}{{ n * 2 }} {{ "-" * 3 }}',
        "1a 2b 2000000 ---",
    ),
    ("{% if n > 3 %}big{% else %}small{% endif %}", "big"),
]


@pytest.mark.parametrize(("body", "message"), CONSTANT_BLOWUPS)
def test_a_body_too_large_whatever_the_inputs_is_refused_when_parsed(body, message):
    started = time.monotonic()
    with pytest.raises(PromptSyntaxError, match=message):
        parse_prompt(body)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("body", INPUT_BLOWUPS)
def test_a_body_that_blows_up_on_long_inputs_stops_within_its_budget(body):
    started = time.monotonic()
    with pytest.raises(PromptBudgetError):
        render_prompt(body, VALUES)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(("body", "expected"), ORDINARY)
def test_ordinary_bodies_render_as_before(body, expected):
    assert render_prompt(body, VALUES) == expected


@pytest.mark.parametrize(
    "body",
    ["{% set x = 'a' %}{{ x }}", "{{ [1, 2] }}", "{{ {'a': 1} }}", "{% with x = 1 %}{% endwith %}"],
)
def test_only_the_pieces_a_prompt_needs_exist(body):
    with pytest.raises(PromptSyntaxError, match="only field names, if and for"):
        parse_prompt(body)


# --- where bodies are checked ------------------------------------------------------


def catalogue_document(body: str) -> dict:
    return {
        "category": {"slug": "budget", "order": 1, "name_ja": "予算", "name_en": "Budget"},
        "templates": [
            {
                "slug": "hostile",
                "title_ja": "危険",
                "title_en": "Hostile",
                "prompt_ja": "{{ text }}",
                "prompt_en": body,
                "fields": [
                    {"name": "text", "type": "long_text", "label_ja": "本文", "label_en": "Text"},
                    {"name": "n", "type": "number", "label_ja": "数", "label_en": "N"},
                ],
            }
        ],
    }


@pytest.mark.django_db
@pytest.mark.parametrize("body", [body for body, _ in CONSTANT_BLOWUPS] + INPUT_BLOWUPS[:3])
def test_an_imported_catalogue_with_such_a_body_is_refused_quickly_and_loads_nothing(body):
    started = time.monotonic()
    with pytest.raises(CatalogError, match="prompt"):
        import_catalog_documents([("hostile.yaml", catalogue_document(body))])
    assert time.monotonic() - started < 1.5
    assert not Template.objects.exists()


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
def test_admin_refuses_a_body_that_blows_up_on_long_inputs_and_saves_nothing(staff_client):
    data = template_post_data(
        CategoryFactory(),
        body_en=INPUT_BLOWUPS[0].replace("text", "product"),
        fields=[{"name": "product", "type": "long_text"}],
    )
    started = time.monotonic()
    response = staff_client.post(reverse("admin:templates_catalog_template_add"), data)
    assert time.monotonic() - started < 2
    assert response.status_code == 200
    assert "repeats itself too many times" in response.content.decode()
    assert not Template.objects.filter(slug="new-template").exists()


@pytest.mark.django_db
def test_check_catalog_reports_a_stored_body_that_blows_up(tmp_path):
    template = template_with_fields(slug="stored-hostile")
    Template.objects.filter(pk=template.pk).update(
        prompt_body_en="{% for a in note %}{% for b in note %}{% for c in note %}x{% endfor %}{% endfor %}{% endfor %}"
    )
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("check_catalog", stdout=out, stderr=out)
    assert "stored-hostile" in out.getvalue()
    assert "with the longest inputs the form accepts" in out.getvalue()


@pytest.mark.django_db
def test_a_person_whose_template_blows_up_gets_the_form_with_a_message(client):
    """A body stored before these checks (or written to the database directly)
    fails fast for the person using it: the form again, with a message."""
    client.force_login(UserFactory())
    template = template_with_fields(slug="stored-hostile")
    Template.objects.filter(pk=template.pk).update(
        prompt_body_en="{% for a in note %}{% for b in note %}{% for c in note %}x{% endfor %}{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    response = client.post(
        reverse("generation:create", args=["stored-hostile"]),
        {"recipient": "Ms Sato", "note": "x" * 4000},
    )
    assert time.monotonic() - started < 2
    assert response.status_code == 200
    assert "repeats itself too many times" in response.content.decode()
    assert not Generation.objects.exists()
    assert TemplateField.objects.filter(template=template).count() == 2
