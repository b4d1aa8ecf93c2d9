"""Number fields: whole numbers are whole, numbers are read as Japanese
keyboards type them, and every message says its number plainly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from templates_catalog.forms import stored_inputs, template_form
from templates_catalog.models import TemplateField
from templates_catalog.numbers import (
    LARGEST_WHOLE_NUMBER,
    DecimalNumberField,
    WholeNumberField,
    display_number,
    read_number,
)
from tests.factories import TemplateFactory, TemplateFieldFactory

Type = TemplateField.Type
FULL_WIDTH = str.maketrans("0123456789-.,", "０１２３４５６７８９－．，")


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("4", Decimal(4)),
        (" 4 ", Decimal(4)),
        ("２", Decimal(2)),  # full-width, as a Japanese keyboard types it
        ("　１２　", Decimal(12)),  # with full-width spaces
        ("１０，０００", Decimal(10000)),
        ("10,000", Decimal(10000)),
        ("1,234,567.5", Decimal("1234567.5")),
        ("－３", Decimal(-3)),
        ("−3", Decimal(-3)),  # the minus sign
        ("ー3", Decimal(-3)),  # the long-vowel mark the minus key types with the input method on
        ("+7", Decimal(7)),
        ("2.0", Decimal(2)),
        ("１．５", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("007", Decimal(7)),
        ("1.5000", Decimal("1.5")),
    ],
)
def test_numbers_are_read_as_people_type_them(typed, number):
    assert read_number(typed) == number


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abc",
        "四",
        "1e3",
        "5.",
        "1,00",  # not grouped by three
        ",5",
        "1 000",
        "٣",  # digits of another script
        "NaN",
        "Infinity",
        "--1",
        "1-",
        "0x10",
    ],
)
def test_what_is_not_a_number_is_not_read_as_one(typed):
    assert read_number(typed) is None


@pytest.mark.parametrize(
    ("number", "said"),
    [
        (Decimal("4.0000"), "4"),
        (Decimal("1.5000"), "1.5"),
        (Decimal("0.0001"), "0.0001"),
        (Decimal("1E+2"), "100"),
        (1000000000, "1,000,000,000"),
        (Decimal("-0.5"), "-0.5"),
        (Decimal("-12345.25"), "-12,345.25"),
    ],
)
def test_numbers_are_said_without_trailing_zeros_or_exponents(number, said):
    assert display_number(number) == said


def form_for(field_type, value, **limits):
    template = TemplateFactory()
    field = TemplateFieldFactory(template=template, name="count", type=field_type, **limits)
    return template_form(template, {"count": value}, fields=[field])


def messages_in_each_language(field_type, typed, **limits) -> list[str]:
    """The one message the field gives for `typed`, in English and in Japanese."""
    messages = []
    for language in ("en", "ja"):
        with translation.override(language):
            form = form_for(field_type, typed, **limits)
            assert not form.is_valid()
            (message,) = form.errors["count"]
            messages.append(message)
    return messages


COUNT = {"min_value": Decimal("1.0000"), "max_value": Decimal("4.0000")}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "stored"),
    [("3", 3), ("２", 2), ("2.0", 2), ("４", 4), (" 1 ", 1)],
)
def test_a_whole_number_field_stores_a_whole_number(typed, stored):
    form = form_for(Type.INTEGER, typed, **COUNT)
    assert form.is_valid(), form.errors
    assert stored_inputs(form) == {"count": stored}
    assert type(stored_inputs(form)["count"]) is int


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "english", "japanese"),
    [
        ("2.5", "Enter a whole number.", "整数で入力してください。"),
        ("abc", "Enter a whole number.", "整数で入力してください。"),
        ("1e3", "Enter a whole number.", "整数で入力してください。"),
        ("5", "Enter 4 or less.", "4以下の数値を入力してください。"),
        ("0", "Enter 1 or more.", "1以上の数値を入力してください。"),
        ("-2", "Enter 1 or more.", "1以上の数値を入力してください。"),
        ("9" * 5000, "Enter 4 or less.", "4以下の数値を入力してください。"),
        ("-" + "9" * 5000, "Enter 1 or more.", "1以上の数値を入力してください。"),
    ],
)
def test_a_whole_number_field_says_plainly_what_is_wrong(typed, english, japanese):
    assert messages_in_each_language(Type.INTEGER, typed, **COUNT) == [english, japanese]


@pytest.mark.django_db
def test_a_whole_number_field_without_limits_keeps_to_fourteen_digits():
    assert form_for(Type.INTEGER, str(LARGEST_WHOLE_NUMBER)).is_valid()
    form = form_for(Type.INTEGER, str(LARGEST_WHOLE_NUMBER + 1))
    assert form.errors["count"] == ["Enter 99,999,999,999,999 or less."]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "limits", "english", "japanese"),
    [
        (
            "0.25",
            {"min_value": Decimal("0.5000")},
            "Enter 0.5 or more.",
            "0.5以上の数値を入力してください。",
        ),
        (
            "1000001",
            {"max_value": Decimal("1000000.0000")},
            "Enter 1,000,000 or less.",
            "1,000,000以下の数値を入力してください。",
        ),
        ("seven", {}, "Enter a number.", "数値で入力してください。"),
        (
            "1.23456",
            {},
            "Enter a number with no more than 4 digits after the decimal point.",
            "小数点以下は4桁以内で入力してください。",
        ),
        (
            "1" * 15,
            {},
            "Enter a number with no more than 14 digits before the decimal point.",
            "整数部分は14桁以内で入力してください。",
        ),
    ],
)
def test_a_decimal_field_says_its_limits_without_trailing_zeros(typed, limits, english, japanese):
    assert messages_in_each_language(Type.NUMBER, typed, **limits) == [english, japanese]


@pytest.mark.django_db
def test_a_decimal_field_keeps_its_fraction():
    form = form_for(Type.NUMBER, "１．５", min_value=Decimal("0.5000"), max_value=Decimal(8))
    assert form.is_valid(), form.errors
    assert stored_inputs(form) == {"count": 1.5}


@pytest.mark.django_db
def test_the_browser_is_told_the_step_and_the_limits_plainly():
    whole = str(form_for(Type.INTEGER, "", **COUNT)["count"])
    assert 'type="number"' in whole
    assert 'step="1"' in whole
    assert 'min="1"' in whole
    assert 'max="4"' in whole
    decimal = str(form_for(Type.NUMBER, "", min_value=Decimal("0.5000"), max_value=Decimal(8)))
    assert 'step="any"' in decimal
    assert 'min="0.5"' in decimal
    assert 'max="8"' in decimal
    assert ".0000" not in whole + decimal


@pytest.mark.django_db
def test_limits_of_a_whole_number_field_must_be_whole():
    template = TemplateFactory()
    field = TemplateField(
        template=template,
        name="count",
        label_en="Count",
        label_ja="枚数",
        type=Type.INTEGER,
        min_value=Decimal("0.5"),
        max_value=Decimal("4"),
    )
    with pytest.raises(ValidationError) as caught:
        field.full_clean()
    assert "min_value" in caught.value.message_dict
    assert "max_value" not in caught.value.message_dict


# --- Any text at all -----------------------------------------------------------------

WHOLE = WholeNumberField(minimum=Decimal(1), maximum=Decimal(4))
DECIMAL = DecimalNumberField(minimum=Decimal("-100"), maximum=Decimal("100.5"))
MESSAGES = {
    "Enter a whole number.",
    "Enter 4 or less.",
    "Enter 1 or more.",
    "This field is required.",
}
DECIMAL_MESSAGES = {
    "Enter a number.",
    "Enter 100.5 or less.",
    "Enter -100 or more.",
    "This field is required.",
    "Enter a number with no more than 4 digits after the decimal point.",
    "Enter a number with no more than 14 digits before the decimal point.",
    "Enter a number of no more than 18 digits.",
}


def cleaned(field, text: str) -> tuple[object, list[str]]:
    """The field's value for `text` and no messages, or no value and its messages."""
    try:
        return field.clean(text), []
    except ValidationError as error:
        return None, error.messages


