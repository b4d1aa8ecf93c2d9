"""Build a Django form from a template's typed fields, and turn its values into
what is stored (JSON) and what a prompt sees (labels in the prompt's language)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import translation
from django.utils.translation import gettext as _

from studio.text import strip_controls_but_nul
from templates_catalog.models import Template, TemplateField
from templates_catalog.numbers import LARGEST_WHOLE_NUMBER, DecimalNumberField, WholeNumberField

Type = TemplateField.Type
DEFAULT_MAX_LENGTH = {Type.SHORT_TEXT: 200, Type.LONG_TEXT: 4000}


class InputTextField(forms.CharField):
    """A person's text, under the text rule (studio.text): invisible control
    characters are removed; NUL is left for Django's validator to refuse."""

    def to_python(self, value: Any) -> str:
        return strip_controls_but_nul(super().to_python(value))


def _text_field(field: TemplateField, common: dict[str, Any]) -> forms.Field:
    attrs = {"placeholder": field.placeholder} if field.placeholder else {}
    widget = (
        forms.Textarea(attrs={**attrs, "rows": 5})
        if field.type == Type.LONG_TEXT
        else forms.TextInput(attrs=attrs)
    )
    return InputTextField(
        min_length=field.min_length or None,
        max_length=field.max_length or DEFAULT_MAX_LENGTH[field.type],
        widget=widget,
        **common,
    )


def _form_field(field: TemplateField) -> forms.Field:
    common: dict[str, Any] = {
        "label": field.label,
        "required": field.required,
        "help_text": field.help_text,
    }
    placeholder = {"placeholder": field.placeholder} if field.placeholder else {}
    match field.type:
        case Type.SHORT_TEXT | Type.LONG_TEXT:
            return _text_field(field, common)
        case Type.INTEGER:
            return WholeNumberField(
                minimum=field.min_value,
                maximum=field.max_value,
                widget=forms.NumberInput(attrs=placeholder),
                **common,
            )
        case Type.NUMBER:
            return DecimalNumberField(
                minimum=field.min_value,
                maximum=field.max_value,
                widget=forms.NumberInput(attrs=placeholder),
                **common,
            )
        case Type.SELECT:
            choices = field.choice_pairs()
            if not field.required:
                choices = [("", "---------"), *choices]
            return forms.ChoiceField(choices=choices, **common)
        case Type.RADIO:
            return forms.ChoiceField(
                choices=field.choice_pairs(), widget=forms.RadioSelect, **common
            )
        case Type.MULTI_SELECT:
            return forms.MultipleChoiceField(
                choices=field.choice_pairs(), widget=forms.CheckboxSelectMultiple, **common
            )
        case Type.CHECKBOX:
            return forms.BooleanField(**common)
        case Type.DATE:
            return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
        case Type.URL:
            return forms.URLField(
                assume_scheme="https",
                max_length=2000,
                widget=forms.URLInput(attrs=placeholder),
                **common,
            )
        case Type.EMAIL:
            return forms.EmailField(widget=forms.EmailInput(attrs=placeholder), **common)
    raise ValueError(f"Unknown field type {field.type!r}")


class TemplateInputForm(forms.Form):
    """The inputs of one template; build it with `template_form()`."""


def template_form(
    template: Template,
    data: Mapping[str, Any] | None = None,
    *,
    initial: Mapping[str, Any] | None = None,
    fields: list[TemplateField] | None = None,
) -> TemplateInputForm:
    """The form for the template's fields (bound when `data` is given), in the active language."""
    template_fields = fields if fields is not None else list(template.fields.all())
    form_class = type(
        "TemplateInputForm",
        (TemplateInputForm,),
        {field.name: _form_field(field) for field in template_fields},
    )
    if initial is None:
        initial = {f.name: _initial_value(f) for f in template_fields if f.default}
    return form_class(data=data, initial=initial)


def _initial_value(field: TemplateField) -> Any:
    if field.type == Type.MULTI_SELECT:
        return [value.strip() for value in field.default.split(",") if value.strip()]
    if field.type == Type.CHECKBOX:
        return field.default.lower() in {"1", "true", "yes", "on"}
    return field.default


