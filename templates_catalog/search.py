"""Finding templates by what people type, in Japanese or English, most relevant
first, and the facets of what was found.

Titles, tags and descriptions in both languages are cut into terms once, when
the index is built, and a query the same way (`search_terms`: Sudachi's
normalised forms and synonym groups for Japanese, stems and synonyms for
English). A template's score for a query word is what its best term for that
word is worth (the word itself, a synonym, a part of a longer word, the same
reading) times where it stands: a title counts most, then tags, then a
description, a little more for each further field it is in. Rare words count
more than common ones (謝罪 says more than メール), and a template must have
most of what the query says: the query's words it has must weigh at least half
of all of them (謝罪 alone passes for 「謝罪メール」, メール alone does not),
and the more it has the higher it ranks. A word no term knows (a name, a word
not finished typing) is looked for inside the text.

The catalogue is a few hundred templates that change rarely, so this runs on an
in-memory index, rebuilt when the catalogue changes (one small query per search
tells); a text already analysed is not analysed again. `make bench-catalog`
prints the build time, one search's time and recall@10/MRR on the relevance set
(tests/templates_catalog/relevance.yaml); the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

import gc
import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case, Count, Max, Value, When

from templates_catalog.models import Template, TemplateQuerySet, split_tags, translated_names
from templates_catalog.search_terms import (
    PART,
    READING,
    SUBSTRING,
    QueryWord,
    english_terms,
    is_japanese,
    japanese_text,
    query_words,
    searchable,
)

LANGUAGES = [code for code, _name in settings.LANGUAGES]

# Where a match counts most. Titles, tags and descriptions are searched in every language.
WEIGHTS = {"title": 3.0, "tags": 2.0, "description": 1.0}
# What each further field with the same term adds, as a share of its weight.
FURTHER_FIELD = 0.25
# The query's words a template has must weigh at least this share of all of them.
MIN_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class Entry:
    """What the index knows of one template."""

    pk: int
    category_id: int
    kind: str
    published: bool
    position: tuple[int, int, str]  # the catalogue's own order
    created_at: float
    tags: dict[str, tuple[str, ...]]  # by language

    @property
    def all_tags(self) -> set[str]:
        """Its tags in every language: a tag chosen in either language finds it."""
        return {tag for tags in self.tags.values() for tag in tags}


@dataclass(frozen=True, slots=True)
class Field:
    """One searchable field of a template (a title, its tags, a description, in
    one language), analysed."""

    text: str  # searchable: a word no term knows is looked for in it
    reading: str  # katakana, for Japanese text: a word typed in kana is looked for in it
    terms: dict[str, float]
    weight: float

    @classmethod
    def of(cls, text: str, weight: float) -> Field:
        text = searchable(text)
        if is_japanese(text):
            analysed = japanese_text(text)
            return cls(text, analysed.reading, analysed.terms, weight)
        return cls(text, "", english_terms(text), weight)


def _term_weights(fields: Iterable[Field]) -> dict[str, float]:
    """Each term's weight in one template: its best field's, and a share of
    each other field's that has it."""
    best: dict[str, float] = {}
    others: dict[str, float] = {}
    for field in fields:
        for term, worth in field.terms.items():
            weight = worth * field.weight
            known = best.get(term)
            if known is None:
                best[term] = weight
            else:
                best[term] = max(known, weight)
                others[term] = others.get(term, 0.0) + min(known, weight)
    return {term: weight + FURTHER_FIELD * others.get(term, 0.0) for term, weight in best.items()}


