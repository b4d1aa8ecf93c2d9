"""Check the catalogue the way a person would meet it: render every template's
sample inputs through the real form and sandbox in every language, and report
placeholders without fields, fields never used, missing translations and
samples, and near-duplicates. Exits with status 1 on any problem (CI runs it).

    manage.py check_catalog                      # the templates in the database
    manage.py check_catalog --catalog-dir DIR    # catalogue files, loaded and rolled back
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from templates_catalog.catalog_check import check_templates
from templates_catalog.catalog_io import CatalogError, import_catalog_files
from templates_catalog.models import Template


class _RollBack(Exception):
    pass


class Command(BaseCommand):
    help = "Render every template's sample inputs and report catalogue problems."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--catalog-dir",
            type=Path,
            help="Check these catalogue YAML files (loaded in a transaction that is rolled back).",
        )
        parser.add_argument(
            "--include-drafts", action="store_true", help="Check draft templates too."
        )

    def handle(self, *args, catalog_dir: Path | None, include_drafts: bool, **options) -> None:
        try:
            with transaction.atomic():
                slugs = None
                if catalog_dir is not None:
                    paths = sorted(catalog_dir.glob("*.yaml"))
                    if not paths:
                        raise CommandError(f"No catalogue files in {catalog_dir}")
                    report = import_catalog_files(paths)
                    slugs = report.slugs
                templates = Template.objects.prefetch_related("fields").order_by("slug")
                if slugs is not None:
                    templates = templates.filter(slug__in=slugs)
                elif not include_drafts:
                    templates = templates.published()
                templates = list(templates)
                problems = check_templates(templates)
                raise _RollBack
        except _RollBack:
            pass
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        for problem in problems:
            self.stdout.write(str(problem))
        summary = f"{len(templates)} templates checked, {len(problems)} problem(s)."
        if problems:
            self.stderr.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
