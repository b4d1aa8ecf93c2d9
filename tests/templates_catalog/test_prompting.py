"""Prompt bodies are staff-written Jinja rendered in a sandbox: only field values are reachable."""

from __future__ import annotations

import pytest
from django.conf import settings

from templates_catalog.prompting import (
    PromptRenderError,
    PromptSyntaxError,
    referenced_names,
    render_prompt,
    unknown_names,
)

VALUES = {"product": "Green tea", "tone": "Formal", "points": ["Fresh", "Local"], "urgent": True}


def test_fields_conditionals_and_loops_render():
    body = (
        "Write about {{ product }} in a {{ tone|lower }} tone.\n"
        "{% if urgent %}It is urgent.{% endif %}\n"
        "{% for point in points %}{{ loop.index }}. {{ point }}\n{% endfor %}"
    )
    assert render_prompt(body, VALUES) == (
        "Write about Green tea in a formal tone.\nIt is urgent.\n1. Fresh\n2. Local"
    )


def test_values_are_inserted_as_text_not_as_template_code():
    assert render_prompt("{{ product }}", {"product": "{{ settings.SECRET_KEY }}"}) == (
        "{{ settings.SECRET_KEY }}"
    )


@pytest.mark.parametrize(
    "body",
    [
        "{{ settings.SECRET_KEY }}",
        "{{ settings }}",
        "{{ request }}",
        "{{ request.user.password }}",
        "{% load static %}",
        "{% include 'base.html' %}",
        "{% import 'x' as y %}",
        "{% extends 'base.html' %}",
        "{% debug %}",
        "{{ product.__class__ }}",
        "{{ product.__class__.__mro__[1].__subclasses__() }}",
        "{{ product['__class__'] }}",
        "{{ product|attr('__class__') }}",
        "{{ product.upper() }}",
        "{{ range(10) }}",
        "{{ lipsum() }}",
        "{{ cycler }}",
        "{{ self }}",
        "{% macro m() %}x{% endmacro %}",
        "{{ points|map('upper')|list }}",
        "{{ '{0.__class__}'.format(product) }}",
    ],
)
def test_anything_beyond_field_values_reveals_nothing_and_runs_nothing(body):
    with pytest.raises((PromptSyntaxError, PromptRenderError)):
        render_prompt(body, VALUES)


def test_python_format_syntax_is_plain_text():
    assert render_prompt("{0.__class__} {product}", VALUES) == "{0.__class__} {product}"


def test_secret_key_never_appears_in_any_error():
    for body in ("{{ settings.SECRET_KEY }}", "{{ SECRET_KEY }}"):
        with pytest.raises((PromptSyntaxError, PromptRenderError)) as info:
            render_prompt(body, VALUES)
        assert settings.SECRET_KEY not in str(info.value)


def test_referenced_names_ignore_loop_variables():
    assert referenced_names("{% for p in points %}{{ p }}{% endfor %}{{ product }}") == {
        "points",
        "product",
    }


def test_unknown_names_are_reported_for_admin():
    assert unknown_names("{{ product }} {{ prodcut }} {{ request }}", ["product"]) == [
        "prodcut",
        "request",
    ]


def test_syntax_errors_say_which_line():
    with pytest.raises(PromptSyntaxError, match="Line 2"):
        render_prompt("ok\n{% if product %}unclosed", VALUES)


def test_runaway_output_is_refused():
    with pytest.raises(PromptRenderError):
        render_prompt(
            "{% for a in big %}{% for b in big %}{{ product }}{% endfor %}{% endfor %}",
            {"big": list(range(2000)), "product": "x" * 50},
        )
