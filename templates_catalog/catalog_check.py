"""The catalogue check: every template rendered with its sample inputs through
the real form and prompt sandbox, in every language, and what people would
trip over reported: placeholders without fields, fields never used, missing
translations and samples, too few fields, choices that read badly, conditions
on a choice that no label meets, near-duplicate templates and sample answers
copied from another template, and sample answers that do not keep to their
template (Markdown in a plain-text one, a heading or a length limit of the
prompt's output format: templates_catalog.catalog_answers).

`manage.py check_catalog` runs it over the database or over catalogue files.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

from django.conf import settings
from django.utils import translation

from templates_catalog.catalog_answers import (
    limit_problems,
    markdown_in_text,
    markdown_requests,
    missing_headings,
    wrong_counts,
)
from templates_catalog.choices import ChoiceParseError, parse_choices
from templates_catalog.forms import (
    form_data_from_inputs,
    prompt_values,
    stored_inputs,
    template_form,
)
from templates_catalog.models import Template, TemplateField
from templates_catalog.prompting import (
    PromptRenderError,
    PromptSyntaxError,
    compared_texts,
    referenced_names,
    render_prompt,
)
from templates_catalog.services import (
    template_prompt_budget_problems,
    template_render_prompt,
)

LANGUAGES = [code for code, _name in settings.LANGUAGES]
MIN_FIELDS = 2
# Two templates whose English prompts share this much (Jaccard of word
# trigrams, field names and Jinja tags left out) do the same thing.
NEAR_DUPLICATE = 0.5
# Two sample answers sharing this much (Jaccard of word trigrams in English, of
# character 4-grams in Japanese, field tags left out) are one answer copied.
COPIED_ANSWER = 0.6
SKETCH = 64
# Answers shorter than this (in shingles: a few sentences) may well agree by
# chance ("Thank you for your order."); only longer ones are compared.
COPIED_ANSWER_MIN_SHINGLES = 40
# Image templates' parameters, read by the image pipeline rather than the prompt
# (generation.images.attempts.image_request).
IMAGE_PARAMETERS = frozenset({"aspect_ratio", "count", "negative_prompt"})
_TAG = re.compile(r"{{.*?}}|{%.*?%}", re.S)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, order=True)
class Problem:
    template: str
    message: str

    def __str__(self) -> str:
        return f"{self.template}: {self.message}"


def check_templates(templates: Iterable[Template]) -> list[Problem]:
    """Every problem of these templates (fields prefetched or not)."""
    templates = list(templates)
    problems: list[Problem] = []
    for template in templates:
        problems += _check_template(template, list(template.fields.all()))
    problems += _near_duplicates(templates)
    problems += _copied_answers(templates)
    return sorted(problems)


def _check_template(template: Template, fields: list[TemplateField]) -> list[Problem]:
    slug = template.slug
    problems = []

    def report(message: str) -> None:
        problems.append(Problem(slug, message))

    if len(fields) < MIN_FIELDS:
        report(f"has {len(fields)} field(s); a template needs at least {MIN_FIELDS}")
    for field in fields:
        for message in _choice_problems(field):
            report(f"field “{field.name}” {message}")
    names = {field.name for field in fields}
    for language in LANGUAGES:
        for attribute in ("title", "description", "prompt_body"):
            if not (getattr(template, f"{attribute}_{language}") or "").strip():
                report(f"{attribute} has no {language} translation")
        for attribute in ("system_prompt", "tags"):
            texts = [getattr(template, f"{attribute}_{code}") or "" for code in LANGUAGES]
            if any(t.strip() for t in texts) and not texts[LANGUAGES.index(language)].strip():
                report(f"{attribute} has no {language} translation")
        for field in fields:
            if not (getattr(field, f"label_{language}") or "").strip():
                report(f"field “{field.name}” has no {language} label")
            if (
                field.type in TemplateField.CHOICE_TYPES
                and not (getattr(field, f"choices_{language}") or "").strip()
            ):
                report(f"field “{field.name}” has no {language} choices")
        try:
            used = referenced_names(getattr(template, f"prompt_body_{language}") or "")
            used |= referenced_names(getattr(template, f"system_prompt_{language}") or "")
        except PromptSyntaxError as exc:
            report(f"the {language} prompt does not parse: {exc}")
            continue
        unknown = sorted(used - names)
        for name in unknown:
            report(f"the {language} prompt uses “{name}”, which is not a field")
        parameters = IMAGE_PARAMETERS if template.kind == Template.Kind.IMAGE else frozenset()
        for name in sorted(names - used - parameters):
            report(f"field “{name}” is never used in the {language} prompt")
        for message in _unmet_conditions(template, fields, language):
            report(message)
        if not unknown:
            problems += _render_sample(template, fields, language)
        if template.answer_format == Template.AnswerFormat.PLAIN:
            problems += _plain_prompt_problems(template, language)
    problems += [
        Problem(template.slug, f"{problem} (with the longest inputs the form accepts)")
        for problem in template_prompt_budget_problems(template=template, fields=fields)
    ]
    return problems


def _unmet_conditions(template: Template, fields: list[TemplateField], language: str) -> list[str]:
    """Comparisons of a choice field with a text that none of its labels in
    `language` meets. A prompt sees the chosen label, not its value, so such a
    condition is silently never true (or always, with `!=`): the usual slips are
    comparing with the value, and relabelling a choice."""
    choice_fields = {
        field.name: field for field in fields if field.type in TemplateField.CHOICE_TYPES
    }
    if not choice_fields:
        return []
    with translation.override(language):
        labels = {
            name: [label for _value, label in f.choice_pairs()] for name, f in choice_fields.items()
        }
    problems = []
    for source in ("prompt_body", "system_prompt", "sample_answer"):
        try:
            comparisons = compared_texts(getattr(template, f"{source}_{language}") or "")
        except PromptSyntaxError:
            continue  # reported as not parsing
        for name, operator, text in comparisons:
            if name not in labels:
                continue
            field = choice_fields[name]
            if operator == "==" or field.type == TemplateField.Type.MULTI_SELECT:
                met = text in labels[name]  # a multi-select's `in` asks for a whole label
            else:
                met = any(text in label for label in labels[name])
            if not met:
                what = source.replace("_", " ").replace("prompt body", "prompt")
                problems.append(
                    f"the {language} {what} compares “{name}” with “{text}”, which none of "
                    f"its {language} labels meets (a prompt sees the chosen label, not its value)"
                )
    return problems


def _render_sample(template: Template, fields: list[TemplateField], language: str) -> list:
    slug = template.slug
    sample = getattr(template, f"sample_inputs_{language}") or {}
    if not sample:
        return [Problem(slug, f"has no {language} sample inputs")]
    with translation.override(language):
        form = template_form(template, form_data_from_inputs(sample, fields), fields=fields)
        if not form.is_valid():
            errors = "; ".join(
                f"{name}: {' '.join(messages)}" for name, messages in form.errors.items()
            )
            return [
                Problem(slug, f"the {language} sample inputs are refused by the form ({errors})")
            ]
        try:
            rendered = template_render_prompt(
                template=template, inputs=stored_inputs(form), language=language, fields=fields
            )
        except (PromptRenderError, PromptSyntaxError) as exc:
            return [Problem(slug, f"the {language} prompt does not render: {exc}")]
        answer, answer_problem = _sample_answer(template, stored_inputs(form), fields, language)
        if answer_problem:
            return [Problem(slug, answer_problem)]
    if not rendered.prompt.strip():
        return [Problem(slug, f"the {language} prompt renders empty")]
    missing = [name for name in sample if name not in {field.name for field in fields}]
    if missing:
        return [Problem(slug, f"the {language} sample names unknown fields: {', '.join(missing)}")]
    return [
        Problem(slug, f"the {language} sample answer {message}")
        for message in _answer_problems(template, rendered.prompt, answer)
    ]


def _sample_answer(
    template: Template, inputs: dict, fields: list[TemplateField], language: str
) -> tuple[str, str]:
    """The template's sample answer in `language` rendered with `inputs`, and what
    is wrong with it ('' when nothing)."""
    source = getattr(template, f"sample_answer_{language}") or ""
    if not source.strip():
        return "", f"has no {language} sample answer"
    try:
        return render_prompt(source, prompt_values(inputs, fields, language)), ""
    except (PromptRenderError, PromptSyntaxError) as exc:
        return "", f"the {language} sample answer does not render: {exc}"


def _answer_problems(template: Template, prompt: str, answer: str) -> list[str]:
    """How a rendered sample answer strays from what its rendered prompt asks."""
    problems = []
    if template.answer_format == Template.AnswerFormat.PLAIN:
        problems += [
            f"of a plain-text template uses Markdown: {m}" for m in markdown_in_text(answer)
        ]
    problems += [
        f"lacks the heading “{heading}” that the prompt's output format states"
        for heading in missing_headings(prompt, answer)
    ]
    problems += [f"breaks a length limit: {problem}" for problem in limit_problems(prompt, answer)]
    problems += [f"states a wrong count: {problem}" for problem in wrong_counts(answer)]
    return problems


def _plain_prompt_problems(template: Template, language: str) -> list[Problem]:
    """A plain-text template's own prompts asking for Markdown (the line the
    studio appends asks for plain text; these would contradict it)."""
    problems = []
    for attribute, name in (("system_prompt", "system prompt"), ("prompt_body", "prompt")):
        source = getattr(template, f"{attribute}_{language}") or ""
        problems += [
            Problem(template.slug, f"the {language} {name} of a plain-text template {request}")
            for request in markdown_requests(source)
        ]
    return problems


# Names written in lower case on purpose: iPhone, eBay (a capital follows), dev.to,
# and the blogging platform note (note.com).
_LOWER_CASE_NAME = re.compile(r"[a-z][A-Z]\S*|[a-z0-9-]+(?:\.[a-z0-9-]+)+|note\b")


def _choice_problems(field: TemplateField) -> list[str]:
    """English choice labels that start in lower case (a name written so, such
    as iPhone or dev.to, aside), and a drop-down or radio buttons with only one
    choice."""
    try:
        pairs = parse_choices(getattr(field, "choices_en", "") or "")
    except ChoiceParseError:
        return []  # refused where the field is saved
    problems = [
        f"has an English choice label that starts in lower case: “{label}”"
        for _value, label in pairs
        if label[:1].islower() and not _LOWER_CASE_NAME.match(label.split(" ")[0])
    ]
    if field.type in (TemplateField.Type.SELECT, TemplateField.Type.RADIO) and len(pairs) == 1:
        problems.append("offers only one choice")
    return problems


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(_TAG.sub(" ", text).lower())
    return frozenset(zip(words, words[1:], words[2:], strict=False))


def _near_duplicates(templates: list[Template]) -> list[Problem]:
    """Pairs of templates whose English prompts say nearly the same thing, and
    titles used twice."""
    problems = []
    seen_titles: dict[tuple[str, str], str] = {}
    for template in templates:
        for language in LANGUAGES:
            title = (getattr(template, f"title_{language}") or "").strip().lower()
            other = seen_titles.setdefault((language, title), template.slug)
            if title and other != template.slug:
                problems.append(Problem(template.slug, f"has the same {language} title as {other}"))
    shingled = [
        (t.slug, _shingles((t.prompt_body_en or "") + " " + (t.title_en or ""))) for t in templates
    ]
    for index, (slug, mine) in enumerate(shingled):
        if not mine:
            continue
        for other_slug, theirs in shingled[index + 1 :]:
            if not theirs:
                continue
            smaller, larger = sorted((len(mine), len(theirs)))
            if smaller < NEAR_DUPLICATE * larger:
                continue  # too different in length to be this similar
            similarity = len(mine & theirs) / len(mine | theirs)
            if similarity >= NEAR_DUPLICATE:
                problems.append(
                    Problem(
                        other_slug,
                        f"its prompt is a near-duplicate of {slug}'s "
                        f"({similarity:.0%} of their word sequences in common)",
                    )
                )
    return problems


def _answer_shingles(text: str, language: str) -> frozenset:
    """What two sample answers are compared by: English word trigrams, Japanese
    character 4-grams (it has no spaces between words), field tags left out."""
    if language != "ja":
        return _shingles(text)
    letters = "".join(_WORD.findall(_TAG.sub(" ", text).lower()))
    return frozenset(letters[i : i + 4] for i in range(len(letters) - 3))


def _copied_answers(templates: list[Template]) -> list[Problem]:
    """Sample answers that are (nearly) another template's: an answer written
    for one template and pasted into another, where it answers the wrong form.

    Comparing every pair would take half a minute for the catalogue: only pairs
    whose sketches (each answer's SKETCH smallest shingle hashes) share a
    quarter of their hashes, far fewer than copies do, are compared in full."""
    problems = []
    for language in LANGUAGES:
        shingled = [
            _answer_shingles(getattr(t, f"sample_answer_{language}") or "", language)
            for t in templates
        ]
        holders: dict[int, list[int]] = defaultdict(list)
        for index, shingles in enumerate(shingled):
            if len(shingles) < COPIED_ANSWER_MIN_SHINGLES:
                continue
            for value in heapq.nsmallest(SKETCH, map(hash, shingles)):
                holders[value].append(index)
        shared = Counter(
            pair
            for group in holders.values()
            if 1 < len(group) <= SKETCH  # a phrase in many answers tells nothing
            for pair in combinations(group, 2)
        )
        for (first, second), count in sorted(shared.items()):
            if count < SKETCH // 4:
                continue
            mine, theirs = shingled[first], shingled[second]
            similarity = len(mine & theirs) / len(mine | theirs)
            if similarity >= COPIED_ANSWER:
                problems.append(
                    Problem(
                        templates[second].slug,
                        f"its {language} sample answer is a copy of {templates[first].slug}'s "
                        f"({similarity:.0%} in common)",
                    )
                )
    return problems
