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
        choices_en="formal|Formal\nwarm|Warm",
        choices_ja="formal|丁寧\nwarm|温かく",
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


# What a sample answer must keep to ---------------------------------------------

PLAIN = Template.AnswerFormat.PLAIN


@pytest.mark.parametrize(
    ("markup", "reported"),
    [
        ("We will **deliver on Friday**.", "bold (**) on line 5: “We will **deliver on Friday**.”"),
        ("## Next steps", "a heading (#) on line 5: “## Next steps”"),
        ("| Item | Date |", "a table on line 5: “| Item | Date |”"),
        ("- Delivery on Friday", "a bullet list (- ) on line 5: “- Delivery on Friday”"),
    ],
)
def test_markdown_in_a_plain_templates_answer_is_reported(markup, reported):
    answer = (
        f"Subject: Thank you\n\nDear {{{{ recipient }}}},\nThanks for {{{{ topic }}}}.\n{markup}"
    )
    plain = good_template("plain", answer_format=PLAIN, sample_answer_en=answer)
    assert messages(plain) == [
        f"plain: the en sample answer of a plain-text template uses Markdown: {reported}"
    ]
    markdown = good_template("markdown", sample_answer_en=answer)
    assert messages(markdown) == []


def test_plain_text_marks_are_fine_in_a_plain_templates_answer():
    answer = (
        "件名：お礼\n\n{{ recipient }}様\n【今後の流れ】\n・{{ topic }}の議事録を送ります\n"
        "#お礼 #ハッシュタグ\n1. 日程の確認"
    )
    plain = good_template("plain", answer_format=PLAIN, sample_answer_ja=answer)
    assert messages(plain) == []


@pytest.mark.parametrize(
    ("prompt", "reported"),
    [
        ("Reply in English Markdown.", "asks for Markdown on line 2"),
        ("1. **Subject line**: short", "shows bold (**) to copy on line 2"),
        ("Put the dates in a table.", "asks for a table on line 2"),
        ("| Date | Place |", "shows a table to fill in on line 2"),
    ],
)
def test_a_plain_template_whose_prompt_asks_for_markdown_is_reported(prompt, reported):
    body = f"Write a thank-you email to {{{{ recipient }}}} about {{{{ topic }}}}.\n{prompt}"
    plain = good_template("plain", answer_format=PLAIN, prompt_body_en=body)
    [problem] = messages(plain)
    assert problem == (f"plain: the en prompt of a plain-text template {reported}: “{prompt}”")
    assert messages(good_template("markdown", prompt_body_en=body)) == []


def test_a_plain_prompt_may_rule_markdown_out_and_name_a_front_inscription():
    body = (
        "Write a thank-you email to {{ recipient }} about {{ topic }}.\n"
        "Do not use Markdown or tables."
    )
    system = "Markdown記法は使わないでください。香典の表書きは「御霊前」です。"
    plain = good_template(
        "plain", answer_format=PLAIN, prompt_body_en=body, system_prompt_ja=system
    )
    assert messages(plain) == []


LONG_ANSWER_EN = (
    "Subject: Thank you for your order\n\nDear {{ recipient }},\n\n"
    "Thank you for your order of 200 toner cartridges, which we received this morning. "
    "We will ship them from our Osaka warehouse on Friday 20 November, and they should "
    "reach your office the following Monday. Our driver will call your reception thirty "
    "minutes before arriving, and will take the empty cartridges back for recycling. "
    "If anything about {{ topic }} changes, please let me know by Thursday afternoon."
)


# Three templates that differ in all but their sample answers.
OTHERWISE_DIFFERENT = {
    "first": ("Order confirmation", "Confirm the order of {{ recipient }} for {{ topic }}."),
    "copied": ("Delivery notice", "Tell {{ recipient }} when {{ topic }} arrives, politely."),
    "other": ("Recycling reminder", "Remind {{ recipient }} to recycle {{ topic }} packaging now."),
}