numberish = st.text(alphabet="0123456789０１２３４５６７８９.,．，-－−ー+ 　e", max_size=40)


@given(st.one_of(st.text(max_size=60), numberish))
@example("2.5")
@example("２.0")
@example("1" * 4400)
@hypothesis_settings(max_examples=400, deadline=None)
def test_any_text_is_a_whole_number_in_range_or_a_plain_message(text):
    value, messages = cleaned(WHOLE, text)
    assert set(messages) <= MESSAGES, messages
    assert not any(".0" in message for message in messages)
    if not messages:
        assert type(value) is int
        assert 1 <= value <= 4


@given(st.one_of(st.text(max_size=60), numberish))
@hypothesis_settings(max_examples=400, deadline=None)
def test_any_text_is_a_decimal_in_range_or_a_plain_message(text):
    value, messages = cleaned(DECIMAL, text)
    assert set(messages) <= DECIMAL_MESSAGES, messages
    if not messages:
        assert isinstance(value, Decimal)
        assert value.is_finite()
        assert -100 <= value <= Decimal("100.5")


@given(st.integers(min_value=-LARGEST_WHOLE_NUMBER, max_value=LARGEST_WHOLE_NUMBER))
@hypothesis_settings(max_examples=300, deadline=None)
def test_every_whole_number_is_read_back_exactly_in_either_width(number):
    field = WholeNumberField()
    assert field.clean(str(number)) == number
    assert field.clean(str(number).translate(FULL_WIDTH)) == number
    assert field.clean(f"{number:,}") == number
    assert field.clean(f"{number}.0") == number


@given(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=1, max_value=9999).filter(lambda n: n % 10),
)
@hypothesis_settings(max_examples=200, deadline=None)
def test_a_number_with_a_fraction_is_never_taken_for_a_whole_one(whole, fraction):
    typed = f"{whole}.{fraction:04d}"
    with pytest.raises(ValidationError) as caught:
        WholeNumberField().clean(typed)
    assert caught.value.messages == ["Enter a whole number."]
    assert DecimalNumberField().clean(typed) == Decimal(typed)
