"""One person's history: search and filters over their generations, re-running
one with its inputs, and deleting (exports of what they found: generation.reports.exports).

Search runs at query time (per-person history is small enough): PostgreSQL full
text search for words, plus plain substring matching for Japanese (and other
CJK) text, which PostgreSQL's parser does not split into words. SQLite gets
substring matching for everything.
"""

from __future__ import annotations

import datetime
import operator
import re
import uuid
from collections.abc import Iterable, Mapping
from functools import reduce
from typing import Any

from django import forms
from django.contrib.postgres.search import (
    SearchQuery,
    SearchVector,
    SearchVectorCombinable,
    SearchVectorField,
)
from django.db import connections
from django.db.models import BooleanField, Func, Q, QuerySet, Value
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from generation.models import Generation
from templates_catalog.models import Template, translated_names

MAX_QUERY_LENGTH = 100
# How many ids one request may act on (a page shows 20).
MAX_SELECTION = 500
# What date pickers send, and what people type where there is none.
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%Y/%m/%d"]

# Scripts written without spaces between words (kana, kanji, hangul, and the
# full-width forms): matched as substrings rather than as words.
_UNSEGMENTED = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
_TOKEN = re.compile(r'-?"[^"]*"?|\S+')


# Search ----------------------------------------------------------------------


class JSONValuesSearchVector(SearchVectorCombinable, Func):
    """The string and number values of a jsonb column as a tsvector. Keys stay
    out, so that searching for a field's name does not match everything."""

    function = "jsonb_to_tsvector"
    template = "%(function)s('simple'::regconfig, %(expressions)s, '[\"string\", \"numeric\"]')"
    output_field = SearchVectorField()


def _text_fields() -> list[str]:
    # The title as it was run, and the template's current titles in every language.
    titles = [f"template__{name}" for name in translated_names("title")]
    return ["output", "prompt", "template_title", *titles]


class JSONValuesContain(Func):
    """Whether any string or number inside a JSON column contains `pattern` (a
    LIKE pattern), ignoring keys, so that a field's name does not match. Case
    is ignored as the database's LIKE does (SQLite: ASCII letters only)."""

    output_field = BooleanField()
    arity = 2

    def _compiled(self, compiler) -> tuple[str, str, list[Any]]:
        column, pattern = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        pattern_sql, pattern_params = compiler.compile(pattern)
        return column_sql, pattern_sql, [*column_params, *pattern_params]

    def as_sql(self, compiler, connection, **extra_context):
        column, pattern, params = self._compiled(compiler)
        return f"(CAST({column} AS TEXT) LIKE {pattern})", params

    def as_sqlite(self, compiler, connection, **extra_context):
        # json_tree's atoms are the unescaped values; SQLite stores "\uXXXX" for non-ASCII.
        column, pattern, params = self._compiled(compiler)
        sql = (
            f"EXISTS (SELECT 1 FROM json_tree({column}) AS node"
            " WHERE node.type IN ('text', 'integer', 'real')"
            f" AND node.atom LIKE {pattern} ESCAPE '\\')"
        )
        return sql, params

    def as_postgresql(self, compiler, connection, **extra_context):
        column, pattern, params = self._compiled(compiler)
        sql = (
            f"EXISTS (SELECT 1 FROM jsonb_path_query({column}, 'strict $.**') AS node"
            " WHERE jsonb_typeof(node) IN ('string', 'number')"
            f" AND (node #>> '{{}}') ILIKE {pattern})"
        )
        return sql, params


def _contains(term: str, connection) -> Q:
    """`term` inside the text fields or the values of the inputs."""
    match = reduce(operator.or_, (Q(**{f"{f}__icontains": term}) for f in _text_fields()))
    pattern = f"%{connection.ops.prep_for_like_query(term)}%"
    return match | Q(JSONValuesContain("inputs", Value(pattern)))


def _substring_match(query: str, connection) -> Q:
    """The query read like a web search box: words all present, `-word` absent,
    "quoted phrases" as they are, OR between alternatives."""
    groups: list[Q] = []
    current: list[Q] = []
    for token in _TOKEN.findall(query):
        if token.upper() == "OR":
            if current:
                groups.append(reduce(operator.and_, current))
            current = []
            continue
        negated = token.startswith("-") and len(token) > 1
        term = token[1:] if negated else token
        term = term.strip('"').strip()
        if term:
            match = _contains(term, connection)
            current.append(~match if negated else match)
    if current:
        groups.append(reduce(operator.and_, current))
    return reduce(operator.or_, groups) if groups else Q()


