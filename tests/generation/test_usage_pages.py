"""The usage pages: a person's own usage against their plan, by day and by
template; staff's totals by person, template and model, with CSV downloads."""

from __future__ import annotations

import csv
import datetime
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from generation.models import UsageRecord
from generation.reports.dashboards import (
    UsagePeriod,
    staff_usage_by_model,
    staff_usage_by_person,
    staff_usage_by_template,
    usage_by_day,
    usage_by_template,
)
from studio.models import Plan
from tests.factories import TemplateFactory, UsageRecordFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
USAGE = reverse("generation:usage")
STAFF_USAGE = reverse("generation:staff_usage")


def tokyo(day: datetime.date, hour: int = 12, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=TOKYO)


def today() -> datetime.date:
    return timezone.localdate(timezone=TOKYO)


def used(user, *, at: datetime.datetime | None = None, **kwargs) -> UsageRecord:
    return UsageRecordFactory(user=user, created_at=at or timezone.now(), **kwargs)


def default_plan(**limits) -> Plan:
    """The plan everyone is on (replacing the one the migrations made)."""
    Plan.objects.filter(is_default=True).update(is_default=False)
    return Plan.objects.create(is_default=True, **limits)


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True))
    return client


# A person's page -------------------------------------------------------------


def test_usage_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get(USAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_person_sees_only_their_own_usage(user_client, user):
    mine = TemplateFactory(title_en="My newsletter")
    theirs = TemplateFactory(title_en="Someone else's secret plan")
    used(user, template=mine, output_tokens=321)
    used(UserFactory(), template=theirs, output_tokens=98765, images=3)

    response = user_client.get(USAGE)

    assert response.status_code == 200
    body = response.content.decode()
    assert "My newsletter" in body
    assert "Someone else" not in body
    assert "98,765" not in body
    assert [row.name for row in response.context["templates"]] == ["My newsletter"]
    assert response.context["total"].output_tokens == 321
    assert sum(day.output_tokens for day in response.context["daily"]) == 321


def test_days_are_counted_in_tokyo_time_across_midnight(user):
    day = datetime.date(2025, 3, 10)
    # 00:30 in Tokyo is still the evening before in UTC: it belongs to the 10th.
    used(user, at=tokyo(day, 0, 30), output_tokens=10, estimated_cost_micros=1_000)
    used(user, at=tokyo(day, 23, 59), output_tokens=20, images=2)
    used(user, at=tokyo(day - datetime.timedelta(days=1), 23, 59), output_tokens=5)
    used(user, at=tokyo(day + datetime.timedelta(days=1), 0, 0), output_tokens=1000)

    days = usage_by_day(user, days=7, today=day)

    assert [entry.day for entry in days] == [
        day - datetime.timedelta(days=n) for n in range(6, -1, -1)
    ]
    by_day = {entry.day: entry for entry in days}
    assert by_day[day].output_tokens == 30
    assert by_day[day].images == 2
    assert by_day[day].generations == 2
    assert by_day[day].cost_micros == 1_000
    assert by_day[day - datetime.timedelta(days=1)].output_tokens == 5
    # The next day is outside the period.
    assert sum(entry.output_tokens for entry in days) == 35


def test_days_without_usage_are_zero(user):
    day = datetime.date(2025, 3, 10)
    used(user, at=tokyo(day - datetime.timedelta(days=3)), output_tokens=7)

    days = usage_by_day(user, days=30, today=day)

    assert len(days) == 30
    assert [entry.output_tokens for entry in days].count(0) == 29
    assert all(entry.images == 0 and entry.cost_micros == 0 for entry in days)


def test_usage_page_draws_a_bar_for_every_day_including_empty_ones(user_client, user):
    used(user, at=tokyo(today() - datetime.timedelta(days=3)), output_tokens=7)

    response = user_client.get(USAGE)

    body = response.content.decode()
    assert len(response.context["daily"]) == 30
    # The output-token chart has a bar per day; the images chart has nothing to draw.
    output_chart = str(response.context["charts"][0][1])
    assert output_chart.count('<g class="bar">') == 30
    assert "Nothing used in this period." in str(response.context["charts"][1][1])
    assert body.count('<tr><th scope="row">') >= 30  # the days as a table


def test_usage_by_template_totals_and_keeps_deleted_templates(user):
    email = TemplateFactory(title_en="Thank-you email", title_ja="お礼メール")
    photo = TemplateFactory(title_en="Product photo", kind="image")
    now = timezone.now()
    for tokens in (100, 200, 300):
        used(user, template=email, output_tokens=tokens, estimated_cost_micros=tokens * 10, at=now)
    used(user, template=photo, output_tokens=0, images=4, estimated_cost_micros=160_000, at=now)
    used(user, template=None, template_title="Old template", output_tokens=50, at=now)
    used(user, template=email, output_tokens=999, at=now - datetime.timedelta(days=40))

    rows = {row.name: row for row in usage_by_template(user, days=30)}

    assert set(rows) == {"Thank-you email", "Product photo", "Old template"}
    assert (rows["Thank-you email"].generations, rows["Thank-you email"].output_tokens) == (3, 600)
    assert rows["Thank-you email"].cost_micros == 6_000
    assert (rows["Product photo"].images, rows["Product photo"].cost_usd) == (4, "$0.1600")
    assert rows["Product photo"].cost_text == "about ¥25"  # people see yen, at 155 a dollar
    assert rows["Old template"].key == ""
    assert rows["Thank-you email"].key == email.slug
    assert len(usage_by_template(user, days=90)) == 3
    assert {row.output_tokens for row in usage_by_template(user, days=90)} == {1599, 0, 50}


def test_template_titles_follow_the_page_language_not_the_language_run_in(user_client, user):
    email = TemplateFactory(title_en="Thank-you email", title_ja="お礼メール")
    used(user, template=email, template_title="お礼メール")
    used(user, template=email, template_title="Thank-you email")

    response = user_client.get(USAGE)

    assert [(row.name, row.generations) for row in response.context["templates"]] == [
        ("Thank-you email", 2)
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7),
        ("90", 90),
        ("30", 30),
        ("", 30),
        ("abc", 30),
        ("0", 30),
        ("-7", 30),
        ("31", 30),
        ("7.5", 30),
        ("99999999999999999999999", 30),
    ],
)
def test_period_is_7_30_or_90_days_and_anything_else_is_30(user_client, value, expected):
    response = user_client.get(USAGE, {"days": value})

    assert response.status_code == 200
    assert response.context["days"] == expected
    assert len(response.context["daily"]) == expected


