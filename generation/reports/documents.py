"""One answer taken elsewhere: a Word document (its headings, lists, tables,
bold and italics from the Markdown), the Markdown itself, or plain text
without the markup. A plain-text answer (emails, letters) is its lines in
every format."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from docx import Document
from docx.enum.text import WD_BREAK
from docx.oxml.ns import qn
from docx.shared import Pt
from markdown_it.token import Token

from generation.models import Generation
from generation.rendering import parse_markdown
from templates_catalog.models import Template

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCUMENT_FORMATS = {
    "docx": DOCX,
    "md": "text/markdown; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}
# Word's XML cannot hold control characters (but tab and line breaks) or lone surrogates.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_FONT_JA = "Yu Gothic"
_FONT_CODE = "Consolas"
_BULLET = {"ja": "・", "en": "• "}


@dataclass(frozen=True)
class AnswerDocument:
    content: bytes
    content_type: str
    filename: str


def download_refusal(generation: Generation) -> str | None:
    """Why `generation`'s answer cannot be downloaded as a document, if it cannot."""
    if generation.kind != Template.Kind.TEXT:
        return _("Images are downloaded from the gallery, one at a time.")
    if not generation.is_finished:
        return _("The answer is still being written: download it once it is done.")
    if not generation.output:
        return _("This generation has no text to download.")
    return None


def attachment_headers(document: AnswerDocument) -> dict[str, str]:
    return {
        "Content-Type": document.content_type,
        "Content-Disposition": content_disposition_header(True, document.filename),
    }


def answer_document(generation: Generation, format_name: str) -> AnswerDocument:
    """`generation`'s answer as a file in `format_name` (a key of DOCUMENT_FORMATS)."""
    text = generation.output
    if format_name == "docx":
        content = _docx(text, plain=generation.is_plain_text, title=generation.template_title)
    elif format_name == "txt" and not generation.is_plain_text:
        content = markdown_as_text(text, language=generation.language).encode()
    else:
        content = text.encode()
    day = timezone.localtime(generation.created_at).date().isoformat()
    name = re.sub(r'[\\/:*?"<>|\s]+', "_", generation.template_title).strip("_") or "answer"
    return AnswerDocument(content, DOCUMENT_FORMATS[format_name], f"{name}_{day}.{format_name}")


# --- Plain text ------------------------------------------------------------------


def markdown_as_text(text: str, *, language: str = "ja") -> str:
    """The Markdown answer as text to paste anywhere: headings and paragraphs as
    lines, list items after a bullet or their number, table cells between tabs."""
    lines: list[str] = []
    for token in (walker := _Blocks(parse_markdown(text))):
        if token.type in ("bullet_list_close", "ordered_list_close") and not walker.lists:
            lines.append("")
        elif token.type == "inline" and not walker.in_table:
            prefix = ""
            if walker.lists and walker.first_in_item:
                item = walker.lists[-1]
                prefix = f"{item.number}. " if item.ordered else _BULLET.get(language, "• ")
                prefix = "  " * (len(walker.lists) - 1) + prefix
            lines.append(prefix + _inline_text(token))
            if not walker.lists:
                lines.append("")
        elif token.type in ("fence", "code_block"):
            lines.extend([*token.content.rstrip("\n").split("\n"), ""])
        elif token.type == "table_close":
            lines.extend(["\t".join(row) for row in walker.table] + [""])
        elif token.type == "hr":
            lines.extend(["――――", ""])
    return "\n".join(lines).strip("\n") + "\n"