def history_search(generations: QuerySet[Generation], query: str) -> QuerySet[Generation]:
    """The generations whose inputs, output, prompt or template title match `query`."""
    query = query.strip()[:MAX_QUERY_LENGTH]
    if not query:
        return generations
    connection = connections[generations.db]
    if connection.vendor != "postgresql":
        return generations.filter(_substring_match(query, connection))
    document = SearchVector(*_text_fields(), config="simple") + JSONValuesSearchVector("inputs")
    matches = Q(search_document=SearchQuery(query, search_type="websearch", config="simple"))
    if _UNSEGMENTED.search(query):
        matches |= _substring_match(query, connection)
    return generations.alias(search_document=document).filter(matches)


# Filters ---------------------------------------------------------------------


class HistoryFilterForm(forms.Form):
    """Search and filters, read from the query string. A value that does not
    parse gets an error next to its field and is left out; the rest apply."""

    q = forms.CharField(
        label=gettext_lazy("Search"),
        required=False,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "maxlength": MAX_QUERY_LENGTH,
                "placeholder": gettext_lazy("Words in the inputs, the answer or the title"),
            }
        ),
    )
    template = forms.ModelChoiceField(
        label=gettext_lazy("Template"),
        queryset=Template.objects.none(),
        required=False,
        empty_label=gettext_lazy("All templates"),
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        required=False,
        choices=[("", gettext_lazy("All kinds")), *Template.Kind.choices],
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("All statuses")), *Generation.Status.choices],
    )
    date_from = forms.DateField(
        label=gettext_lazy("From date"),
        required=False,
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=gettext_lazy("To date"),
        required=False,
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, data: Mapping[str, Any], *, user) -> None:
        super().__init__(data)
        # The templates this person has used, whatever their state now.
        self.fields["template"].queryset = (
            Template.objects.filter(generations__user=user).distinct().order_by("title", "pk")
        )

    def clean_q(self) -> str:
        return self.cleaned_data["q"][:MAX_QUERY_LENGTH]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    @property
    def applied(self) -> dict[str, Any]:
        """The filters in use: those given and valid."""
        self.is_valid()
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if value not in (None, "") and name not in self.errors
        }

    @property
    def querystring(self) -> str:
        """The applied filters as a query string, for pagination and export links."""
        values = {
            name: value.pk if isinstance(value, Template) else str(value)
            for name, value in self.applied.items()
        }
        return urlencode(values)


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def history_generations(*, user, filters: Mapping[str, Any]) -> QuerySet[Generation]:
    """This person's generations matching `filters` (HistoryFilterForm.applied), newest first."""
    generations = Generation.objects.for_user(user)
    if template := filters.get("template"):
        generations = generations.filter(template=template)
    if kind := filters.get("kind"):
        generations = generations.filter(kind=kind)
    if status := filters.get("status"):
        generations = generations.filter(status=status)
    # Days in the site's time zone; the first and last day there are means no bound.
    if (start := filters.get("date_from")) and start > datetime.date.min:
        generations = generations.filter(created_at__gte=_start_of(start))
    if (end := filters.get("date_to")) and end < datetime.date.max:
        generations = generations.filter(created_at__lt=_start_of(end + datetime.timedelta(1)))
    if query := filters.get("q"):
        generations = history_search(generations, query)
    return generations.order_by("-created_at", "-pk")


def parse_ids(values: Iterable[str]) -> list[uuid.UUID]:
    """The well-formed generation ids among `values` (the rest are ignored)."""
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
        if len(ids) >= MAX_SELECTION:
            break
    return ids


# Re-running and deleting -----------------------------------------------------


def history_delete(*, user, ids: Iterable[uuid.UUID]) -> int:
    """Delete these of the person's finished generations and return how many went.

    Others' ids are ignored; unfinished generations are kept (their run still
    writes to them: stop them first). An image generation's files go once the
    deletion is committed. Their usage stays counted (generation.models.UsageRecord)."""
    generations = (
        Generation.objects.for_user(user)
        .filter(pk__in=list(ids))
        .exclude(status__in=Generation.UNFINISHED)
    )
    # An image generation's files go once the deletion is committed (generation.apps).
    _total, per_model = generations.delete()
    return per_model.get(Generation._meta.label, 0)
