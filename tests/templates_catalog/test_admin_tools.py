"""The template admin's tools: publish and unpublish, duplicate as a draft,
export and import catalogue files, and a test run that streams the demo
model's answer to a template's samples."""

from __future__ import annotations

import html
import json
import re

import pytest
import yaml
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from generation.models import Generation
from generation.providers.demo import compose_demo_answer
from generation.sample_runs import sample_run_prepare
from templates_catalog.models import Category, Template, TemplateField, TemplateVersion
from tests.factories import (
    CategoryFactory,
    TemplateFactory,
    TemplateFieldFactory,
    UserFactory,
    staff_with_permissions,
    template_with_fields,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:templates_catalog_template_changelist")
IMPORT = reverse("admin:templates_catalog_template_import")
SAMPLES = {
    "sample_inputs_en": {"recipient": "Ms <b>Sato</b>", "note": "the lunch"},
    "sample_inputs_ja": {"recipient": "佐藤様", "note": ""},
}


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def act(client, action: str, *templates: Template):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [t.pk for t in templates], "index": 0},
    )


# Publish, unpublish ------------------------------------------------------------


def test_publish_and_unpublish_change_the_status_of_the_selected_templates(staff_client):
    drafts = TemplateFactory.create_batch(2, status=Template.Status.DRAFT)
    other = TemplateFactory(status=Template.Status.DRAFT)

    response = act(staff_client, "publish_selected", *drafts)
    assert response.status_code == 302
    assert {t.status for t in Template.objects.filter(pk__in=[d.pk for d in drafts])} == {
        "published"
    }
    other.refresh_from_db()
    assert other.status == "draft"

    response = act(staff_client, "unpublish_selected", drafts[0])
    drafts[0].refresh_from_db()
    assert drafts[0].status == "draft"
    page = staff_client.get(CHANGELIST + "?status__exact=draft").content.decode()
    assert "1 template set back to draft." in page
    assert page.count('class="action-checkbox"') == 2


def test_staff_who_may_only_view_cannot_publish(client):
    client.force_login(staff_with_permissions("view_template"))
    draft = TemplateFactory(status=Template.Status.DRAFT)
    act(client, "publish_selected", draft)
    draft.refresh_from_db()
    assert draft.status == "draft"


# Duplicate -----------------------------------------------------------------------


def test_duplicating_copies_the_fields_into_a_draft_under_a_free_slug(staff_client, staff):
    template = template_with_fields(
        slug="thanks", title_ja="お礼メール", title_en="Thanks", **SAMPLES
    )
    TemplateFieldFactory(
        template=template,
        name="tone",
        type=TemplateField.Type.SELECT,
        choices_ja="formal|丁寧\nwarm|温かく",
        choices_en="formal|Formal\nwarm|Warm",
        order=3,
    )

    assert act(staff_client, "duplicate_selected", template).status_code == 302
    act(staff_client, "duplicate_selected", template)

    first, second = Template.objects.filter(slug__startswith="thanks-copy").order_by("pk")
    assert (first.slug, second.slug) == ("thanks-copy", "thanks-copy-2")
    for copy in (first, second):
        assert copy.status == Template.Status.DRAFT
        assert (copy.title_ja, copy.title_en) == ("お礼メール（コピー）", "Thanks (copy)")
        assert copy.prompt_body_en == template.prompt_body_en
        assert copy.sample_inputs_en == SAMPLES["sample_inputs_en"]
        assert copy.category == template.category
        columns = ("name", "type", "required", "label_ja", "label_en", "choices_ja", "choices_en")
        assert list(copy.fields.values_list(*columns)) == list(
            template.fields.values_list(*columns)
        )
        assert copy.current_version.number == 1
        assert copy.current_version.created_by == staff
    assert template.fields.count() == 3
    template.refresh_from_db()
    assert (template.status, template.title_en) == ("published", "Thanks")


def test_a_copy_of_a_long_slug_still_fits(staff_client):
    template = template_with_fields(slug="x" * 50)
    act(staff_client, "duplicate_selected", template)
    act(staff_client, "duplicate_selected", template)
    slugs = sorted(Template.objects.exclude(pk=template.pk).values_list("slug", flat=True))
    assert slugs == ["x" * 43 + "-copy-2", "x" * 45 + "-copy"]


# Export --------------------------------------------------------------------------


def test_the_export_actions_download_the_selected_templates_by_category(staff_client):
    first = template_with_fields(category=CategoryFactory(order=1), **SAMPLES)
    second = template_with_fields(category=CategoryFactory(order=2))
    unselected = template_with_fields(category=first.category)

    response = act(staff_client, "export_yaml", second, first)
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert re.match(
        r'attachment; filename="catalogue-[\d-]+\.yaml"', response["Content-Disposition"]
    )
    documents = list(yaml.safe_load_all(response.content.decode()))
    assert [d["category"]["slug"] for d in documents] == [first.category.slug, second.category.slug]
    assert [t["slug"] for t in documents[0]["templates"]] == [first.slug]
    assert unselected.slug not in response.content.decode()
    assert documents[0]["templates"][0]["sample_inputs"]["en"] == SAMPLES["sample_inputs_en"]

    response = act(staff_client, "export_json", first, second)
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.content) == documents


