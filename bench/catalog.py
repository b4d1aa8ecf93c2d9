"""Server time of the catalogue's list and search pages with the full shipped
catalogue, and how well search finds what people expect.

    .venv/bin/python -m bench.catalog [--rounds 200] [--misses]   (or `make bench-catalog`)

Prints one JSON document: for each page, the time Django takes to answer it
(p50/p99, in the process, as the request handler sees it: no network, no
browser) and its database queries; for search alone, the time to build the
index (the first build in a process, then a rebuild) and to answer one query
(p50/p99 over the relevance set's queries); and recall@10 and MRR on the
relevance set (tests/templates_catalog/relevance.yaml), with `--misses` the
queries that missed an expected template. PostgreSQL when it is reachable (a
throwaway database `studio_bench_catalog`), SQLite otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.in_process import setup_django
from bench.streaming import percentiles

PAGES = {
    "list": ("/templates/", {}),
    "list_page_5": ("/templates/", {"page": "5"}),
    "category": ("/categories/business-email/", {}),
    "search_ja": ("/templates/", {"q": "謝罪メール"}),
    "search_ja_two_words": ("/templates/", {"q": "TikTok 台本"}),
    "search_en": ("/templates/", {"q": "press release"}),
    "search_with_facets": ("/templates/", {"q": "product photo", "kind": "image"}),
    "popular": ("/templates/", {"sort": "popular"}),
    "search_htmx_region": ("/templates/", {"q": "議事録", "_htmx": "1"}),
}


def setup(work: Path) -> str:
    database = setup_django(work, "studio_bench_catalog")
    from django.core.management import call_command

    call_command("load_demo", verbosity=0, stdout=io.StringIO())
    call_command("collectstatic", interactive=False, verbosity=0)
    return database


def measure_search(rounds: int, misses: bool) -> dict:
    """The index's build time, one search's time and the relevance scores."""
    from templates_catalog.search import SearchIndex, catalogue_listing
    from tests.support.relevance import catalogue_ranking, load_relevance_set, measure_relevance

    started = time.perf_counter()
    SearchIndex.build()
    first_build = time.perf_counter() - started
    rebuilds = []
    for _ in range(5):
        started = time.perf_counter()
        SearchIndex.build()
        rebuilds.append(time.perf_counter() - started)
    judgements = load_relevance_set()
    relevance = measure_relevance(catalogue_ranking(), judgements)
    timings = []
    for _ in range(max(1, rounds // 20)):
        for judgement in judgements:
            started = time.perf_counter()
            catalogue_listing(query=judgement.query)
            timings.append(time.perf_counter() - started)
    report = {
        "index_build_ms": {
            "first": round(first_build * 1000, 1),
            "rebuild_p50": percentiles(rebuilds)["p50"],
        },
        "query_ms": percentiles(timings),
        "relevance": relevance.summary(),
    }
    if misses:
        report["misses"] = [
            {"q": query, "missed": missed, "top": top} for query, missed, top in relevance.misses
        ]
    return report


def measure(rounds: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from templates_catalog.models import Template

    client = Client()
    report: dict = {"templates": Template.objects.published().count(), "pages": {}}
    for name, (path, params) in PAGES.items():
        headers = {}
        if params.pop("_htmx", None):
            headers = {"HX-Request": "true", "HX-Target": "listing"}
        for _ in range(10):  # warm: the search index, template loading
            assert client.get(path, params, headers=headers).status_code == 200
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            client.get(path, params, headers=headers)
            timings.append(time.perf_counter() - started)
        with CaptureQueriesContext(connection) as queries:
            client.get(path, params, headers=headers)
        report["pages"][name] = {"ms": percentiles(timings), "queries": len(queries)}
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument(
        "--misses", action="store_true", help="list the relevance set's queries that missed"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="studio-bench-catalog-") as work:
        database = setup(Path(work))
        report = {"database": database, "python": sys.version.split()[0]}
        report |= {"search": measure_search(args.rounds, args.misses)} | measure(args.rounds)
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