def test_period_links_work_without_javascript_and_swap_with_htmx(user_client, user):
    used(user, output_tokens=12)

    page = user_client.get(USAGE, {"days": "7"}).content.decode()
    assert 'href="?days=90"' in page
    assert 'aria-current="page">7 days' in page

    region = user_client.get(
        USAGE, {"days": "90"}, headers={"HX-Request": "true", "HX-Target": "usage-period"}
    ).content.decode()
    assert region.lstrip().startswith('<section id="usage-period"')
    assert "<html" not in region
    assert "The last 90 days" in region


def test_usage_page_without_plans_says_there_are_no_limits(user_client):
    body = user_client.get(USAGE).content.decode()

    assert "No plan limits apply here" in body
    assert "<progress" not in body


def test_usage_page_shows_what_is_left_of_the_plan(user_client, user, settings):
    settings.STUDIO_ENFORCE_PLANS = True
    settings.STUDIO_QUOTA_TOKEN_RESERVATION = 100
    default_plan(
        name="Starter",
        max_concurrent=3,
        requests_per_minute=10,
        daily_output_tokens=1000,
        monthly_output_tokens=20000,
        daily_images=5,
        monthly_images=None,
    )
    used(user, output_tokens=400, charged_output_tokens=400)
    used(user, kind="image", output_tokens=0, images=2, charged_images=2, charged_output_tokens=0)
    # Earlier this month (or yesterday): counts for the month, not for today.
    start_of_day = tokyo(today(), 0, 0)
    used(
        user,
        at=start_of_day - datetime.timedelta(minutes=1),
        output_tokens=100,
        charged_output_tokens=100,
    )

    response = user_client.get(USAGE)

    body = response.content.decode()
    assert "You are on the Starter plan." in body
    assert '<progress max="1000" value="400"' in body
    # Fewer than three answers this month: reckoned at the 100 tokens one reserves.
    assert "40% used: about 6 more generations." in body
    assert "2 of 5 images used: 3 more." in body
    assert "Up to 3 generations at once." in body
    assert "Up to 10 generations a minute." in body
    assert "images made. No limit." in body  # images a month
    meters = {meter.label: meter for meter in response.context["meters"]}
    month = meters["Text generation this month"]
    assert month.limit == 20000
    assert month.used in (400, 500)  # yesterday may have been last month
    assert meters["Images this month"].limit is None