def answered(slug: str, **answers) -> Template:
    title, body = OTHERWISE_DIFFERENT[slug]
    return good_template(slug, title_en=title, prompt_body_en=body, **answers)


def test_a_sample_answer_copied_from_another_template_is_reported():
    first = answered("first", sample_answer_en=LONG_ANSWER_EN)
    copied = answered(
        "copied", sample_answer_en=LONG_ANSWER_EN.replace("Thursday afternoon", "Thursday noon")
    )
    other = answered(
        "other",
        sample_answer_en=LONG_ANSWER_EN.replace("toner cartridges", "desk chairs")
        .replace("Osaka warehouse", "Nagoya factory")
        .replace("empty cartridges back for recycling", "packaging away")
        .replace("Our driver will call your reception", "We will email you")
        .replace("and they should reach your office", "to arrive")
        .replace("If anything about", "Should anything about")
        .replace("please let me know by", "do tell us before"),
    )
    [problem] = messages(first, copied, other)
    assert problem.startswith("copied: its en sample answer is a copy of first's (")


def test_a_japanese_answer_copied_with_other_line_breaks_is_reported():
    answer = (
        "件名：ご注文のお礼\n\n{{ recipient }}様\n\nこのたびはトナー200本をご注文いただき、"
        "誠にありがとうございます。11月20日（金）に大阪の倉庫から出荷し、翌週月曜日に"
        "お届けする予定です。到着の30分前に配送担当から受付へお電話いたします。"
        "使用済みのカートリッジは、その際に回収いたします。{{ topic }}について"
        "変更がございましたら、木曜日の午後までにお知らせください。"
    )
    first = answered("first", sample_answer_ja=answer)
    copied = answered("copied", sample_answer_ja=answer.replace("。", "。\n"))
    [problem] = messages(first, copied)
    assert problem.startswith("copied: its ja sample answer is a copy of first's (")


OUTPUT_FORMAT = (
    "Write a meeting summary for {{ recipient }} about {{ topic }}.\n\n"
    "## Output format\n### Summary (three lines)\n### Decisions: what was agreed\n"
    "### Next steps\n### [Topic name]\n\n## Notes\n### Not a heading of the answer"
)


def test_an_answer_without_a_heading_the_output_format_states_is_reported():
    answer = "## Summary\nWe met {{ recipient }}.\n\n## Next steps\nSend {{ topic }}."
    template = good_template(prompt_body_en=OUTPUT_FORMAT, sample_answer_en=answer)
    assert messages(template) == [
        "good: the en sample answer lacks the heading “Decisions” that the prompt's "
        "output format states"
    ]


def test_headings_may_be_written_as_plain_text_headings():
    answer = (
        "Summary\nWe met {{ recipient }}.\n\n【Decisions】\nAll agreed.\n\nNext steps: {{ topic }}"
    )
    template = good_template(prompt_body_en=OUTPUT_FORMAT, sample_answer_en=answer)
    assert messages(template) == []


def test_a_conditional_heading_is_needed_only_when_the_samples_show_it():
    body = (
        "Write to {{ recipient }}.\n\n## Output format\n### Summary\n"
        "{% if topic == 'lunch' %}### Menu{% endif %}"
    )
    answer = "## Summary\nAbout {{ topic }}."
    template = good_template(prompt_body_en=body, sample_answer_en=answer)
    assert messages(template) == []  # the sample's topic is "the meeting": no menu
    template.sample_inputs_en = {"recipient": "Ms Sato", "topic": "lunch"}
    template.save()
    assert messages(template) == [
        "good: the en sample answer lacks the heading “Menu” that the prompt's output format states"
    ]


