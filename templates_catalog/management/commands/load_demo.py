"""Load the demo: the catalogue from fixtures/catalog and a demo user.

Safe to run again: templates are updated in place and the demo user's
password is reset, so `make demo` can run it at every start.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from studio.demo import DEMO_PASSWORD, DEMO_USERNAME
from templates_catalog.catalog_io import CatalogError, import_catalog_files


class Command(BaseCommand):
    help = "Load the template catalogue and the demo user (idempotent)."
    # `make demo` runs it right after `migrate`, which has just run the checks;
    # a restart with nothing changed then takes about two seconds, not three.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--catalog-dir",
            type=Path,
            default=Path(settings.BASE_DIR) / "fixtures" / "catalog",
            help="Folder of catalogue YAML files.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check, then roll back.")

    def handle(self, *args, catalog_dir: Path, dry_run: bool, **options) -> None:
        paths = sorted(catalog_dir.glob("*.yaml"))
        if not paths:
            raise CommandError(f"No catalogue files in {catalog_dir}")
        try:
            with transaction.atomic():
                report = import_catalog_files(paths, progress=self._progress(options))
                self._demo_user()
                if dry_run:
                    transaction.set_rollback(True)
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Checked" if dry_run else "Loaded"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {report.templates} templates in {report.categories} categories "
                f"({len(report.created)} new, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged)."
            )
        )
        if not dry_run:
            self.stdout.write(
                f"Demo login: username “{DEMO_USERNAME}”, password “{DEMO_PASSWORD}” "
                "(staff: it can also open /admin/)."
            )

    def _progress(self, options):
        """What to show while files load: a bar on a terminal, a line a file
        otherwise (a log, CI), nothing at verbosity 0."""
        if options["verbosity"] == 0:
            return None
        terminal = self.stdout.isatty()

        def show(source: str, done: int, total: int) -> None:
            if terminal:
                filled = round(24 * done / total)
                bar = "#" * filled + "-" * (24 - filled)
                end = "\n" if done == total else ""
                self.stdout.write(f"\rLoading the catalogue [{bar}] {done}/{total}", ending=end)
                self.stdout.flush()
            else:
                self.stdout.write(f"Loaded {source} ({done}/{total})")

        return show

    def _demo_user(self) -> None:
        user, _created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