def test_plan_without_limits_on_rates_says_so(user_client, user, settings):
    settings.STUDIO_ENFORCE_PLANS = True
    default_plan(name="Open", max_concurrent=None, requests_per_minute=None)

    body = user_client.get(USAGE).content.decode()

    assert "No limit on generations at once." in body
    assert "No limit on generations a minute." in body


def test_usage_page_uses_a_bounded_number_of_queries(
    user_client, user, settings, django_assert_max_num_queries
):
    settings.STUDIO_ENFORCE_PLANS = True
    default_plan(name="Starter", daily_output_tokens=1000)
    for n in range(20):
        used(
            user,
            template=TemplateFactory(),
            at=timezone.now() - datetime.timedelta(days=n),
            output_tokens=n,
        )
    used(user, template=None, template_title="Gone")

    with django_assert_max_num_queries(10):
        response = user_client.get(USAGE, {"days": "90"})

    assert response.status_code == 200
    assert len(response.context["templates"]) == 21


def test_template_page_links_to_usage_next_to_the_allowance(user_client, settings):
    settings.STUDIO_ENFORCE_PLANS = True
    default_plan(name="Starter", daily_output_tokens=1000)
    template = TemplateFactory()

    body = user_client.get(reverse("catalog:template", args=[template.slug])).content.decode()

    allowance = body[
        body.index("data-allowance") : body.index("</p>", body.index("data-allowance"))
    ]
    assert f'<a href="{USAGE}">Usage</a>' in allowance


def test_navigation_links_to_usage_and_staff_to_everyones(client):
    person = UserFactory()
    client.force_login(person)
    body = client.get(USAGE).content.decode()
    assert re.search(rf'<a class="nav-link" href="{USAGE}" aria-current="page">.*?Usage</a>', body)
    assert STAFF_USAGE not in body

    client.force_login(UserFactory(is_staff=True))
    assert STAFF_USAGE in client.get(USAGE).content.decode()


# Staff's page ----------------------------------------------------------------


def test_staff_usage_refuses_anonymous_visitors(client):
    response = client.get(STAFF_USAGE)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_staff_usage_refuses_people_who_are_not_staff(user_client, user):
    used(UserFactory(username="somebody"), template_title="Secret", output_tokens=12345)

    for params in ({}, {"export": "people"}):
        response = user_client.get(STAFF_USAGE, params)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]
        assert b"somebody" not in response.content
        assert b"12345" not in response.content


@pytest.fixture
def busy_month():
    """Two people, two templates (one deleted), two models, in March 2025."""
    day = datetime.date(2025, 3, 10)
    aiko, ben = UserFactory(username="aiko"), UserFactory(username="ben")
    email = TemplateFactory(title_en="Thank-you email")
    for at, user, template, model, tokens, cost in (
        (tokyo(day), aiko, email, "gpt-4.1-mini", 100, 160),
        (tokyo(day, 0, 5), aiko, email, "gpt-4.1-mini", 300, 480),
        (tokyo(day, 23, 59), ben, email, "gpt-4.1", 200, 1600),
        (tokyo(day + datetime.timedelta(days=1), 0, 0), ben, email, "gpt-4.1", 9999, 1),
    ):
        used(
            user,
            at=at,
            template=template,
            model=model,
            output_tokens=tokens,
            estimated_cost_micros=cost,
            provider="openai",
        )
    used(
        ben,
        at=tokyo(day),
        template=None,
        template_title="Old photo",
        model="gpt-image-1",
        provider="openai",
        output_tokens=0,
        images=3,
        estimated_cost_micros=120_000,
    )
    return day