def test_an_exported_selection_uploads_back(staff_client):
    template = template_with_fields(**SAMPLES)
    exported = act(staff_client, "export_json", template).content
    Template.objects.all().delete()
    response = upload(staff_client, "selection.json", exported)
    assert "1 template created" in response.content.decode()
    assert Template.objects.get().sample_inputs_en == SAMPLES["sample_inputs_en"]


# Import --------------------------------------------------------------------------

GOOD = """
category: {slug: letters, order: 5, name_ja: 手紙, name_en: Letters}
templates:
  - slug: thanks
    title_ja: お礼状
    title_en: Thank-you letter
    prompt_ja: "{{ recipient }}へのお礼状"
    prompt_en: "A thank-you letter to {{ recipient }}"
    fields:
      - {name: recipient, type: short_text, required: true, label_ja: 宛先, label_en: Recipient}
"""


def upload(client, name: str, content: bytes, **data):
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, content), **data})


def test_the_changelist_links_to_the_import_page_for_staff_who_may_add_and_change(client):
    client.force_login(staff_with_permissions("view_template", "add_template", "change_template"))
    assert IMPORT in client.get(CHANGELIST).content.decode()
    client.force_login(staff_with_permissions("view_template", "change_template"))
    assert IMPORT not in client.get(CHANGELIST).content.decode()


def test_uploading_a_file_imports_it_and_reports_what_changed(client):
    staff = staff_with_permissions("view_template", "add_template", "change_template")
    client.force_login(staff)
    assert client.get(IMPORT).status_code == 200

    response = upload(client, "letters.yaml", GOOD.encode())
    page = response.content.decode()
    assert response.status_code == 200
    assert "Imported." in page
    assert "1 template created: thanks" in page
    template = Template.objects.get(slug="thanks")
    assert template.category.name_en == "Letters"
    assert template.current_version.created_by == staff

    page = upload(client, "letters.yml", GOOD.encode()).content.decode()
    assert "1 template unchanged since the last import: thanks" in page
    assert "0 templates updated" in page
    assert "0 templates with a new version" in page
    retitled = GOOD.replace("title_en: Thank-you letter", "title_en: A letter of thanks")
    page = upload(client, "letters.yml", retitled.encode()).content.decode()
    assert "1 template updated: thanks" in page
    assert "1 template with a new version" in page


def test_check_only_reports_and_saves_nothing(staff_client):
    page = upload(staff_client, "letters.yaml", GOOD.encode(), check_only="on").content.decode()
    assert "The file is valid. Nothing was saved (check only)." in page
    assert "1 template created: thanks" in page
    assert not Template.objects.exists()
    assert not Category.objects.exists()


BAD_UPLOADS = [
    (
        "unknown.yaml",
        GOOD.replace("    title_ja:", "    colour: red\n    title_ja:").encode(),
        "unknown.yaml: templates[1] (thanks): unknown keys colour",
    ),
    ("broken.yaml", b"category: [unclosed\n", "broken.yaml: not valid YAML"),
    ("broken.json", b'{"category": {"slug": ', "broken.json: not valid JSON"),
    (
        "latin1.yaml",
        GOOD.encode("utf-8").replace("手紙".encode(), "café".encode("latin-1")),
        "latin1.yaml: not UTF-8",
    ),
    ("shape.json", b'["not", "a", "category"]', "shape.json (document 1): expected a mapping"),
    (
        "fields.yaml",
        GOOD.replace("fields:\n      - {name", "fields: {name").encode(),
        "fields.yaml: templates[1] (thanks).fields: expected a list",
    ),
    (
        "aliases.yaml",
        b"category: &c {slug: a}\ntemplates: [*c]\n",
        "aliases (*name) are not allowed",
    ),
    (
        "nul.json",
        b'{"category": {"slug": "x", "name_ja": "x\\u0000", "name_en": "x"}}',
        "nul.json: category.name_ja contains a NUL character",
    ),
    (
        "surrogate.json",
        b'{"category": {"slug": "x", "name_ja": "x", "name_en": "x\\ud800"}}',
        "surrogate.json: category.name_en contains text that is not valid Unicode",
    ),
    (
        "control.yaml",
        b'category: {slug: x, name_ja: "x", name_en: "x"}\ntemplates:\n  - {slug: t, title_ja: "a\\x07b"}\n',
        "control.yaml: templates[0].title_ja contains a control character",
    ),
    (
        "format.yaml",
        GOOD.replace("    title_ja:", "    answer_format: html\n    title_ja:").encode(),
        "format.yaml: templates[1] (thanks).answer_format: 'html' is not an answer format; "
        "use markdown or plain",
    ),
    ("big.yaml", b"#" * (5 * 1024 * 1024 + 1), "The file is larger than 5 MB"),
    ("letters.txt", GOOD.encode(), "Upload a .yaml, .yml or .json file."),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_UPLOADS)