class SearchIndex:
    def __init__(self, entries: list[Entry], fields: list[tuple[Field, ...]]) -> None:
        self.entries = entries
        self.by_pk = {entry.pk: entry for entry in entries}
        self.number = {entry.pk: number for number, entry in enumerate(entries)}
        self.fields = fields  # each entry's, in the order of `entries`
        self.postings: dict[str, dict[int, float]] = {}  # term → {entry number: its weight}
        for number, entry_fields in enumerate(fields):
            for term, weight in _term_weights(entry_fields).items():
                self.postings.setdefault(term, {})[number] = weight

    @classmethod
    def build(cls) -> SearchIndex:
        with _no_cycle_collection():
            return cls._build()

    @classmethod
    def _build(cls) -> SearchIndex:
        columns = {field: translated_names(field) for field in ("title", "tags", "description")}
        values = Template.objects.values(
            "pk",
            "category_id",
            "category__order",
            "kind",
            "status",
            "order",
            "slug",
            "created_at",
            *(name for names in columns.values() for name in names),
        )
        rows = sorted(values, key=lambda row: (row["category__order"], row["order"], row["slug"]))
        entries = [
            Entry(
                pk=row["pk"],
                category_id=row["category_id"],
                kind=row["kind"],
                published=row["status"] == Template.Status.PUBLISHED,
                position=(row["category__order"], row["order"], row["slug"]),
                created_at=row["created_at"].timestamp(),
                tags={
                    language: tuple(split_tags(row[name] or ""))
                    for language, name in zip(LANGUAGES, columns["tags"], strict=True)
                },
            )
            for row in rows
        ]
        fields = [
            tuple(
                Field.of(row[name] or "", WEIGHTS[field])
                for field, names in columns.items()
                for name in names
            )
            for row in rows
        ]
        return cls(entries, fields)

    def search(self, query: str, entries: Iterable[Entry]) -> list[tuple[Entry, float]]:
        """Those of `entries` that have most of what `query` says, with their
        scores, best first."""
        entries = list(entries)
        words = query_words(query)
        if not words:
            return [(entry, 0.0) for entry in entries]
        # A word that no template has cannot tell templates apart: it is left out.
        found = [matches for matches in map(self._matches, words) if matches]
        total = len(self.entries)
        rarity = [math.log((total + 1) / (len(matches) + 1)) + 1 for matches in found]
        scores: dict[int, float] = {}
        covered: dict[int, float] = {}
        for matches, weight in zip(found, rarity, strict=True):
            for number, worth in matches.items():
                scores[number] = scores.get(number, 0.0) + weight * worth
                covered[number] = covered.get(number, 0.0) + weight
        whole = sum(rarity)
        ranked = []
        for entry in entries:
            number = self.number[entry.pk]
            coverage = covered.get(number, 0.0) / whole if whole else 0.0
            if coverage >= MIN_COVERAGE:
                ranked.append((entry, scores[number] * coverage))
        ranked.sort(key=lambda pair: (-pair[1], pair[0].position))
        return ranked

    def _matches(self, word: QueryWord) -> dict[int, float]:
        """The entries that have `word`, with what it is worth in each."""
        matches: dict[int, float] = {}
        for term, worth in word.terms.items():
            for number, weight in self.postings.get(term, {}).items():
                matches[number] = max(matches.get(number, 0.0), worth * weight)
        if word.reading:
            self._look_inside(word.reading, READING, matches, reading=True)
        if word.parts:  # a compound: also where all its parts are (事業計画書: 事業計画)
            found = [self._matches(part) for part in word.parts]
            for number, worth in _all_of(found).items():
                matches[number] = max(matches.get(number, 0.0), PART * worth)
        if not matches:
            self._look_inside(word.text, SUBSTRING, matches)
        return matches

    def _look_inside(
        self, text: str, worth: float, matches: dict[int, float], *, reading: bool = False
    ) -> None:
        """Adds the entries with `text` inside a field (or its reading) to `matches`."""
        for number, fields in enumerate(self.fields):
            weights = [
                field.weight
                for field in fields
                if text in (field.reading if reading else field.text)
            ]
            if weights:
                best = max(weights)
                weight = best + FURTHER_FIELD * (sum(weights) - best)
                matches[number] = max(matches.get(number, 0.0), worth * weight)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The index is tens of thousands of small objects and no reference cycle:
    Python's cycle collector, set off by so many new objects, would only walk
    the whole process's memory again and again (a third of a first build)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _all_of(found: list[dict[int, float]]) -> dict[int, float]:
    """The entries in every one of `found`, with their mean worth."""
    common = set(found[0]).intersection(*found[1:])
    return {number: sum(matches[number] for matches in found) / len(found) for number in common}