def test_staff_breakdowns_total_each_person_template_and_model(busy_month):
    period = UsagePeriod(first=busy_month, last=busy_month)

    people = {row.name: row for row in staff_usage_by_person(period)}
    assert (people["aiko"].generations, people["aiko"].output_tokens) == (2, 400)
    assert (people["ben"].generations, people["ben"].output_tokens, people["ben"].images) == (
        2,
        200,
        3,
    )
    assert people["ben"].cost_micros == 121_600

    templates = {row.name: row for row in staff_usage_by_template(period)}
    assert (
        templates["Thank-you email"].generations,
        templates["Thank-you email"].output_tokens,
    ) == (3, 600)
    assert templates["Old photo"].images == 3

    models = {row.name: row for row in staff_usage_by_model(period)}
    assert models["gpt-4.1-mini"].output_tokens == 400
    assert models["gpt-4.1"].output_tokens == 200  # the next day's record is outside
    assert models["gpt-4.1"].detail == "openai"
    assert models["gpt-image-1"].images == 3


def test_staff_breakdowns_sort_by_the_usage_chosen(busy_month):
    period = UsagePeriod(first=busy_month, last=busy_month)

    assert [row.name for row in staff_usage_by_person(period, sort="output_tokens")] == [
        "aiko",
        "ben",
    ]
    assert [row.name for row in staff_usage_by_person(period, sort="cost")] == ["ben", "aiko"]
    assert [row.name for row in staff_usage_by_model(period, sort="images")][0] == "gpt-image-1"
    assert [row.name for row in staff_usage_by_model(period, sort="nonsense")][0] == "gpt-image-1"


def test_staff_page_shows_the_period_asked_for_sorted(staff_client, busy_month):
    response = staff_client.get(
        STAFF_USAGE, {"from": "2025-03-10", "to": "2025-03-10", "sort": "output_tokens"}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert [row.name for row in response.context["breakdowns"]["people"]] == ["aiko", "ben"]
    assert response.context["total"].output_tokens == 600
    assert "9,999" not in body
    assert "From 2025-03-10 to 2025-03-10, days in Asia/Tokyo." in body
    assert "4 generations, estimated cost $0.1222." in body
    assert 'aria-sort="descending"' in body
    assert "?from=2025-03-10&amp;to=2025-03-10&amp;sort=output_tokens&amp;export=people" in body
    assert "Old photo" in body


def test_staff_page_defaults_to_the_last_30_days(staff_client):
    used(UserFactory(username="recent"), at=timezone.now() - datetime.timedelta(days=2))
    used(UserFactory(username="long-ago"), at=timezone.now() - datetime.timedelta(days=45))

    response = staff_client.get(STAFF_USAGE)

    period = response.context["period"]
    assert (period.last - period.first).days == 29
    assert period.last == today()
    # The date pickers show the period shown.
    assert f'name="from" value="{period.first.isoformat()}"' in response.content.decode()
    assert f'name="to" value="{period.last.isoformat()}"' in response.content.decode()
    assert [row.name for row in response.context["breakdowns"]["people"]] == ["recent"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2025-13-45"},
        {"to": "yesterday"},
        {"from": "2025-03-10", "to": "2025-03-01"},
        {"from": "0001-01-01"},
        {"to": "9999-12-31"},
        {"from": "1-1-1", "to": "2025-03-10 junk"},
        {"from": "2025-03-10", "to": "2025-02-30", "export": "people", "sort": "';drop"},
    ],
)
def test_bad_dates_show_a_message_and_the_default_period(staff_client, params):
    response = staff_client.get(STAFF_USAGE, params)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "These dates could not be used" in response.content.decode()
    assert response.context["form"].errors
    assert response.context["period"].last == today()


