"""Import catalogue files (YAML or JSON, by extension; the format of
fixtures/catalog) into the database: templates are matched by slug and updated
in place, with their fields replaced, and a new version is recorded for each
template whose content changed. All files go in one transaction: a bad file
names the file and template and saves nothing.

    manage.py import_catalog fixtures/catalog/sales.yaml exported.json
    manage.py import_catalog --dry-run fixtures/catalog/*.yaml    # check, then roll back
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from templates_catalog.catalog_io import CatalogError, import_catalog_files


class Command(BaseCommand):
    help = "Import catalogue files (YAML or JSON), all or nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and report, then roll back."
        )

    def handle(self, *args, files: list[Path], dry_run: bool, **options) -> None:
        try:
            with transaction.atomic():
                report = import_catalog_files(files)
                if dry_run:
                    transaction.set_rollback(True)
        except CatalogError as exc:
            raise CommandError(f"{exc} (nothing was imported)") from exc
        if options["verbosity"] >= 2:
            for slug in report.created:
                self.stdout.write(f"created {slug}")
            for slug in report.updated:
                state = "changed" if slug in report.changed else "unchanged"
                self.stdout.write(f"updated {slug} ({state})")
            for slug in report.unchanged:
                self.stdout.write(f"unchanged {slug} (the same document as last time)")
        verb = "Checked" if dry_run else "Imported"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {report.templates} templates in {report.categories} categories: "
                f"{len(report.created)} created, {len(report.updated)} updated "
                f"({len(report.changed)} with a new version), {len(report.unchanged)} unchanged."
            )
        )
