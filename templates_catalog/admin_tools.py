"""What the template admin's tools do, apart from the admin's declarations:
catalogue files in and out (upload form, import with a check-only mode, the
download), and the table of a template's versions."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django import forms
from django.db import DatabaseError, transaction
from django.db.models import Count
from django.http import HttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from templates_catalog.catalog_export import CATALOG_PREFETCH, catalog_documents, dump_catalog
from templates_catalog.catalog_files import FORMATS, CatalogError, parse_catalog
from templates_catalog.catalog_io import ImportReport, import_catalog_documents
from templates_catalog.models import Template
from templates_catalog.versions import version_changes

logger = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
CONTENT_TYPES = {
    "yaml": "application/yaml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}


class CatalogUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Catalogue file"),
        help_text=_("A .yaml, .yml or .json file in the catalogue format, at most 5 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(FORMATS)}),
    )
    check_only = forms.BooleanField(
        label=_("Check only"),
        required=False,
        help_text=_("Read and check the file and report what would change, without saving."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not any(upload.name.lower().endswith(suffix) for suffix in FORMATS):
            raise forms.ValidationError(_("Upload a .yaml, .yml or .json file."))
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 5 MB; split it into one file per category.")
            )
        return upload


@dataclass(frozen=True, slots=True)
class UploadResult:
    report: ImportReport | None
    error: str = ""
    checked_only: bool = False


def catalog_upload_import(*, form: CatalogUploadForm, user) -> UploadResult:
    """Import a validated upload in one transaction (rolled back when it is only
    checked). A bad file gives the importer's message and saves nothing."""
    upload = form.cleaned_data["file"]
    check_only = form.cleaned_data["check_only"]
    try:
        documents = parse_catalog(upload.read(), name=upload.name, allow_aliases=False)
        with transaction.atomic():
            report = import_catalog_documents(documents, user=user)
            if check_only:
                transaction.set_rollback(True)
    except CatalogError as exc:
        return UploadResult(None, str(exc), check_only)
    except DatabaseError as exc:
        # What the checks above let through and the database refused: rolled back.
        logger.warning("catalogue upload %s refused by the database: %s", upload.name, exc)
        message = gettext("%(file)s: the database refused it: %(error)s")
        return UploadResult(None, message % {"file": upload.name, "error": exc}, check_only)
    return UploadResult(report, "", check_only)


def catalog_download(templates, fmt: str) -> HttpResponse:
    """The templates as one catalogue file (a document per category) to download."""
    templates = templates.select_related("category").prefetch_related(*CATALOG_PREFETCH)
    content = dump_catalog(catalog_documents(templates), fmt)
    response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="catalogue-{stamp}.{fmt}"'
    return response


def version_table(template: Template) -> SafeString:
    """A template's versions, newest first: number, date, who, what changed, and
    how many generations ran with it. One query."""
    versions = list(
        template.versions.select_related("created_by")
        .annotate(generation_count=Count("generations"))
        .order_by("number")
    )
    if not versions:
        return format_html("<p>{}</p>", gettext("No version yet: one is recorded on save."))
    rows = []
    previous = None
    for version in versions:
        changes = "; ".join(version_changes(previous, version.snapshot))
        previous = version.snapshot
        current = gettext(" (current)") if version.pk == template.current_version_id else ""
        rows.append(
            (
                version.number,
                current,
                timezone.localtime(version.created_at).strftime("%Y-%m-%d %H:%M"),
                version.created_by or "—",
                changes,
                version.generation_count,
            )
        )
    head = format_html(
        "<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>",
        gettext("Version"),
        gettext("Recorded"),
        gettext("By"),
        gettext("What changed"),
        gettext("Generations"),
    )
    body = format_html_join(
        "",
        "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        reversed(rows),
    )
    return format_html('<table class="template-versions">{}<tbody>{}</tbody></table>', head, body)