def test_unknown_export_shows_a_message(staff_client):
    response = staff_client.get(STAFF_USAGE, {"export": "passwords"})

    assert response.status_code == 200
    assert "Choose people, templates or models to export." in response.content.decode()


def test_staff_page_uses_a_bounded_number_of_queries(staff_client, django_assert_max_num_queries):
    for n in range(15):
        used(UserFactory(), template=TemplateFactory(), model=f"model-{n % 4}")

    with django_assert_max_num_queries(8):
        response = staff_client.get(STAFF_USAGE)

    assert len(response.context["breakdowns"]["people"]) == 15
    assert len(response.context["breakdowns"]["templates"]) == 15
    assert len(response.context["breakdowns"]["models"]) == 4


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_csv_exports_parse_back_with_japanese_commas_and_formulas_made_harmless(staff_client):
    day = datetime.date(2025, 3, 10)
    japanese = TemplateFactory(title_en="お礼メール, 丁寧版「特別」")
    formula = TemplateFactory(title_en='=HYPERLINK("http://evil.example","click")')
    used(
        UserFactory(username="@admin"),
        template=japanese,
        at=tokyo(day),
        output_tokens=300,
        input_tokens=20,
        estimated_cost_micros=1_234_567,
        model="+model",
        provider="openai",
    )
    used(
        UserFactory(username="-minus"),
        template=formula,
        at=tokyo(day),
        output_tokens=100,
        images=0,
        model="gpt-4.1",
        provider="openai",
    )
    params = {"from": "2025-03-10", "to": "2025-03-10", "sort": "output_tokens"}

    people = read_csv(staff_client.get(STAFF_USAGE, {**params, "export": "people"}))
    templates = read_csv(staff_client.get(STAFF_USAGE, {**params, "export": "templates"}))
    models = read_csv(staff_client.get(STAFF_USAGE, {**params, "export": "models"}))

    measures = ["generations", "input_tokens", "output_tokens", "images", "estimated_cost_usd"]
    assert people[0] == ["user_id", "username", *measures]
    assert [row[1:] for row in people[1:]] == [
        ["'@admin", "1", "20", "300", "0", "1.234567"],
        ["'-minus", "1", "50", "100", "0", "0.000000"],
    ]
    assert templates[0] == ["template_slug", "template", *measures]
    assert templates[1][:3] == [japanese.slug, "お礼メール, 丁寧版「特別」", "1"]
    assert templates[2][1] == "'" + '=HYPERLINK("http://evil.example","click")'
    assert models[0] == ["model", "provider", *measures]
    assert [row[:2] for row in models[1:]] == [["'+model", "openai"], ["gpt-4.1", "openai"]]


def test_csv_export_is_named_for_the_breakdown_and_period(staff_client):
    response = staff_client.get(
        STAFF_USAGE, {"from": "2025-03-01", "to": "2025-03-31", "export": "models"}
    )

    assert response["Content-Disposition"] == (
        'attachment; filename="ai-studio-usage-models-20250301-20250331.csv"'
    )
    assert read_csv(response) == [
        [
            "model",
            "provider",
            "generations",
            "input_tokens",
            "output_tokens",
            "images",
            "estimated_cost_usd",
        ]
    ]


# Admin -----------------------------------------------------------------------


def test_usage_records_are_listed_read_only_in_the_admin(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    record = used(UserFactory(username="hana"), template_title="お礼メール")

    changelist = reverse("admin:generation_usagerecord_changelist")
    response = client.get(changelist, {"q": "hana", "kind__exact": "text"})
    assert response.status_code == 200
    assert "お礼メール" in response.content.decode()
    assert STAFF_USAGE in response.content.decode()

    assert client.get(reverse("admin:generation_usagerecord_add")).status_code == 403
    change = reverse("admin:generation_usagerecord_change", args=[record.pk])
    assert client.get(change).status_code == 200  # viewable
    assert client.post(change, {"output_tokens": 1}).status_code == 403
    assert (
        client.post(reverse("admin:generation_usagerecord_delete", args=[record.pk])).status_code
        == 403
    )
    record.refresh_from_db()
    assert record.output_tokens == 100
