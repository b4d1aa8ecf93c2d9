"""Template versions: every save that changes what shapes a generation records
one, and every generation keeps the version it ran with."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import Generation
from generation.services import generation_continue, generation_create
from templates_catalog.models import Template, TemplateField, TemplateVersion
from templates_catalog.versions import (
    snapshot_digest,
    template_snapshot,
    template_version_current,
    version_changes,
)
from tests.factories import (
    UserFactory,
    template_admin_data,
    template_with_fields,
)

pytestmark = pytest.mark.django_db

# Queries of generation_create for a text template, measured before versions
# existed: savepoint, generation, usage record, release.
QUERIES_BEFORE_VERSIONS = 4
FIRST_BODY_EN = (
    "Write a thank-you email to {{ recipient }}.{% if note %} Mention: {{ note }}{% endif %}"
)


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def change_url(template: Template) -> str:
    return reverse("admin:templates_catalog_template_change", args=[template.pk])


def start(user, template: Template, **inputs) -> Generation:
    fields = list(template.fields.all())
    return generation_create(
        user=user,
        template=template,
        inputs={"recipient": "Ms Sato", "note": "", **inputs},
        language="en",
        fields=fields,
    )


def test_a_generation_keeps_showing_the_version_it_used_after_staff_change_the_template(
    client, user, staff
):
    template = template_with_fields(title_en="Thank-you email")
    first = start(user, template)
    assert first.template_version.number == 1
    assert first.template_version.title("en") == "Thank-you email"

    client.force_login(staff)
    response = client.post(
        change_url(template),
        template_admin_data(
            template,
            title_en="Warm thank-you email",
            prompt_body_en="Write a warm thank-you email to {{ recipient }}.",
        ),
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.current_version.number == 2

    second = start(user, template)
    assert second.template_version.number == 2
    assert second.template_title == "Warm thank-you email"
    first.refresh_from_db()
    assert first.template_version.number == 1
    assert first.template_version.snapshot["prompt_body"]["en"] == FIRST_BODY_EN

    client.force_login(user)
    page = client.get(first.get_absolute_url()).content.decode()
    assert "<h1>Thank-you email</h1>" in page
    assert "Template version 1" in page
    assert "the template has changed since" in page
    page = client.get(second.get_absolute_url()).content.decode()
    assert "Template version 2" in page
    assert "the template has changed since" not in page

    history = client.get(reverse("generation:history")).content.decode()
    assert (
        f'<a href="{first.get_absolute_url()}">Thank-you email</a>'
        ' <span class="template-version">version 1</span>'
    ) in history
    assert (
        f'<a href="{second.get_absolute_url()}">Warm thank-you email</a>'
        ' <span class="template-version">version 2</span>'
    ) in history


def test_the_first_generation_of_an_unversioned_template_records_version_one(user):
    template = template_with_fields()
    assert template.current_version is None
    generation = start(user, template)
    template.refresh_from_db()
    assert template.current_version == generation.template_version
    assert generation.template_version.number == 1
    assert [f["name"] for f in generation.template_version.snapshot["fields"]] == [
        "recipient",
        "note",
    ]


def test_nothing_changed_means_no_new_version(user):
    template = template_with_fields()
    first = template_version_current(template=template)
    again = template_version_current(template=template)
    assert again == first
    # Sort order, status, tags and samples do not shape a generation.
    template.order, template.status, template.tags = 99, Template.Status.DRAFT, "new, tags"
    template.sample_inputs_en = {"recipient": "Someone else"}
    template.save()
    assert template_version_current(template=template) == first
    assert TemplateVersion.objects.filter(template=template).count() == 1


def test_a_changed_field_records_the_next_version(user):
    template = template_with_fields()
    template_version_current(template=template)
    TemplateField.objects.filter(template=template, name="note").update(max_length=300)
    version = template_version_current(template=template, user=user)
    assert version.number == 2
    assert version.created_by == user
    assert template.current_version == version


def test_the_digest_does_not_depend_on_how_a_limit_was_read():
    template = Template(kind="text", tier="standard", title_ja="t", title_en="t")
    as_typed = TemplateField(name="count", type="number", min_value=Decimal("1"), order=1)
    as_stored = TemplateField(name="count", type="number", min_value=Decimal("1.0000"), order=1)
    digests = {
        snapshot_digest(template_snapshot(template=template, fields=[field]))
        for field in (as_typed, as_stored)
    }
    assert len(digests) == 1


def test_saving_in_admin_records_a_version_by_whoever_saved_it(staff_client, staff):
    template = template_with_fields()
    response = staff_client.post(change_url(template), template_admin_data(template))
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.current_version.number == 1
    assert template.current_version.created_by == staff

    # Saving again without a change keeps the version.
    staff_client.post(change_url(template), template_admin_data(template))
    assert template.versions.count() == 1

    data = template_admin_data(template, **{"fields-1-label_en": "A note for the writer"})
    staff_client.post(change_url(template), data)
    template.refresh_from_db()
    assert template.current_version.number == 2
    assert template.current_version.snapshot["fields"][1]["label"]["en"] == "A note for the writer"


def test_saving_from_a_browser_with_crlf_line_ends_records_no_change(staff_client):
    template = template_with_fields(system_prompt_en="Line one.\nLine two.")
    TemplateField.objects.filter(name="note").update(choices_en="a|A\nb|B")
    version = template_version_current(template=template)
    data = {
        key: value.replace("\n", "\r\n") for key, value in template_admin_data(template).items()
    }
    staff_client.post(change_url(template), data)
    template.refresh_from_db()
    assert template.system_prompt_en == "Line one.\nLine two."
    assert template.fields.get(name="note").choices_en == "a|A\nb|B"
    assert template.current_version == version


def test_the_change_page_lists_the_versions_with_what_changed_and_their_generations(
    staff_client, user
):
    template = template_with_fields()
    start(user, template)
    start(user, template)
    staff_client.post(
        change_url(template), template_admin_data(template, title_en="Thanks, formally")
    )
    page = staff_client.get(change_url(template)).content.decode()
    assert 'class="template-versions"' in page
    rows = page.split('<table class="template-versions">')[1].split("</table>")[0]
    # Newest first: version 2 changed the title and has no generations yet.
    assert rows.index("<td>2 (current)</td>") < rows.index("<td>1</td>")
    assert "<td>title (en)</td><td>0</td>" in rows
    assert "<td>first version</td><td>2</td>" in rows


def test_version_changes_name_what_changed():
    before = {
        "kind": "text",
        "tier": "standard",
        "title": {"ja": "a", "en": "a"},
        "fields": [
            {"name": "x", "type": "short_text", "label": {"ja": "x", "en": "x"}},
            {"name": "y", "type": "short_text", "label": {"ja": "y", "en": "y"}},
        ],
    }
    after = {
        "kind": "text",
        "tier": "advanced",
        "title": {"ja": "a", "en": "b"},
        "fields": [
            {"name": "x", "type": "long_text", "label": {"ja": "x", "en": "x"}},
            {"name": "z", "type": "short_text", "label": {"ja": "z", "en": "z"}},
        ],
    }
    assert version_changes(before, after) == [
        "model tier",
        "title (en)",
        "fields added: z",
        "fields removed: y",
        "field x: type",
    ]
    assert version_changes(None, after) == ["first version"]
    assert version_changes(after, after) == ["no change"]


def test_a_continuation_keeps_the_version_of_the_answer_it_continues(user):
    template = template_with_fields()
    first = start(user, template)
    Generation.objects.filter(pk=first.pk).update(
        status=Generation.Status.COMPLETED, finish_reason="length", output="Dear"
    )
    template.prompt_body_en = "Write to {{ recipient }}."
    template.save()
    template_version_current(template=template)
    first.refresh_from_db()
    continuation = generation_continue(generation=first)
    assert continuation.template_version_id == first.template_version_id


def test_creating_a_generation_adds_no_query_when_the_version_exists(user):
    template = template_with_fields()
    template_version_current(template=template)
    template.refresh_from_db()
    fields = list(template.fields.all())
    inputs = {"recipient": "Ms Sato", "note": ""}
    with CaptureQueriesContext(connection) as queries:
        generation = generation_create(
            user=user, template=template, inputs=inputs, language="en", fields=fields
        )
    assert generation.template_version_id == template.current_version_id
    assert len(queries) <= QUERIES_BEFORE_VERSIONS + 1, [q["sql"] for q in queries]
    assert not [q for q in queries if "templateversion" in q["sql"].lower()]


def test_history_shows_every_row_s_version_without_more_queries(
    user_client, user, django_assert_max_num_queries
):
    template = template_with_fields()
    for _ in range(25):
        start(user, template)
    # As many as the history page takes without versions (test_views).
    with django_assert_max_num_queries(6):
        page = user_client.get(reverse("generation:history")).content.decode()
    assert page.count('<span class="template-version">version 1</span>') == 20


def test_deleting_a_template_keeps_its_generations_without_a_version(user):
    template = template_with_fields()
    generation = start(user, template)
    Generation.objects.filter(pk=generation.pk).update(status=Generation.Status.COMPLETED)
    template.delete()
    generation.refresh_from_db()
    assert (generation.template, generation.template_version) == (None, None)
    assert not TemplateVersion.objects.exists()
