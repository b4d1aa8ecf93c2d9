"""Plans: generations at once and a minute, quotas of output tokens and images,
reserved before a run and settled after it, never overdrawn."""

from __future__ import annotations

import importlib
import json
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import connections
from django.utils import timezone

from generation.lifecycle.limits import LimitExceeded, allowance_of
from generation.lifecycle.transitions import generation_finish
from generation.models import Generation, UsageRecord
from generation.services import generation_cancel, generation_create
from generation.text.requests import generation_text_request
from generation.text.runner import runner
from studio.models import Plan, PlanMembership
from studio.services import api_token_create
from tests.factories import UserFactory, image_template, template_with_fields

Status = Generation.Status


@pytest.fixture(autouse=True)
def _plans_enforced(settings):
    settings.STUDIO_ENFORCE_PLANS = True
    settings.STUDIO_QUOTA_TOKEN_RESERVATION = 40


def plan(**limits) -> Plan:
    values = {
        "max_concurrent": None,
        "requests_per_minute": None,
        "daily_output_tokens": None,
        "monthly_output_tokens": None,
        "daily_images": None,
        "monthly_images": None,
    }
    Plan.objects.filter(is_default=True).update(is_default=False)
    return Plan.objects.create(
        name=f"Plan {Plan.objects.count()}", is_default=True, **values | limits
    )


def create(user, template=None, **inputs):
    template = template or template_with_fields()
    return generation_create(
        user=user, template=template, inputs=inputs or {"recipient": "Sato"}, language="en"
    )


def finish(generation, *, status=Status.COMPLETED, output_tokens=0):
    generation_finish(
        generation_id=generation.pk, status=status, output="x", output_tokens=output_tokens
    )


# --- Plans ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_free_plan_is_created_as_the_default():
    Plan.objects.all().delete()
    migration = importlib.import_module("studio.migrations.0002_plans")
    migration.create_free_plan(apps, None)
    migration.create_free_plan(apps, None)  # idempotent
    free = Plan.objects.get()
    assert (free.name, free.is_default) == ("Free", True)
    assert free.daily_output_tokens > 0
    assert free.max_concurrent > 0


@pytest.mark.django_db
def test_a_person_given_a_plan_uses_it_instead_of_the_default(user):
    default = plan(max_concurrent=1)
    generous = Plan.objects.create(name="Team", max_concurrent=5)
    # Others listed on either plan change nothing for this person.
    PlanMembership.objects.create(user=UserFactory(), plan=default)
    PlanMembership.objects.create(user=UserFactory(), plan=generous)
    PlanMembership.objects.create(user=user, plan=generous)
    PlanMembership.objects.create(user=UserFactory(), plan=default)
    assert allowance_of(user).plan == generous
    assert allowance_of(UserFactory()).plan.max_concurrent == 1


@pytest.mark.django_db
def test_without_enforcement_nobody_is_limited(user, settings):
    plan(max_concurrent=1)
    settings.STUDIO_ENFORCE_PLANS = False
    create(user)
    create(user)
    assert Generation.objects.count() == 2


# --- At once and a minute ----------------------------------------------------------


@pytest.mark.django_db
def test_a_person_cannot_run_more_at_once_than_the_plan_allows(user):
    plan(max_concurrent=1)
    running = create(user)
    with pytest.raises(LimitExceeded, match="1 generation running"):
        create(user)
    # Nothing of the refused one is saved, and someone else is not affected.
    assert Generation.objects.count() == UsageRecord.objects.count() == 1
    create(UserFactory())
    finish(running, output_tokens=3)
    create(user)


@pytest.mark.django_db
def test_the_requests_a_minute_are_limited_and_say_when_to_try_again(user):
    plan(requests_per_minute=2)
    for _ in range(2):
        finish(create(user))
    with pytest.raises(LimitExceeded, match="2 generations a minute") as refused:
        create(user)
    assert 1 <= refused.value.retry_after <= 61
    UsageRecord.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    create(user)


# --- Quotas ------------------------------------------------------------------------


@pytest.mark.django_db
def test_tokens_are_reserved_then_settled_to_what_was_used(user):
    plan(daily_output_tokens=100)
    generation = create(user)
    assert allowance_of(user).tokens_left == 60  # 40 reserved
    finish(generation, output_tokens=7)
    assert allowance_of(user).tokens_left == 93
    record = UsageRecord.objects.get()
    assert (record.status, record.output_tokens, record.charged_output_tokens) == (
        Status.COMPLETED,
        7,
        7,
    )


@pytest.mark.django_db
def test_the_last_tokens_are_reserved_and_then_the_quota_refuses(user):
    plan(daily_output_tokens=90)
    create(user)
    create(user)
    third = create(user)
    assert UsageRecord.objects.get(generation=third).charged_output_tokens == 10
    with pytest.raises(LimitExceeded, match="reached today's limit of your plan") as refused:
        create(user)
    assert refused.value.retry_after > 0
    assert Generation.objects.count() == 3


@pytest.mark.django_db
def test_a_failed_or_cancelled_generation_gives_its_reservation_back(user):
    plan(daily_output_tokens=100)
    failed, cancelled, completed = create(user), create(user), create(user)
    assert allowance_of(user).tokens_left == 0
    finish(failed, status=Status.FAILED, output_tokens=5)
    generation_cancel(generation=cancelled)  # still queued: cancelled at once
    finish(completed, output_tokens=12)
    assert allowance_of(user).tokens_left == 88
    assert UsageRecord.objects.get(generation=failed).charged_output_tokens == 0
    assert UsageRecord.objects.get(generation=cancelled).status == Status.CANCELLED


