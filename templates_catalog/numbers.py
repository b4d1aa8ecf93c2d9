"""Numbers in a template's form: what a person may type, and how the studio
says a number back.

Japanese keyboards type full-width digits (２, １０, －３), so a number is read
after NFKC normalisation (２ → 2, － → -, ． → ., a full-width space → a
space); the minus sign (−) and the long-vowel mark (ー, what the minus key
types with the input method on) count as a minus in front of the digits, and
thousands separators are allowed where they group by three (10,000 or
１０，０００). Anything else (letters, an exponent, digits of other scripts,
a point with no digit after it) is not a number.

A number is said back plainly: 4, 1.5, 10,000, never 4.0000 or 1E+4.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# The catalogue keeps limits with 4 decimal places in 18 digits, so a number
# has at most 14 digits before the point; a whole-number field without limits
# of its own accepts the same.
DECIMAL_PLACES = 4
MAX_DIGITS = 18
LARGEST_WHOLE_NUMBER = 10 ** (MAX_DIGITS - DECIMAL_PLACES) - 1
# Digits past this many are out of any range: the limit is said without
# reading the rest (a form may post a megabyte of digits).
_READ_DIGITS = 30

_NUMBER = re.compile(
    r"(?P<sign>[+-]?)(?P<whole>\d{1,3}(?:,\d{3})+|\d*)(?:\.(?P<fraction>\d+))?", re.ASCII
)
_MINUS = str.maketrans({"\u2212": "-", "\u30fc": "-"})


def read_number(value: Any) -> Decimal | None:
    """The number `value` says (text as a person types it, or a number), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value) if Decimal(value).is_finite() else None
    text = unicodedata.normalize("NFKC", str(value)).strip().translate(_MINUS)
    match = _NUMBER.fullmatch(text)
    if match is None or not (match["whole"] or match["fraction"]):
        return None
    whole = match["whole"].replace(",", "").lstrip("0") or "0"
    fraction = (match["fraction"] or "").rstrip("0")
    if len(whole) > _READ_DIGITS:
        whole, fraction = "1" + "0" * _READ_DIGITS, ""
    return Decimal(f"{match['sign']}{whole}.{fraction or '0'}").normalize() + 0


def plain_number(value: Decimal | int | float) -> str:
    """A number as a person writes it: 4, 1.5, -3 (no exponent, no trailing zeros)."""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def display_number(value: Decimal | int | float) -> str:
    """A number in a sentence, with thousands separators: 10,000, 1,234.5."""
    whole, _point, fraction = plain_number(value).partition(".")
    grouped = f"{int(whole):,}"
    if whole.startswith("-") and grouped[0] != "-":  # -0.5
        grouped = "-" + grouped
    return f"{grouped}.{fraction}" if fraction else grouped


class NumberRange:
    """The limits of a number field, said as a person would say them."""

    def __init__(self, minimum: Decimal | int | None, maximum: Decimal | int | None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, value: Decimal | int) -> None:
        if self.maximum is not None and value > self.maximum:
            raise ValidationError(
                _("Enter %(limit)s or less."),
                code="max_value",
                params={"limit": display_number(self.maximum)},
            )
        if self.minimum is not None and value < self.minimum:
            raise ValidationError(
                _("Enter %(limit)s or more."),
                code="min_value",
                params={"limit": display_number(self.minimum)},
            )

    def limit(self, field: forms.Field, *, step: str) -> None:
        """Hold `field` to this range, and tell the browser the range and `step`."""
        field.validators.append(self)
        field.widget.attrs["step"] = step
        if self.minimum is not None:
            field.widget.attrs["min"] = plain_number(self.minimum)
        if self.maximum is not None:
            field.widget.attrs["max"] = plain_number(self.maximum)


class WholeNumberField(forms.IntegerField):
    """A whole number (step 1 in the browser), within the field's limits, or
    within ±LARGEST_WHOLE_NUMBER where it sets none. 2.0 is two; 2.5 is refused."""

    default_error_messages = {"invalid": gettext_lazy("Enter a whole number.")}

    def __init__(
        self, *, minimum: Decimal | None = None, maximum: Decimal | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        NumberRange(
            -LARGEST_WHOLE_NUMBER if minimum is None else int(minimum),
            LARGEST_WHOLE_NUMBER if maximum is None else int(maximum),
        ).limit(self, step="1")

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        number = read_number(value)
        if number is None or number != number.to_integral_value():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return int(number)


class DecimalNumberField(forms.DecimalField):
    """A number that may have a fraction (up to DECIMAL_PLACES places), within
    the field's limits."""

    default_error_messages = {
        "invalid": gettext_lazy("Enter a number."),
        "max_digits": gettext_lazy("Enter a number of no more than %(max)s digits."),
        "max_decimal_places": gettext_lazy(
            "Enter a number with no more than %(max)s digits after the decimal point."
        ),
        "max_whole_digits": gettext_lazy(
            "Enter a number with no more than %(max)s digits before the decimal point."
        ),
    }

    def __init__(
        self, *, minimum: Decimal | None = None, maximum: Decimal | None = None, **kwargs
    ) -> None:
        super().__init__(max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, **kwargs)
        NumberRange(minimum, maximum).limit(self, step="any")

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values:
            return None
        number = read_number(value)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number