@pytest.mark.parametrize(
    ("prompt", "answer", "reported"),
    [
        (
            "Headlines: 30 characters max.",
            "### Headlines (3)\n1. Thank you, {{ recipient }}\n2. See you at {{ topic }} "
            "again next month\n3. Short",
            "“See you at the meeting again next month” is 39, over the limit for Headlines "
            "(30 characters)",
        ),
        (
            "## 出力形式\n### 見出し（3案、全角15字以内）",
            "### 見出し\n1. {{ topic }}のお礼\n2. {{ topic }}へのご参加、本当にありがとうございました",
            "“打ち合わせへのご参加、本当にありがとうございました” is 25, over the limit for 見出し "
            "(15 characters)",
        ),
        (
            "タイトルは半角20文字以内、本文は自由。",
            "- タイトル：{{ topic }}のお礼とご報告\n- 本文：{{ recipient }}様、ありがとう。",
            "“打ち合わせのお礼とご報告” is 24, over the limit for タイトル (20 half-width "
            "characters)",
        ),
    ],
)
def test_a_part_longer_than_the_prompt_allows_is_reported(prompt, answer, reported):
    body = f"Write to {{{{ recipient }}}} about {{{{ topic }}}}.\n{prompt}"
    language = "ja" if "字" in prompt else "en"
    template = good_template(
        **{f"prompt_body_{language}": body, f"sample_answer_{language}": answer}
    )
    assert messages(template) == [
        f"good: the {language} sample answer breaks a length limit: {reported}"
    ]


def test_parts_within_their_limits_and_rough_guides_are_not_reported():
    body = (
        "Write to {{ recipient }} about {{ topic }}.\n"
        "Headlines: 30 characters max. Keep the intro to about 10 characters."
    )
    answer = "### Headlines\n1. Thanks, {{ recipient }}\n\nIntro: a long introduction that runs on"
    template = good_template(prompt_body_en=body, sample_answer_en=answer)
    assert messages(template) == []


def test_a_count_the_answer_states_wrongly_is_reported():
    answer = (
        "### 見出し\n1. {{ topic }}のお礼（8字）\n2. ご参加ありがとう（10字）\n"
        "3. 勤怠管理システム（半角換算16文字）【キーワード】"
    )
    template = good_template(sample_answer_ja=answer)
    assert messages(template) == [
        "good: the ja sample answer states a wrong count: “ご参加ありがとう” says 10 characters "
        "but has 8"
    ]


def test_english_choice_labels_in_lower_case_and_a_single_choice_are_reported():
    template = good_template()
    TemplateFieldFactory(
        template=template,
        name="tone",
        type=TemplateField.Type.SELECT,
        choices_en="formal|formal\nwarm|Warm\nphone|iPhone users\ndev|dev.to readers\nblog|note",
        choices_ja="formal|丁寧\nwarm|温かく\nphone|iPhoneの方\ndev|dev.toの読者\nblog|note",
        label_ja="トーン",
        label_en="Tone",
    )
    TemplateFieldFactory(
        template=template,
        name="ratio",
        type=TemplateField.Type.RADIO,
        choices_en="16:9|Wide (16:9)",
        choices_ja="16:9|横長（16:9）",
        label_ja="比率",
        label_en="Ratio",
    )
    TemplateFieldFactory(
        template=template,
        name="extras",
        type=TemplateField.Type.MULTI_SELECT,
        choices_en="map|A map",
        choices_ja="map|地図",
        label_ja="追加",
        label_en="Extras",
    )
    template.prompt_body_en += " {{ tone }} {{ ratio }} {{ extras }}"
    template.prompt_body_ja += " {{ tone }} {{ ratio }} {{ extras }}"
    samples = {"tone": "warm", "ratio": "16:9", "extras": ["map"]}
    template.sample_inputs_en = template.sample_inputs_en | samples
    template.sample_inputs_ja = template.sample_inputs_ja | samples
    template.save()
    assert messages(template) == [
        "good: field “ratio” offers only one choice",
        "good: field “tone” has an English choice label that starts in lower case: “formal”",
    ]
