"""The form built from a template's typed fields: every type, good and bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from templates_catalog.forms import (
    form_data_from_inputs,
    labelled_values,
    prompt_values,
    stored_inputs,
    template_form,
)
from templates_catalog.models import TemplateField
from tests.factories import TemplateFactory, TemplateFieldFactory

Type = TemplateField.Type
pytestmark = pytest.mark.django_db


def form_for(field_kwargs: dict, value):
    template = TemplateFactory()
    field = TemplateFieldFactory(template=template, name="answer", **field_kwargs)
    data = {} if value is None else {"answer": value}
    return template_form(template, data, fields=[field])


CHOICES_EN = "formal|Formal\ncasual|Casual\nwarm|Warm"


@pytest.mark.parametrize(
    ("field_kwargs", "value", "stored"),
    [
        ({"type": Type.SHORT_TEXT, "max_length": 10}, "Hello", "Hello"),
        ({"type": Type.LONG_TEXT, "min_length": 3}, "line one\nline two", "line one\nline two"),
        ({"type": Type.NUMBER, "min_value": 1, "max_value": 10}, "7", 7),
        ({"type": Type.NUMBER}, "2.5", 2.5),
        ({"type": Type.INTEGER, "min_value": 1, "max_value": 4}, "3", 3),
        ({"type": Type.SELECT, "choices_en": CHOICES_EN}, "casual", "casual"),
        ({"type": Type.RADIO, "choices_en": CHOICES_EN}, "warm", "warm"),
        (
            {"type": Type.MULTI_SELECT, "choices_en": CHOICES_EN},
            ["formal", "warm"],
            ["formal", "warm"],
        ),
        ({"type": Type.CHECKBOX, "required": False}, "on", True),
        ({"type": Type.CHECKBOX, "required": False}, None, False),
        ({"type": Type.DATE}, "2026-12-24", "2026-12-24"),
        ({"type": Type.URL}, "https://example.com/page", "https://example.com/page"),
        ({"type": Type.URL}, "example.com", "https://example.com"),
        ({"type": Type.EMAIL}, "sato@example.co.jp", "sato@example.co.jp"),
    ],
)
def test_good_input_is_accepted_and_stored_as_json(field_kwargs, value, stored):
    form = form_for(field_kwargs, value)
    assert form.is_valid(), form.errors
    assert stored_inputs(form) == {"answer": stored}


@pytest.mark.parametrize(
    ("field_kwargs", "value", "message"),
    [
        ({"type": Type.SHORT_TEXT}, None, "This field is required."),
        ({"type": Type.SHORT_TEXT}, "   ", "This field is required."),
        ({"type": Type.SHORT_TEXT, "max_length": 5}, "too long", "at most 5 characters"),
        ({"type": Type.SHORT_TEXT}, "x" * 201, "at most 200 characters"),
        ({"type": Type.LONG_TEXT, "min_length": 10}, "short", "at least 10 characters"),
        ({"type": Type.NUMBER}, "seven", "Enter a number."),
        ({"type": Type.NUMBER, "min_value": 1, "max_value": 10}, "11", "Enter 10 or less."),
        ({"type": Type.NUMBER, "min_value": 1, "max_value": 10}, "0", "Enter 1 or more."),
        ({"type": Type.INTEGER, "min_value": 1, "max_value": 4}, "2.5", "Enter a whole number."),
        ({"type": Type.SELECT, "choices_en": CHOICES_EN}, "rude", "Select a valid choice"),
        ({"type": Type.RADIO, "choices_en": CHOICES_EN}, "rude", "Select a valid choice"),
        (
            {"type": Type.MULTI_SELECT, "choices_en": CHOICES_EN},
            ["formal", "x"],
            "Select a valid choice",
        ),
        ({"type": Type.MULTI_SELECT, "choices_en": CHOICES_EN}, None, "This field is required."),
        ({"type": Type.CHECKBOX, "required": True}, None, "This field is required."),
        ({"type": Type.DATE}, "2026-02-30", "Enter a valid date."),
        ({"type": Type.DATE}, "next tuesday", "Enter a valid date."),
        ({"type": Type.URL}, "not a url", "Enter a valid URL."),
        ({"type": Type.URL}, "javascript:alert(1)", "Enter a valid URL."),
        ({"type": Type.EMAIL}, "sato@", "Enter a valid email address."),
    ],
)
def test_bad_input_gets_a_clear_message_on_its_field(field_kwargs, value, message):
    form = form_for(field_kwargs, value)
    assert not form.is_valid()
    assert message in " ".join(form.errors["answer"])


def test_optional_fields_may_be_left_blank():
    template = TemplateFactory()
    fields = [
        TemplateFieldFactory(
            template=template, name=f"f_{kind}", type=kind, required=False, choices_en=CHOICES_EN
        )
        for kind in Type.values
    ]
    form = template_form(template, {}, fields=fields)
    assert form.is_valid(), form.errors


def test_labels_and_choices_follow_the_active_language(settings):
    from django.utils import translation

    template = TemplateFactory()
    TemplateFieldFactory(
        template=template,
        name="tone",
        type=Type.SELECT,
        label_ja="トーン",
        label_en="Tone",
        choices_ja="formal|丁寧\ncasual|くだけた",
        choices_en="formal|Formal\ncasual|Casual",
    )
    with translation.override("ja"):
        form = template_form(template)
        assert form.fields["tone"].label == "トーン"
        assert ("formal", "丁寧") in form.fields["tone"].choices
    with translation.override("en"):
        assert template_form(template).fields["tone"].label == "Tone"


def test_prompt_sees_choice_labels_in_the_prompt_language_and_joined_lists():
    template = TemplateFactory()
    tone = TemplateFieldFactory(
        template=template,
        name="tone",
        type=Type.MULTI_SELECT,
        choices_ja="formal|丁寧\nwarm|温かい",
        choices_en="formal|Formal\nwarm|Warm",
    )
    values = prompt_values({"tone": ["formal", "warm"]}, [tone], "ja")
    assert str(values["tone"]) == "丁寧、温かい"
    assert list(values["tone"]) == ["丁寧", "温かい"]
    assert str(prompt_values({"tone": ["warm"]}, [tone], "en")["tone"]) == "Warm"


def test_stored_inputs_round_trip_through_form_data():
    template = TemplateFactory()
    fields = [
        TemplateFieldFactory(template=template, name="n", type=Type.NUMBER),
        TemplateFieldFactory(template=template, name="d", type=Type.DATE),
        TemplateFieldFactory(template=template, name="c", type=Type.CHECKBOX, required=False),
        TemplateFieldFactory(
            template=template, name="m", type=Type.MULTI_SELECT, choices_en=CHOICES_EN
        ),
    ]
    first = template_form(
        template, {"n": "3", "d": "2026-01-05", "c": "on", "m": ["warm"]}, fields=fields
    )
    assert first.is_valid()
    stored = stored_inputs(first)
    again = template_form(template, form_data_from_inputs(stored, fields), fields=fields)
    assert again.is_valid()
    assert stored_inputs(again) == stored == {"n": 3, "d": "2026-01-05", "c": True, "m": ["warm"]}
    assert first.cleaned_data["n"] == Decimal(3)


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ja", "2026年12月3日（木）"), ("en", "Thursday 3 December 2026")],
)
def test_a_date_reaches_the_prompt_as_a_person_writes_it_with_its_weekday(language, expected):
    template = TemplateFactory(
        prompt_body_en="Meet on {{ day }}.", prompt_body_ja="{{ day }}に会う"
    )
    field = TemplateFieldFactory(template=template, name="day", type=TemplateField.Type.DATE)
    values = prompt_values({"day": "2026-12-03"}, [field], language)
    assert values["day"] == expected
    assert labelled_values({"day": "2026-12-03"}, [field], language)[0][1] == expected