def test_a_bad_upload_gets_a_clear_message_and_saves_nothing(staff_client, name, content, message):
    response = upload(staff_client, name, content)
    assert response.status_code == 200
    assert html.escape(message) in response.content.decode()
    assert not Template.objects.exists()
    assert not Category.objects.exists()
    assert not TemplateVersion.objects.exists()


def test_the_import_page_is_refused_without_add_and_change_permission(client):
    client.force_login(staff_with_permissions("view_template", "change_template"))
    assert client.get(IMPORT).status_code == 403
    assert upload(client, "letters.yaml", GOOD.encode()).status_code == 403
    client.force_login(UserFactory())
    response = client.get(IMPORT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not Template.objects.exists()


# Test run ------------------------------------------------------------------------


def sample_run_url(template: Template, *, stream: bool = False) -> str:
    name = "test_run_stream" if stream else "test_run"
    return reverse(f"admin:templates_catalog_template_{name}", args=[template.pk])


def test_the_change_page_links_to_the_test_run(staff_client):
    template = template_with_fields(**SAMPLES)
    url = reverse("admin:templates_catalog_template_change", args=[template.pk])
    assert sample_run_url(template) in staff_client.get(url).content.decode()


def test_the_test_run_page_streams_the_answer_to_the_samples(staff_client):
    template = template_with_fields(**SAMPLES)
    page = staff_client.get(sample_run_url(template), {"language": "en"}).content.decode()
    assert 'hx-ext="sse"' in page
    assert f'sse-connect="{sample_run_url(template, stream=True)}?language=en"' in page
    assert 'sse-swap="delta" hx-swap="beforeend"' in page
    assert 'sse-close="done"' in page
    assert "Write a thank-you email to Ms &lt;b&gt;Sato&lt;/b&gt;. Mention: the lunch" in page
    assert "vendor/htmx-ext-sse" in page


def test_the_test_run_page_shows_the_form_errors_of_bad_samples(staff_client):
    template = template_with_fields(sample_inputs_en={"note": "x" * 5000})
    page = staff_client.get(sample_run_url(template), {"language": "en"}).content.decode()
    assert "sse-connect" not in page
    assert "The sample inputs do not pass the form." in page
    assert "This field is required." in page
    assert "at most 4000 characters" in page


def parse_events(body: bytes) -> list[tuple[int, str, str]]:
    events = []
    for block in body.decode().split("\n\n"):
        lines = block.split("\n")
        fields = [line.partition(": ") for line in lines if not line.startswith("retry:")]
        if not fields or fields[0][0] != "id":
            continue
        data = "\n".join(value for key, _sep, value in fields if key == "data")
        events.append((int(fields[0][2]), fields[1][2], data))
    return events


async def read_stream(async_client, template: Template, **headers) -> tuple[object, list]:
    response = await async_client.get(
        sample_run_url(template, stream=True), {"language": "en"}, headers=headers
    )
    body = b"".join([chunk async for chunk in response.streaming_content])
    return response, parse_events(body)


@pytest.mark.django_db(transaction=True)
async def test_the_test_run_streams_escaped_deltas_then_done_and_stores_nothing(async_client):
    staff = await sync_to_async(UserFactory)(is_staff=True, is_superuser=True)
    template = await sync_to_async(template_with_fields)(**SAMPLES)
    await async_client.aforce_login(staff)

    response, events = await read_stream(async_client, template)

    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    names = [name for _id, name, _data in events]
    assert set(names[:-1]) == {"delta"}
    assert names[-1] == "done"
    assert "Finished (stop)" in events[-1][2]
    assert [event_id for event_id, _name, _data in events] == list(range(1, len(events) + 1))
    text = "".join(data for _id, name, data in events if name == "delta")
    assert "Ms &lt;b&gt;Sato&lt;/b&gt;" in text
    run = await sync_to_async(sample_run_prepare)(template=template, language="en")
    assert html.unescape(text) == compose_demo_answer(run.request)
    assert not await Generation.objects.aexists()

    # A reconnect gets exactly the events after the last one it had.
    _response, rest = await read_stream(async_client, template, **{"Last-Event-ID": "5"})
    assert rest == events[5:]


@pytest.mark.django_db(transaction=True)
async def test_the_test_run_of_bad_samples_sends_the_error_and_done(async_client):
    staff = await sync_to_async(UserFactory)(is_staff=True, is_superuser=True)
    template = await sync_to_async(template_with_fields)(sample_inputs_en={})
    await async_client.aforce_login(staff)
    _response, events = await read_stream(async_client, template)
    assert [(name, data) for _id, name, data in events] == [
        ("error", "The sample inputs do not pass the form."),
        ("done", ""),
    ]


@pytest.mark.django_db(transaction=True)
async def test_the_test_run_is_for_staff_only(async_client):
    template = await sync_to_async(template_with_fields)(**SAMPLES)
    url = sample_run_url(template, stream=True)
    assert (await async_client.get(url)).status_code == 403
    await async_client.aforce_login(await sync_to_async(UserFactory)())
    assert (await async_client.get(url)).status_code == 403
    assert (await async_client.get(sample_run_url(template))).status_code == 302