def stored_inputs(form: TemplateInputForm) -> dict[str, Any]:
    """The cleaned values as JSON: choice values (not labels), ISO dates, numbers."""
    return {name: _to_json(value) for name, value in form.cleaned_data.items()}


def _to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def longest_inputs(fields: list[TemplateField]) -> dict[str, Any]:
    """The largest inputs the form accepts, as stored: what every prompt body must
    be able to render within its budget (a nested loop over a long text is fine
    on a short sample and not on 4,000 characters)."""
    inputs: dict[str, Any] = {}
    for field in fields:
        match field.type:
            case Type.SHORT_TEXT | Type.LONG_TEXT:
                inputs[field.name] = "あ" * (field.max_length or DEFAULT_MAX_LENGTH[field.type])
            case Type.NUMBER | Type.INTEGER:
                largest = field.max_value if field.max_value is not None else LARGEST_WHOLE_NUMBER
                inputs[field.name] = int(largest)
            case Type.MULTI_SELECT:
                inputs[field.name] = [value for value, _label in field.choice_pairs()]
            case Type.SELECT | Type.RADIO:
                pairs = field.choice_pairs()
                inputs[field.name] = max(pairs, key=lambda pair: len(pair[1]))[0] if pairs else ""
            case Type.CHECKBOX:
                inputs[field.name] = True
            case Type.DATE:
                inputs[field.name] = "2026-12-31"
            case Type.URL | Type.EMAIL:
                inputs[field.name] = "https://" + "a" * 1990 + ".jp"
    return inputs


def form_data_from_inputs(inputs: Mapping[str, Any], fields: list[TemplateField]) -> dict[str, Any]:
    """Stored inputs (or a sample set) as form data, to validate again or prefill."""
    data: dict[str, Any] = {}
    for field in fields:
        value = inputs.get(field.name)
        if value is None:
            continue
        if field.type == Type.CHECKBOX:
            if value is True:
                data[field.name] = "on"
        elif field.type == Type.MULTI_SELECT:
            data[field.name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        else:
            data[field.name] = str(value)
    return data


class _JoinedList(list):
    """A multi-select's labels: iterable in a prompt, and joined when printed."""

    def __init__(self, items: list[str], separator: str) -> None:
        super().__init__(items)
        self.separator = separator

    def __str__(self) -> str:
        return self.separator.join(self)


def prompt_values(
    inputs: Mapping[str, Any], fields: list[TemplateField], language: str
) -> dict[str, Any]:
    """What a prompt body sees: every field bound, choice labels in `language`, blanks as ''."""
    values: dict[str, Any] = {}
    with translation.override(language):
        separator = _(", ")
        for field in fields:
            value = inputs.get(field.name)
            if field.type in TemplateField.CHOICE_TYPES:
                labels = dict(field.choice_pairs())
                if field.type == Type.MULTI_SELECT:
                    values[field.name] = _JoinedList(
                        [labels.get(v, v) for v in value or []], separator
                    )
                else:
                    values[field.name] = labels.get(value, value) if value else ""
            elif field.type == Type.CHECKBOX:
                values[field.name] = bool(value)
            elif field.type == Type.DATE and value:
                values[field.name] = date_for_prompt(value, language)
            else:
                values[field.name] = "" if value is None else value
    return values


_WEEKDAYS_JA = "月火水木金土日"
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def date_for_prompt(value: Any, language: str) -> str:
    """A date as a person writes it in `language`, with its weekday, so that the
    model never has to work the weekday out: 2026年12月3日（木） / Thursday 3
    December 2026. A value that is not a date is left as it is."""
    try:
        day = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    if language.startswith("en"):
        month = _MONTHS_EN[day.month - 1]
        return f"{_WEEKDAYS_EN[day.weekday()]} {day.day} {month} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日（{_WEEKDAYS_JA[day.weekday()]}）"


def labelled_values(
    inputs: Mapping[str, Any], fields: list[TemplateField], language: str
) -> list[tuple[str, str]]:
    """(label, value as text) of each field, both in `language`: for people, not prompts."""
    values = prompt_values(inputs, fields, language)
    rows = []
    with translation.override(language):
        for field in fields:
            value = values[field.name]
            if isinstance(value, bool):
                value = _("Yes") if value else _("No")
            rows.append((field.label, str(value)))
    return rows
