"""The catalogue check: the shipped catalogue passes it, and each kind of slip
a staff member or a contributor can make is reported by template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from templates_catalog.catalog_check import check_templates
from templates_catalog.models import Template, TemplateField
from tests.factories import TemplateFactory, TemplateFieldFactory

pytestmark = pytest.mark.django_db

CATALOG = Path(settings.BASE_DIR) / "fixtures" / "catalog"


def good_template(slug: str = "good", **overrides) -> Template:
    values = {
        "slug": slug,
        "title_ja": f"お礼メール（{slug}）",
        "prompt_body_en": "Write a thank-you email to {{ recipient }} about {{ topic }}.",
        "prompt_body_ja": "{{ topic }}について{{ recipient }}様へのお礼メールを書いてください。",
        "sample_inputs_en": {"recipient": "Ms Sato", "topic": "the meeting"},
        "sample_inputs_ja": {"recipient": "佐藤", "topic": "打ち合わせ"},
        "sample_answer_en": "Subject: Thank you\n\nDear {{ recipient }},\nThank you for {{ topic }}.",
        "sample_answer_ja": "件名：お礼\n\n{{ recipient }}様\n{{ topic }}のお礼を申し上げます。",
    } | overrides
    template = TemplateFactory(**values)
    TemplateFieldFactory(template=template, name="recipient", label_ja="宛先", label_en="To")
    TemplateFieldFactory(template=template, name="topic", label_ja="話題", label_en="Topic")
    return template


def messages(*templates: Template) -> list[str]:
    return [str(problem) for problem in check_templates(templates)]


def test_catalogue_files_are_checked_then_rolled_back(capsys, tmp_path):
    # The shipped catalogue as a whole is checked in test_load_demo.py.
    for name in ("sales.yaml", "images.yaml"):
        shutil.copy(CATALOG / name, tmp_path / name)
    call_command("check_catalog", catalog_dir=tmp_path)
    out = capsys.readouterr().out
    assert "0 problem(s)" in out
    assert Template.objects.count() == 0  # checked, then rolled back


def test_a_good_template_has_no_problem():
    assert messages(good_template()) == []


def test_placeholders_without_fields_and_unused_fields_are_reported():
    template = good_template(prompt_body_en="Write to {{ recipient }} about {{ subject }}.")
    assert messages(template) == [
        "good: field “topic” is never used in the en prompt",
        "good: the en prompt uses “subject”, which is not a field",
    ]


def test_missing_translations_are_reported():
    template = good_template(title_en="", description_ja="")
    field = template.fields.get(name="topic")
    field.label_en = ""
    field.save()
    assert messages(template) == [
        "good: description has no ja translation",
        "good: field “topic” has no en label",
        "good: title has no en translation",
    ]


def test_missing_or_broken_sample_answers_are_reported():
    template = good_template(sample_answer_ja="", sample_answer_en="Dear {{ recipient }")
    assert messages(template) == [
        "good: has no ja sample answer",
        "good: the en sample answer does not render: Line 1: unexpected '}'",
    ]


def test_missing_or_refused_samples_are_reported():
    template = good_template(sample_inputs_ja={}, sample_inputs_en={"recipient": "Ms Sato"})
    assert messages(template) == [
        "good: has no ja sample inputs",
        "good: the en sample inputs are refused by the form (topic: This field is required.)",
    ]


def test_a_sample_that_breaks_a_choice_is_refused():
    template = good_template()
    TemplateFieldFactory(
        template=template,
        name="tone",
        type=TemplateField.Type.SELECT,
        choices_en="formal|Formal",
        choices_ja="formal|丁寧",
        label_ja="トーン",
        label_en="Tone",
    )
    template.prompt_body_en += " Tone: {{ tone }}."
    template.prompt_body_ja += " トーン: {{ tone }}"
    template.sample_inputs_en = template.sample_inputs_en | {"tone": "rude"}
    template.sample_inputs_ja = template.sample_inputs_ja | {"tone": "formal"}
    template.save()
    [problem] = messages(template)
    assert problem.startswith("good: the en sample inputs are refused by the form (tone:")


def with_tone(template: Template, *, kind: str = TemplateField.Type.SELECT, ja: str, en: str):
    """The template with an optional tone choice and these conditions on it."""
    TemplateFieldFactory(
        template=template,
        name="tone",
        type=kind,
        required=False,
        choices_ja="formal|丁寧\nwarm|温かく親しみやすく",
        choices_en="formal|Formal\nwarm|Warm and friendly",
        label_ja="トーン",
        label_en="Tone",
    )
    template.prompt_body_ja += ja
    template.prompt_body_en += en
    template.save()
    return template


def test_a_condition_on_a_choice_value_instead_of_its_label_is_reported():
    template = with_tone(
        good_template(),
        ja='{% if tone == "丁寧" %}丁寧に。{% endif %}',
        en='{% if tone == "formal" %} Be formal.{% endif %}',
    )
    assert messages(template) == [
        "good: the en prompt compares “tone” with “formal”, which none of its en labels "
        "meets (a prompt sees the chosen label, not its value)"
    ]


def test_a_condition_that_a_relabelled_choice_no_longer_meets_is_reported():
    template = with_tone(
        good_template(),
        ja='{% if tone != "温かく" %}改まって。{% endif %}',
        en='{% if "Warm" in tone %} Be warm.{% endif %}',
    )
    assert messages(template) == [
        "good: the ja prompt compares “tone” with “温かく”, which none of its ja labels "
        "meets (a prompt sees the chosen label, not its value)"
    ]


def test_part_of_a_label_meets_a_select_but_a_multi_select_wants_a_whole_label():
    template = with_tone(
        good_template(),
        kind=TemplateField.Type.MULTI_SELECT,
        ja='{% if "丁寧" in tone %}丁寧に。{% endif %}',
        en='{% if "Warm" in tone %} Be warm.{% endif %}',
    )
    assert messages(template) == [
        "good: the en prompt compares “tone” with “Warm”, which none of its en labels "
        "meets (a prompt sees the chosen label, not its value)"
    ]


def test_a_template_needs_two_fields():
    template = good_template(
        prompt_body_en="Write to {{ recipient }}.",
        prompt_body_ja="{{ recipient }}様へ。",
        sample_answer_en="Dear {{ recipient }}, thank you.",
        sample_answer_ja="{{ recipient }}様、ありがとうございました。",
    )
    template.fields.filter(name="topic").delete()
    template.sample_inputs_en = {"recipient": "Ms Sato"}
    template.sample_inputs_ja = {"recipient": "佐藤"}
    template.save()
    assert messages(template) == ["good: has 1 field(s); a template needs at least 2"]


def test_templates_that_differ_in_a_word_are_near_duplicates():
    body = (
        "Write a warm thank-you email to {{ recipient }} after our meeting about {{ topic }}. "
        "Mention what was agreed, the next steps and the date of the next meeting, and close "
        "by offering help with any questions they may have about the proposal."
    )
    first = good_template("first", prompt_body_en=body, title_en="Thanks to a client")
    second = good_template(
        "second",
        prompt_body_en=body.replace("warm", "polite"),
        title_en="Thanks to a customer",
    )
    other = good_template("other", title_en="Something else")
    [problem] = messages(first, second, other)
    assert problem.startswith("second: its prompt is a near-duplicate of first's")


def test_the_command_fails_on_any_problem(capsys):
    good_template(title_en="")
    with pytest.raises(SystemExit) as exit_info:
        call_command("check_catalog")
    assert exit_info.value.code == 1
    assert "good: title has no en translation" in capsys.readouterr().out
