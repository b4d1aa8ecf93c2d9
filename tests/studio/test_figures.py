"""Figures as people read them: money in the site's currency, characters, time
taken, and plans by name, in Japanese and English."""

from __future__ import annotations

import pytest
from django.utils import translation

from studio.figures import characters, duration, money, seconds_exact, usd
from studio.models import Plan

DOLLAR = 1_000_000  # millionths of a dollar


@pytest.fixture
def yen(settings):
    settings.STUDIO_CURRENCY = "JPY"
    settings.STUDIO_CURRENCY_PER_USD = 155
    return settings


@pytest.mark.parametrize(
    ("micros", "japanese", "english"),
    [
        (0, "0円", "¥0"),
        (1_000, "1円未満", "under ¥1"),  # 0.155 yen
        (80_000, "約12円", "about ¥12"),  # 12.4 yen
        (DOLLAR, "約155円", "about ¥155"),
        (100 * DOLLAR, "約15,500円", "about ¥15,500"),
    ],
)
def test_costs_are_in_yen_without_decimals_and_with_separators(yen, micros, japanese, english):
    with translation.override("ja"):
        assert money(micros) == japanese
    with translation.override("en"):
        assert money(micros) == english


def test_the_rate_setting_changes_the_amount(yen):
    with translation.override("ja"):
        assert money(DOLLAR) == "約155円"
        yen.STUDIO_CURRENCY_PER_USD = 150
        assert money(DOLLAR) == "約150円"


def test_another_currency_has_two_decimals(settings):
    settings.STUDIO_CURRENCY = "USD"
    settings.STUDIO_CURRENCY_PER_USD = 1
    with translation.override("en"):
        assert money(1_234_567) == "about $1.23"
        assert money(1_000) == "under $0.01"
    with translation.override("ja"):
        assert money(1_234_567) == "約1.23ドル"


@pytest.mark.parametrize(
    ("seconds", "japanese", "english"),
    [
        (None, "—", "—"),
        (0.04, "1秒未満", "under a second"),
        (1, "1秒", "1 second"),
        (12.4, "12秒", "12 seconds"),
        (60, "1分", "1 min"),
        (65, "1分5秒", "1 min 5 s"),
        (3720, "1時間2分", "1 h 2 min"),
    ],
)
def test_time_taken_is_in_seconds_and_minutes(seconds, japanese, english):
    with translation.override("ja"):
        assert duration(seconds) == japanese
    with translation.override("en"):
        assert duration(seconds) == english


def test_lengths_are_in_characters():
    with translation.override("ja"):
        assert characters(1234) == "1,234文字"
        assert characters(None) == "0文字"
    with translation.override("en"):
        assert characters(1) == "1 character"
        assert characters(1234) == "1,234 characters"


def test_staff_figures_keep_dollars_and_fractions_of_a_second():
    assert usd(1_234) == "$0.0012"
    assert usd(12_345_678) == "$12.35"
    with translation.override("ja"):
        assert seconds_exact(0.4213) == "0.42秒"
        assert seconds_exact(12.34) == "12.3秒"


@pytest.mark.parametrize(
    ("name", "japanese", "english"),
    [
        ("Free", "フリープラン", "Free plan"),
        ("Pro", "Proプラン", "Pro plan"),
        ("Team plan", "Team plan", "Team plan"),
    ],
)
def test_plans_are_told_by_a_natural_name(name, japanese, english):
    plan = Plan(name=name)
    with translation.override("ja"):
        assert plan.display_name == japanese
    with translation.override("en"):
        assert plan.display_name == english