@pytest.mark.django_db
def test_days_and_months_begin_at_midnight_in_the_sites_time_zone(user):
    plan(daily_output_tokens=100, monthly_output_tokens=110)
    tokyo = ZoneInfo("Asia/Tokyo")

    def used(tokens: int, at: datetime) -> None:
        UsageRecord.objects.create(
            user=user, template_title="t", charged_output_tokens=tokens, created_at=at
        )

    used(30, datetime(2026, 11, 15, 0, 5, tzinfo=tokyo))  # today, just after midnight
    used(50, datetime(2026, 11, 14, 23, 55, tzinfo=tokyo))  # yesterday: this month
    used(70, datetime(2026, 10, 31, 23, 59, tzinfo=tokyo))  # last month
    allowance = allowance_of(user, now=datetime(2026, 11, 15, 12, 0, tzinfo=tokyo))
    assert (allowance.tokens_today, allowance.tokens_this_month) == (30, 80)
    assert allowance.tokens_left == 30  # the month's 110 less 80, under the day's 70


@pytest.mark.django_db
def test_deleting_history_does_not_give_usage_back(user):
    plan(daily_output_tokens=100)
    generation = create(user)
    finish(generation, output_tokens=30)
    Generation.objects.filter(pk=generation.pk).delete()
    assert allowance_of(user).tokens_left == 70
    assert UsageRecord.objects.get().generation is None


@pytest.mark.django_db
def test_images_are_counted_against_the_image_quota(user):
    plan(daily_images=3)
    template = image_template()
    create(user, template, subject="a mug", count="2")
    with pytest.raises(LimitExceeded, match="1 more image today, and this asks for 2"):
        create(user, template, subject="a mug", count="2")
    create(user, template, subject="a mug", count="1")
    with pytest.raises(LimitExceeded, match="all the images"):
        create(user, template, subject="a mug")


@pytest.mark.django_db
def test_generations_left_are_reckoned_at_the_persons_typical_answer(user):
    plan(daily_output_tokens=1000)
    # Before three answers: at what one reserves (40), so the figure starts low.
    assert allowance_of(user).text_generations_left == 25
    for _ in range(3):
        finish(create(user), output_tokens=10)
    allowance = allowance_of(user)
    assert (allowance.typical_output_tokens, allowance.tokens_left) == (10, 970)
    assert allowance.text_generations_left == 97
    assert allowance.tokens_period == "day"


@pytest.mark.django_db
def test_a_few_tokens_left_still_make_one_generation_and_none_make_none(user):
    plan(daily_output_tokens=50)
    finish(create(user), output_tokens=40)
    assert allowance_of(user).text_generations_left == 1  # its answer capped at the 10 left
    finish(create(user), output_tokens=10)
    assert allowance_of(user).text_generations_left == 0


@pytest.mark.django_db
def test_the_monthly_limit_is_told_as_the_months_and_renews_on_the_first(user):
    plan(daily_output_tokens=1000, monthly_output_tokens=40)
    finish(create(user), output_tokens=40)
    assert allowance_of(user).tokens_period == "month"
    with pytest.raises(LimitExceeded, match="this month's limit") as refused:
        create(user)
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0) + timedelta(days=1)
    assert refused.value.retry_after >= int((midnight - timezone.now()).total_seconds())


# --- What people see --------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_refuses_with_429_retry_after_and_saves_nothing(user, client):
    plan(max_concurrent=1)
    create(user)
    _token, secret = api_token_create(user=user, name="x")
    template = template_with_fields()
    response = client.post(
        "/api/v1/generations",
        json.dumps({"template": template.slug, "inputs": {"recipient": "Sato"}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 429
    assert "running" in response.json()["error"]
    assert int(response["Retry-After"]) > 0
    assert Generation.objects.count() == 1


@pytest.mark.django_db
def test_the_page_shows_what_is_left_and_a_refusal_as_a_message(user_client, user):
    plan(daily_output_tokens=100, max_concurrent=1)
    template = template_with_fields()
    page = user_client.get(template.get_absolute_url()).content.decode()
    assert "About 2 more generations today." in page  # 100 tokens, 40 a generation
    assert "Up to 1 generation at once." in page
    create(user, template)
    response = user_client.post(
        f"/generations/new/{template.slug}/", {"recipient": "Sato"}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "as many as your plan allows at once" in page
    assert "About 1 more generation today." in page  # 60 tokens left
    assert Generation.objects.count() == 1


# --- Together ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_requests_never_overdraw_the_token_quota(settings):
    """Each request reserves under the person's lock; the answers are capped at
    what they reserved, so the quota holds however the requests interleave."""
    settings.STUDIO_QUOTA_TOKEN_RESERVATION = 12
    plan(daily_output_tokens=100)
    user = UserFactory()
    template = template_with_fields()
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def request() -> None:
        try:
            start.wait(timeout=10)
            generation = create(user, template)
            outcomes.append(str(generation.pk))
        except LimitExceeded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    accepted = [outcome for outcome in outcomes if outcome != "refused"]
    for generation_id in accepted:
        runner.wait(generation_id, timeout=30)
    assert len(outcomes) == 20
    # 8 reservations of 12 and one of the last 4 tokens; the rest refused.
    assert len(accepted) == 9
    records = UsageRecord.objects.filter(user=user)
    assert sum(r.charged_output_tokens for r in records) <= 100
    generations = Generation.objects.filter(user=user)
    assert all(g.status == Status.COMPLETED for g in generations)
    assert sum(g.output_tokens for g in generations) <= 100
    assert any(g.finish_reason == "length" for g in generations)
    assert generation_text_request(generations[0]).max_output_tokens <= 12