_lock = threading.Lock()
_cached: tuple[tuple, SearchIndex] | None = None


def search_index() -> SearchIndex:
    """The index of the catalogue as it is now (rebuilt after any change)."""
    global _cached
    state = Template.objects.aggregate(count=Count("pk"), changed=Max("updated_at"))
    key = (state["count"], state["changed"])
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        if _cached is None or _cached[0] != key:
            _cached = (key, SearchIndex.build())
        return _cached[1]


SORTS = ("relevance", "catalogue", "popular", "new")
TOP_TAGS = 12


@dataclass(frozen=True)
class Facet:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class Listing:
    """A page of the catalogue: the templates found, in order, and the facets."""

    pks: list[int]
    categories: list[tuple[int, int]]  # (category id, templates found in it)
    kinds: Counter
    tags: list[tuple[str, int]]


def catalogue_listing(
    *,
    query: str = "",
    category_id: int | None = None,
    kind: str = "",
    tags: Iterable[str] = (),
    only: set[int] | None = None,
    sort: str = "",
    uses: dict[int, int] | None = None,
    language: str = "ja",
) -> Listing:
    """The published templates that match, ordered by `sort` (relevance with a
    query, the catalogue's order without), with the counts that each facet
    would give, the tags' in `language`. `only` keeps the given templates
    (favourites). A chosen tag matches in any language, so a link keeps
    working when the page's language changes."""
    index = search_index()
    entries = [entry for entry in index.entries if entry.published]
    if only is not None:
        entries = [entry for entry in entries if entry.pk in only]
    found = index.search(query, entries) if query.strip() else [(e, 0.0) for e in entries]
    wanted_tags = set(tags)

    def keep(entry: Entry, *, by_category: bool = True, by_kind: bool = True) -> bool:
        return (
            (not by_category or category_id is None or entry.category_id == category_id)
            and (not by_kind or not kind or entry.kind == kind)
            and wanted_tags <= entry.all_tags
        )

    categories = Counter(e.category_id for e, _s in found if keep(e, by_category=False))
    kinds = Counter(e.kind for e, _s in found if keep(e, by_kind=False))
    chosen = [(entry, score) for entry, score in found if keep(entry)]
    tag_counts = Counter(tag for entry, _s in chosen for tag in _tags_in(entry, language))
    if sort == "popular":
        uses = uses or {}
        chosen.sort(key=lambda pair: (-uses.get(pair[0].pk, 0), pair[0].position))
    elif sort == "new":
        chosen.sort(key=lambda pair: (-pair[0].created_at, pair[0].position))
    elif sort == "catalogue":
        chosen.sort(key=lambda pair: pair[0].position)
    return Listing(
        pks=[entry.pk for entry, _score in chosen],
        categories=sorted(categories.items()),
        kinds=kinds,
        tags=[(tag, n) for tag, n in tag_counts.most_common(TOP_TAGS) if tag not in wanted_tags],
    )


def _tags_in(entry: Entry, language: str) -> tuple[str, ...]:
    """The entry's tags in `language`; another language's where it has none."""
    return entry.tags.get(language) or next((tags for tags in entry.tags.values() if tags), ())


def search_templates(templates: TemplateQuerySet, query: str) -> TemplateQuerySet:
    """These templates matching `query` in any language, most relevant first."""
    index = search_index()
    pks = templates.values_list("pk", flat=True)
    allowed = [index.by_pk[pk] for pk in pks if pk in index.by_pk]
    ranked = [entry.pk for entry, _score in index.search(query, allowed)]
    if not ranked:
        return templates.none()
    position = Case(*[When(pk=pk, then=Value(n)) for n, pk in enumerate(ranked)])
    return templates.filter(pk__in=ranked).order_by(position)