def _inline_text(token: Token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type in ("text", "code_inline", "image"):
            parts.append(child.content)
    return "".join(parts)


@dataclass
class _List:
    ordered: bool
    number: int  # the current item's, in an ordered list


class _Blocks:
    """The block tokens in order, keeping what the writers of both formats need
    to know at each: the lists open (and the current item's number), whether an
    inline is the first of a list item, how deep in quotes, and a table's cells
    as rows (complete at `table_close`)."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.lists: list[_List] = []
        self.first_in_item = False
        self.quoted = 0
        self.in_table = False
        self.table: list[list[str]] = []

    def __iter__(self):
        for token in self.tokens:
            kind = token.type
            if kind in ("bullet_list_open", "ordered_list_open"):
                start = int(token.attrGet("start") or 1)
                self.lists.append(_List(kind == "ordered_list_open", start - 1))
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.lists.pop()
            elif kind == "list_item_open":
                self.first_in_item = True
                self.lists[-1].number += 1
            elif kind in ("blockquote_open", "blockquote_close"):
                self.quoted += 1 if kind == "blockquote_open" else -1
            elif kind == "table_open":
                self.in_table, self.table = True, []
            elif kind == "tr_open":
                self.table.append([])
            elif kind == "table_close":
                self.in_table = False
            elif kind == "inline" and self.in_table:
                self.table[-1].append(_inline_text(token))
            yield token
            if kind == "inline":
                self.first_in_item = False


# --- Word ---------------------------------------------------------------------------


@dataclass
class _Inline:
    bold: bool = False
    italic: bool = False
    strike: bool = False
    link: list[str] = field(default_factory=list)


def _docx(text: str, *, plain: bool, title: str) -> bytes:
    document = Document()
    document.core_properties.title = _xml_safe(title)
    for style in ("Normal", "Title", *(f"Heading {n}" for n in range(1, 7))):
        fonts = document.styles[style].element.get_or_add_rPr().get_or_add_rFonts()
        fonts.set(qn("w:eastAsia"), _FONT_JA)
    text = _xml_safe(text)
    if plain:
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            document.add_paragraph(line)
    else:
        _markdown_into(document, text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _xml_safe(text: str) -> str:
    return _NOT_IN_XML.sub("", text)


def _markdown_into(document, text: str) -> None:
    heading = None
    for token in (walker := _Blocks(parse_markdown(text))):
        kind = token.type
        if kind == "heading_open":
            heading = document.add_heading(level=min(int(token.tag[1]), 6))
        elif kind == "inline" and not walker.in_table:
            if heading is not None:
                paragraph, heading = heading, None
            elif walker.lists:
                depth = min(len(walker.lists), 3)
                style = "List Number" if walker.lists[-1].ordered else "List Bullet"
                style += f" {depth}" if depth > 1 else ""
                paragraph = document.add_paragraph(
                    style=style if walker.first_in_item else "List Continue"
                )
            else:
                paragraph = document.add_paragraph(style="Quote" if walker.quoted else None)
            _runs_into(paragraph, token)
        elif kind in ("fence", "code_block"):
            run = document.add_paragraph().add_run(token.content.rstrip("\n"))
            run.font.name = _FONT_CODE
            run.font.size = Pt(9.5)
        elif kind == "table_close":
            _table_into(document, walker.table)
        elif kind == "hr":
            document.add_paragraph("――――")


def _runs_into(paragraph, token: Token) -> None:
    state = _Inline()
    for child in token.children or []:
        kind = child.type
        if kind in ("strong_open", "strong_close"):
            state.bold = kind == "strong_open"
        elif kind in ("em_open", "em_close"):
            state.italic = kind == "em_open"
        elif kind in ("s_open", "s_close"):
            state.strike = kind == "s_open"
        elif kind == "link_open":
            state.link.append(str(child.attrGet("href") or ""))
        elif kind == "link_close":
            href = state.link.pop() if state.link else ""
            if href and not paragraph.text.endswith(href):
                paragraph.add_run(f" ({href})")
        elif kind in ("softbreak", "hardbreak"):
            paragraph.add_run().add_break(WD_BREAK.LINE)
        elif kind in ("text", "code_inline", "image"):
            run = paragraph.add_run(child.content)
            run.bold, run.italic = state.bold or None, state.italic or None
            if state.strike:
                run.font.strike = True
            if kind == "code_inline":
                run.font.name = _FONT_CODE


def _table_into(document, rows: list[list[str]]) -> None:
    if not rows:
        return
    columns = max(len(row) for row in rows)
    table = document.add_table(rows=len(rows), cols=columns)
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            cell = table.cell(r, c)
            cell.text = value
            if r == 0:
                for run in cell.paragraphs[0].runs:
                    run.bold = True
