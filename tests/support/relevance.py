"""How well search finds what people expect: the relevance set
(tests/templates_catalog/relevance.yaml) scored as recall@10 and MRR.

recall@10 is, per query, the share of the expected templates among the first
ten results; MRR is the mean of 1/rank of the first expected template (0 when
none is found at all). Both are averaged over the queries. The test holds
floors on them and `make bench-catalog` prints them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from templates_catalog.models import Template
from templates_catalog.search import catalogue_listing

RELEVANCE_SET = Path(__file__).resolve().parents[1] / "templates_catalog" / "relevance.yaml"
TOP = 10


@dataclass(frozen=True)
class Judgement:
    query: str
    expected: tuple[str, ...]


@dataclass
class Relevance:
    queries: int
    recall_at_10: float
    mrr: float
    # Queries that missed an expected template in their first ten: (query, missed, top five).
    misses: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "queries": self.queries,
            "recall_at_10": round(self.recall_at_10, 3),
            "mrr": round(self.mrr, 3),
        }


def load_relevance_set(path: Path = RELEVANCE_SET) -> list[Judgement]:
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Judgement(str(row["q"]), tuple(row["expect"])) for row in rows]


def measure_relevance(
    ranking: Callable[[str], list[str]], judgements: list[Judgement]
) -> Relevance:
    """Scores `ranking` (a query → the slugs found, best first) on `judgements`."""
    recall = reciprocal = 0.0
    misses = []
    for judgement in judgements:
        found = ranking(judgement.query)
        top = found[:TOP]
        hits = [slug for slug in judgement.expected if slug in top]
        recall += len(hits) / len(judgement.expected)
        ranks = [found.index(slug) + 1 for slug in judgement.expected if slug in found]
        reciprocal += 1 / min(ranks) if ranks else 0.0
        if len(hits) < len(judgement.expected):
            missed = [slug for slug in judgement.expected if slug not in top]
            misses.append((judgement.query, missed, top[:5]))
    count = len(judgements)
    return Relevance(count, recall / count, reciprocal / count, misses)


def catalogue_ranking() -> Callable[[str], list[str]]:
    """What the catalogue page lists for a query, best match first, as slugs."""
    slugs = dict(Template.objects.values_list("pk", "slug"))

    def ranking(query: str) -> list[str]:
        return [slugs[pk] for pk in catalogue_listing(query=query).pks]

    return ranking
