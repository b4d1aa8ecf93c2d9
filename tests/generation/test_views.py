"""Starting a generation from the form, regenerating, and each person's history."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from generation.models import Generation
from generation.text.runner import runner
from tests.factories import GenerationFactory, template_with_fields
from tests.fakes import GatedProvider
from tests.support.waiting import wait_for, wait_for_runs

pytestmark = pytest.mark.django_db(transaction=True)


def create_url(template) -> str:
    return reverse("generation:create", args=[template.slug])


def test_submitting_the_form_starts_a_generation_and_opens_it(user_client, user):
    template = template_with_fields()
    response = user_client.post(create_url(template), {"recipient": "Ms Sato", "note": ""})
    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == generation.get_absolute_url()
    assert generation.user == user
    assert generation.inputs == {"recipient": "Ms Sato", "note": ""}
    assert generation.prompt == "Write a thank-you email to Ms Sato."
    runner.wait(generation.pk, timeout=30)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.COMPLETED
    assert "Ms Sato" in generation.output


def test_with_htmx_the_answer_region_is_swapped_in_and_the_url_pushed(user_client):
    template = template_with_fields()
    response = user_client.post(
        create_url(template), {"recipient": "Ms Sato"}, headers={"HX-Request": "true"}
    )
    generation = Generation.objects.get()
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="workspace"')
    stream = reverse("generation:stream", args=[generation.pk])
    assert f'sse-connect="{stream}?allowance=1"' in page  # `done` updates the allowance too
    assert response["HX-Push-Url"] == reverse("generation:workspace", args=[generation.pk])
    runner.wait(generation.pk, timeout=30)


@pytest.mark.parametrize("htmx", [False, True])
def test_bad_input_shows_the_message_next_to_the_field_and_saves_nothing(user_client, htmx):
    template = template_with_fields()
    headers = {"HX-Request": "true"} if htmx else {}
    response = user_client.post(
        create_url(template), {"recipient": "", "note": "x" * 5000}, headers=headers
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-field="recipient"' in page
    assert 'id="id_recipient_error"' in page
    assert "This field is required." in page
    assert "at most 4000 characters" in page
    assert not Generation.objects.exists()


def test_generating_needs_a_login_and_saves_nothing(client):
    template = template_with_fields()
    response = client.post(create_url(template), {"recipient": "Ms Sato"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Generation.objects.exists()


def test_the_form_is_csrf_protected(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(create_url(template_with_fields()), {"recipient": "Ms Sato"})
    assert response.status_code == 403
    assert not Generation.objects.exists()


def test_unknown_or_draft_templates_are_not_found(user_client):
    assert user_client.post("/generations/new/nope/", {"recipient": "x"}).status_code == 404
    draft = template_with_fields(status="draft")
    assert user_client.post(create_url(draft), {"recipient": "x"}).status_code == 404


def test_get_is_not_allowed_on_create(user_client):
    assert user_client.get(create_url(template_with_fields())).status_code == 405


def test_regenerate_runs_the_same_inputs_again(user_client, user):
    template = template_with_fields()
    user_client.post(create_url(template), {"recipient": "Ms Sato", "note": "lunch"})
    first = Generation.objects.get()
    runner.wait(first.pk, timeout=30)
    response = user_client.post(reverse("generation:regenerate", args=[first.pk]))
    second = Generation.objects.exclude(pk=first.pk).get()
    assert response["Location"] == second.get_absolute_url()
    assert second.inputs == first.inputs
    assert second.prompt == first.prompt
    runner.wait(second.pk, timeout=30)


def test_history_lists_only_my_generations_newest_first(user_client, user):
    older = GenerationFactory(user=user, template_title="Older one")
    newer = GenerationFactory(user=user, template_title="Newer one")
    GenerationFactory(template_title="Someone else's")
    page = user_client.get(reverse("generation:history")).content.decode()
    assert page.index("Newer one") < page.index("Older one")
    assert "Someone else" not in page
    assert older.get_absolute_url() in page
    assert newer.get_absolute_url() in page


def test_history_detail_shows_inputs_prompt_output_timings_and_tokens(user_client, user):
    template = template_with_fields()
    user_client.post(create_url(template), {"recipient": "Ms Sato"})
    generation = Generation.objects.get()
    runner.wait(generation.pk, timeout=30)
    page = user_client.get(generation.get_absolute_url()).content.decode()
    generation.refresh_from_db()
    assert "Recipient" in page  # inputs by label
    assert "Write a thank-you email to Ms Sato." in page  # the prompt
    assert "<h2>Thank-you email</h2>" in page  # the answer, rendered as Markdown
    assert f"{len(generation.output):,} characters" in page
    # Tokens and the time to the first one, in the folded technical details.
    technical = page[page.index("data-technical") :]
    assert f"{generation.input_tokens} in / {generation.output_tokens} out" in technical
    assert "Time to first token" in technical


def test_another_persons_generation_is_not_found(user_client):
    other = GenerationFactory()
    assert user_client.get(other.get_absolute_url()).status_code == 404
    assert user_client.post(reverse("generation:regenerate", args=[other.pk])).status_code == 404


def test_history_needs_a_login(client):
    assert client.get(reverse("generation:history")).status_code == 302


def test_history_query_count_does_not_grow_with_rows(
    user_client, user, django_assert_max_num_queries
):
    for _ in range(25):
        GenerationFactory(user=user)
    with django_assert_max_num_queries(6):
        user_client.get(reverse("generation:history"))


def test_regenerating_inputs_that_no_longer_fit_the_form_shows_the_form_again(user_client, user):
    template = template_with_fields()
    previous = GenerationFactory(user=user, template=template, inputs={"note": "only a note"})
    response = user_client.post(reverse("generation:regenerate", args=[previous.pk]))
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Generation.objects.count() == 1


@pytest.fixture
def half_written(monkeypatch):
    """Generations started here stop after their first two deltas until released."""
    provider = GatedProvider(["## Plan\n\n", "We **will**", " ship.", "\n\nDone."], hold_after=2)
    monkeypatch.setattr(runner, "provider", provider)
    yield provider
    provider.release.set()
    wait_for_runs()


def test_a_refresh_while_it_streams_shows_the_filled_form_and_the_answer_still_streaming(
    user_client, half_written
):
    template = template_with_fields()
    response = user_client.post(
        create_url(template),
        {"recipient": "Ms Sato", "note": "lunch"},
        headers={"HX-Request": "true"},
    )
    generation = Generation.objects.get()
    wait_for(lambda: Generation.objects.get().output == "## Plan\n\nWe **will**")
    address = response["HX-Push-Url"]  # where the browser is after Generate

    page = user_client.get(address).content.decode()
    assert 'name="recipient" value="Ms Sato"' in page  # the form, filled in
    assert "lunch</textarea>" in page
    stream = reverse("generation:stream", args=[generation.pk])
    assert f'sse-connect="{stream}?allowance=1"' in page  # still streaming
    assert "<h2>Plan</h2>\n<p>We <strong>will</strong></p>" in page  # formatted so far
    assert " in / " not in page  # no token figures while it runs

    half_written.release.set()
    runner.wait(generation.pk, timeout=30)
    generation.refresh_from_db()
    page = user_client.get(address).content.decode()
    assert 'name="recipient" value="Ms Sato"' in page
    assert '<div class="markdown answer"><h2>Plan</h2>' in page
    assert "sse-connect" not in page
    assert f"{len(generation.output)} characters" in page  # its length, once finished


def test_the_details_page_shows_token_figures_only_once_finished(user_client, half_written):
    user_client.post(create_url(template_with_fields()), {"recipient": "Ms Sato"})
    generation = Generation.objects.get()
    wait_for(lambda: Generation.objects.get().status == Generation.Status.RUNNING)
    page = user_client.get(generation.get_absolute_url()).content.decode()
    assert "0 in / 0 out" not in page
    assert "<dt>Tokens</dt><dd>—</dd>" in page  # no token figures while it runs
    half_written.release.set()
    runner.wait(generation.pk, timeout=30)
    generation.refresh_from_db()
    page = user_client.get(generation.get_absolute_url()).content.decode()
    # Once finished, the technical details give the tokens.
    assert f"<dd>{generation.input_tokens} in / {generation.output_tokens} out</dd>" in page


def test_a_generation_whose_template_is_gone_opens_on_its_details_page(user_client, user):
    generation = GenerationFactory(user=user, template=template_with_fields(status="draft"))
    workspace = reverse("generation:workspace", args=[generation.pk])
    response = user_client.get(workspace)
    assert response.status_code == 302
    assert response["Location"] == generation.get_absolute_url()
    other = GenerationFactory()
    assert user_client.get(reverse("generation:workspace", args=[other.pk])).status_code == 404
