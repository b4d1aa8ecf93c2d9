"""Export catalogue templates as YAML or JSON, in the format of fixtures/catalog
(one category per document), so that staff edits made in admin can go back
into the catalogue files or move to another deployment with import_catalog.

    manage.py export_catalog --category sales                  # one category to stdout
    manage.py export_catalog --output fixtures/catalog         # a file per category
    manage.py export_catalog --format json --output all.json   # every category in one file
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from templates_catalog.catalog_export import CATALOG_PREFETCH, catalog_documents, dump_catalog
from templates_catalog.models import Category, Template


class Command(BaseCommand):
    help = "Export templates as catalogue files (YAML or JSON), one category per document."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml", dest="fmt")
        parser.add_argument(
            "--category",
            action="append",
            default=[],
            metavar="SLUG",
            help="Export this category (repeat for several); default: every category.",
        )
        parser.add_argument(
            "--output",
            type=Path,
            help="A directory (one <category>.<format> file each) or a file; default: stdout.",
        )

    def handle(self, *args, fmt: str, category: list[str], output: Path | None, **options) -> None:
        categories = Category.objects.all()
        if category:
            categories = categories.filter(slug__in=category)
            missing = sorted(set(category) - {c.slug for c in categories})
            if missing:
                raise CommandError(f"No such category: {', '.join(missing)}")
        categories = list(categories)
        templates = (
            Template.objects.filter(category__in=categories)
            .select_related("category")
            .prefetch_related(*CATALOG_PREFETCH)
        )
        documents = catalog_documents(templates, categories=categories)
        if not documents:
            raise CommandError("There is no category to export.")
        try:
            self._write(documents, fmt, output, verbose=options["verbosity"] >= 1)
        except OSError as exc:
            raise CommandError(f"Cannot write {exc.filename}: {exc.strerror}") from exc

    def _write(self, documents: list[dict], fmt: str, output: Path | None, verbose: bool) -> None:
        if output is not None and output.is_dir():
            for document in documents:
                path = output / f"{document['category']['slug']}.{fmt}"
                path.write_text(dump_catalog([document], fmt), encoding="utf-8")
                if verbose:
                    self.stderr.write(f"{path}: {len(document['templates'])} templates")
        elif output is not None:
            output.write_text(dump_catalog(documents, fmt), encoding="utf-8")
            if verbose:
                self.stderr.write(f"{output}: {len(documents)} categories")
        else:
            self.stdout.write(dump_catalog(documents, fmt), ending="")
