"""Downloads of one's history as CSV, JSON or Markdown, streamed a chunk at a time.

The rows are read in keyset pages on the readers' database threads
(generation.database), and the response body is an async iterator: under ASGI it
streams without holding a cursor or a connection while the client downloads,
and at most one chunk of rows is in memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from generation.database import reader_db
from generation.models import Generation
from generation.reports.spreadsheets import UTF8_BOM, spreadsheet_safe
from studio.figures import characters, duration
from templates_catalog.forms import labelled_values
from templates_catalog.models import Template

EXPORT_CHUNK_SIZE = 200

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "template",
    "kind",
    "status",
    "inputs",
    "output",
    "output_characters",
    "input_tokens",
    "output_tokens",
    "image_count",
    "finish_reason",
)


def export_record(generation: Generation) -> dict[str, Any]:
    return {
        "id": str(generation.pk),
        "created_at": timezone.localtime(generation.created_at).isoformat(),
        "template": generation.template_title,
        "kind": generation.kind,
        "status": generation.status,
        "inputs": generation.inputs,
        "output": generation.output,
        "output_characters": len(generation.output),
        "input_tokens": generation.input_tokens,
        "output_tokens": generation.output_tokens,
        "image_count": generation.image_count,
        "finish_reason": generation.finish_reason,
    }


def _csv_rows(generations: list[Generation], first: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if first:
        writer.writerow(EXPORT_COLUMNS)
    for generation in generations:
        record = export_record(generation)
        record["inputs"] = json.dumps(record["inputs"], ensure_ascii=False)
        writer.writerow([spreadsheet_safe(value) for value in record.values()])
    return buffer.getvalue()


def _json_rows(generations: list[Generation], first: bool) -> str:
    items = [json.dumps(export_record(g), ensure_ascii=False, indent=2) for g in generations]
    if not items:
        return ""
    return ("\n" if first else ",\n") + ",\n".join(items)


def _indented(text: str) -> str:
    """Continuation lines of a list item stay inside it."""
    return text.replace("\r\n", "\n").replace("\n", "\n  ")


def _markdown_section(generation: Generation, language: str) -> str:
    values = generation.inputs if isinstance(generation.inputs, dict) else {}
    fields = list(generation.template.fields.all()) if generation.template else []
    if fields and set(values) <= {field.name for field in fields}:
        inputs = labelled_values(values, fields, language)
    else:
        inputs = [(name, str(value)) for name, value in values.items()]
    created = timezone.localtime(generation.created_at).strftime("%Y-%m-%d %H:%M")
    if generation.kind == Template.Kind.IMAGE:
        length = (_("Images"), str(generation.image_count))
    else:
        length = (_("Characters"), characters(len(generation.output)))
    facts = [
        (_("ID"), f"`{generation.pk}`"),
        (_("Status"), generation.get_status_display()),
        length,
        (_("Time taken"), duration(generation.duration)),
    ]
    lines = [f"## {generation.template_title} ({created})", ""]
    lines += [f"- {label}: {value}" for label, value in facts]
    lines += ["", "### " + _("Inputs"), ""]
    lines += [f"- **{label}**: {_indented(value) or '—'}" for label, value in inputs] or ["—"]
    answer = generation.output.strip() or "—"
    if generation.is_plain_text and generation.output.strip():
        answer = _fenced(answer)
    lines += ["", "### " + _("Answer"), "", answer, "", "---", ""]
    return "\n".join(lines)


def _fenced(text: str) -> str:
    """A plain-text answer (an email, a letter) as a code block, so that a
    Markdown viewer shows its lines as written and reads no `#` or `**` in it;
    the fence is longer than any run of backticks in the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _markdown_head() -> str:
    return "# " + _("AI Studio history") + "\n\n"


def _markdown_rows(generations: list[Generation], first: bool) -> str:
    language = translation.get_language()
    return "".join(_markdown_section(generation, language) + "\n" for generation in generations)


@dataclass(frozen=True)
class ExportFormat:
    extension: str
    content_type: str
    head: Callable[[], str]
    rows: Callable[[list[Generation], bool], str]
    tail: str = ""


EXPORT_FORMATS = {
    "csv": ExportFormat("csv", "text/csv; charset=utf-8", lambda: UTF8_BOM, _csv_rows),
    "json": ExportFormat(
        "json", "application/json; charset=utf-8", lambda: "[", _json_rows, "\n]\n"
    ),
    "md": ExportFormat("md", "text/markdown; charset=utf-8", _markdown_head, _markdown_rows),
}


def _export_chunk(
    generations: QuerySet[Generation],
    after: Generation | None,
    export_format: ExportFormat,
    language: str,
) -> tuple[str, Generation | None]:
    """The next chunk (newest first, after `after`) as text, and its last row."""
    if after is not None:
        generations = generations.filter(
            Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk)
        )
    chunk = list(generations[:EXPORT_CHUNK_SIZE])
    with translation.override(language):
        text = export_format.rows(chunk, after is None)
    last = chunk[-1] if len(chunk) == EXPORT_CHUNK_SIZE else None
    return text, last


async def _export_stream(
    generations: QuerySet[Generation], export_format: ExportFormat, head: str, language: str
) -> AsyncIterator[str]:
    # Keyset pages on the readers' database threads: no cursor or connection is
    # held while the client downloads, and at most one chunk is in memory.
    yield head
    text, after = await reader_db(_export_chunk)(generations, None, export_format, language)
    yield text
    while after is not None:
        text, after = await reader_db(_export_chunk)(generations, after, export_format, language)
        yield text
    yield export_format.tail


def export_response(
    *, generations: QuerySet[Generation], format_name: str
) -> StreamingHttpResponse:
    """A download of `generations` in the format named (a key of EXPORT_FORMATS)."""
    export_format = EXPORT_FORMATS[format_name]
    generations = generations.order_by("-created_at", "-pk").defer(
        "system_prompt", "prompt", "progress"
    )
    if format_name == "md":
        generations = generations.select_related("template").prefetch_related("template__fields")
    language = translation.get_language()
    stream = _export_stream(generations, export_format, export_format.head(), language)
    response = StreamingHttpResponse(stream, content_type=export_format.content_type)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"ai-studio-history-{stamp}.{export_format.extension}"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
