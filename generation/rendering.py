"""Model output to safe HTML: Markdown with raw HTML off, then sanitised by nh3.

Model output is untrusted. Raw HTML in it is escaped by the parser; whatever
HTML the Markdown produces is cleaned against an allow-list; links may only
be http(s) or mailto and never carry script. No images: an answer cannot make
the browser fetch anything.

`MarkdownStream` renders an answer while it is being written, with the same
parser and the same cleaning, so that what the page shows as it streams is
what it shows when the answer is finished. A plain-text answer (an email, a
letter: templates_catalog's answer format) is not parsed at all: `PlainStream`
only escapes it, and the page keeps its line breaks with CSS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.token import Token

# A line break in an answer is a line break: emails, signatures and Japanese text
# (which has no spaces to join lines with) keep their lines.
_markdown = MarkdownIt(
    "commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True}
)
_markdown.enable(["table", "strikethrough"])

_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}


def _clean(html: str) -> str:
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes={"a": {"href", "title"}, "ol": {"start"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def render_markdown(text: str) -> SafeString:
    return mark_safe(_clean(_markdown.render(text)))  # noqa: S308  (cleaned by nh3)


def parse_markdown(text: str) -> list[Token]:
    """An answer's Markdown as block tokens (for documents made from it)."""
    return _markdown.parse(text)


def render_plain(text: str) -> SafeString:
    """A plain-text answer as HTML: escaped, every line break a LF (as the
    parser reads CR LF), for an element that keeps white space (.plain-text)."""
    return escape(_LINE_BREAK.sub("\n", text))


def _render_tokens(tokens: list[Token], env: dict) -> str:
    return _clean(_markdown.renderer.render(tokens, _markdown.options, env)) if tokens else ""


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """What changed since the last update: `committed` is the HTML of blocks that
    can no longer change (shown after the ones before, never sent again); `tail`
    is the HTML of the unfinished end (it replaces the tail shown before)."""

    committed: str
    tail: str


# Appended to the tail when it is parsed, the sentinel marks where text typed next
# would go: a private-use character, plain text to the parser (a letter as far as
# emphasis is concerned) and kept as it is by nh3.
_SENTINEL = "\ue000"
# Characters that can change how the text before them is read (emphasis, code,
# links, entities, escapes, tables, headings, reference definitions), that the
# parser replaces (NUL) or that the HTML escapes: a delta with one of them is
# parsed, never appended. So are control characters, whatever they do.
_SPECIAL = frozenset(
    [chr(code) for code in range(32)] + ["\x7f", "\xa0", "\ufeff", _SENTINEL, *"!#&()*:;<>[\\]_`|~"]
)
# A tail longer than this is re-parsed only when it has grown by an eighth since
# it was last parsed (a huge table or code block), so that the work stays linear
# in the answer's length; the finished answer is always rendered in full.
_LARGE_TAIL = 4000
# The parser reads CR LF and a lone CR as LF: so do the line numbers here.
_LINE_BREAK = re.compile(r"\r\n?")


class MarkdownStream:
    """An answer's Markdown rendered while it grows, in linear time.

    The text is split into a committed part (top-level blocks that are final
    because the next block has surely started: their HTML is produced once) and
    the tail (the last blocks, parsed again as text arrives). A delta of plain
    text that continues a line whose kind is settled does not even need that:
    its text goes where the sentinel was found in the tail's last rendering.

    For any text fed in any chunks, the committed HTML so far plus the last tail
    equals `render_markdown(text)`, with one documented exception: a reference
    definition (`[label]: url`) applies to blocks committed before it arrived
    only when the whole answer is rendered again (the finished page does that).
    """

    def __init__(self) -> None:
        self._tail = ""  # the text after the committed part
        self._pending = ""  # fed since the last update
        self._references: dict = {}  # reference definitions in the committed part
        # The tail's HTML cut where the sentinel was (plain text continuing the
        # tail goes between the two halves), and whether the sentinel was outside
        # code (where trailing white space is dropped). None when it cannot.
        self._cut: tuple[str, str, bool] | None = None
        self._parsed_length = 0  # the tail's length when it was last parsed
        self._stale = False  # the tail shown lags behind (a large tail waiting)

    def feed(self, text: str) -> None:
        self._pending += text

    @property
    def tail_length(self) -> int:
        return len(self._tail) + len(self._pending)

    def needs_parse(self) -> bool:
        """Whether the next update parses the tail again (the costly kind)."""
        if self._pending:
            return not self._continues_plainly(self._pending)
        return self._stale

    def update(self, *, final: bool = False) -> StreamUpdate | None:
        """Render what was fed since the last update; None when nothing changed.
        `final` renders everything now, however large the tail."""
        delta, self._pending = self._pending, ""
        if not delta and not (final and self._stale):
            return None
        if delta and self._continues_plainly(delta):
            head, end, trimmed = self._cut
            self._tail += delta
            self._cut = (head + delta, end, trimmed)
            return StreamUpdate("", _joined(*self._cut))
        self._tail += delta
        if not final and self._waits(len(self._tail)):
            self._cut, self._stale = None, True
            return None
        return self._parse()

    def _continues_plainly(self, delta: str) -> bool:
        """Whether `delta` only extends the tail's last line of ordinary text, so
        that it renders as itself where the sentinel was."""
        if self._cut is None or self._stale or not _SPECIAL.isdisjoint(delta):
            return False
        # Spaces at the end are dropped as the parser drops them; other white
        # space there is left to the parser.
        if delta.rstrip(" ")[-1:].isspace():
            return False
        tail = self._tail
        if not _settled_line(tail):
            return False
        # After a delimiter or an escape, what follows decides what it is: only a
        # letter or digit behaves there as the sentinel did.
        return tail[-1] not in _SPECIAL or delta[0].isalnum()

    def _waits(self, length: int) -> bool:
        return length > _LARGE_TAIL and (length - self._parsed_length) * 8 < length

    def _parse(self) -> StreamUpdate:
        text = _LINE_BREAK.sub("\n", self._tail)
        # A CR at the end may be the first half of a CR LF still to come.
        self._tail = text[:-1] + "\r" if self._tail.endswith("\r") else text
        self._parsed_length, self._stale = len(text), False
        probe = _reads_on(text)
        env = {"references": dict(self._references)}
        tokens = _markdown.parse(text + _SENTINEL if probe else text, env)
        index, offset = _commit_point(tokens, text)
        committed = ""
        if index:
            if env["references"].keys() - self._references.keys():
                # A definition in the tail: the committed blocks must not see the
                # ones after them (one may still be half written). Parse apart.
                committed_env = {"references": dict(self._references)}
                committed = _render_tokens(
                    _markdown.parse(text[:offset], committed_env), committed_env
                )
                self._references = committed_env["references"]
                self._tail = self._tail[offset:]
                return StreamUpdate(committed, self._parse().tail)
            committed = _render_tokens(tokens[:index], env)
            tokens = tokens[index:]
            text, self._tail = text[offset:], self._tail[offset:]
            self._parsed_length = len(text)
        html = _render_tokens(tokens, env)
        self._cut = None
        if probe:
            at = html.find(_SENTINEL)
            head = html[:at]
            if at >= 0 and html.count(_SENTINEL) == 1 and head.rfind("<") <= head.rfind(">"):
                self._cut = (head, html[at + 1 :], not _in_code(tokens))
                return StreamUpdate(committed, _joined(*self._cut))
            # The sentinel landed where text does not show (a link's address):
            # render the tail as it is.
            env = {"references": dict(self._references)}
            html = _render_tokens(_markdown.parse(text, env), env)
        return StreamUpdate(committed, html)


def _settled_line(text: str) -> bool:
    """Whether the kind of the last line (heading, list item, quote, paragraph...)
    is settled: it is once a letter is on it (a digit or a dot after it can no
    longer make it a list item)."""
    return any(character.isalpha() for character in text[text.rfind("\n") + 1 :])


def _reads_on(text: str) -> bool:
    """Whether `text` reads the same with the sentinel after it, so that one
    parse gives both its HTML and where plain text typed next would go: it ends
    in a letter or digit, or in ordinary punctuation on a settled line, maybe
    with spaces after it (dropped at the end of a paragraph, kept inside)."""
    body = text.rstrip(" ")
    if not body or body[-1].isspace() or _SENTINEL in body:
        return False
    return body[-1].isalnum() or (body[-1] not in _SPECIAL and _settled_line(body))


def _in_code(tokens: list[Token]) -> bool:
    """Whether the sentinel, at the end, is in a code block (even in a list)."""
    last = next((token for token in reversed(tokens) if _SENTINEL in token.content), None)
    return last is not None and last.type in {"fence", "code_block"}


def _joined(head: str, end: str, trimmed: bool) -> str:
    """The tail's HTML from its two halves. The parser drops the white space at
    the end of a paragraph, a heading or a cell (not of code): so does this."""
    return (head.rstrip(" ") if trimmed else head) + end


def _commit_point(tokens: list[Token], text: str) -> tuple[int, int]:
    """Where the final blocks end: (index of the first token that is not final,
    offset in `text` where its block starts); (0, 0) when none is final yet.

    A top-level block is final once a later one has surely started: on a line
    that is complete, or that begins with a letter (a paragraph: nothing typed
    after it can make it part of the block before). A line with a `|` may be a
    table's header, which the next line decides, so that line must be there too.
    """
    starts = [
        (index, token.map[0])
        for index, token in enumerate(tokens)
        if token.level == 0 and token.nesting != -1 and token.map
    ]
    if len(starts) < 2:
        return 0, 0
    lines = text.split("\n")
    complete = len(lines) - 1  # lines[complete] is the line still being written
    for index, line_number in reversed(starts[1:]):
        line = lines[line_number]
        if "|" in line:
            settled = line_number + 1 < complete
        elif line_number < complete:
            settled = True
        else:
            begins = line.lstrip(" ")
            settled = bool(begins) and begins[0].isalpha()
        if settled:
            return index, sum(len(line) + 1 for line in lines[:line_number])
    return 0, 0


class PlainStream:
    """A plain-text answer while it grows: every delta is escaped and final at
    once (there is no tail to render again), with line breaks as the finished
    page has them. It offers MarkdownStream's interface to PageStream."""

    def __init__(self) -> None:
        self._pending = ""
        # Whether the text sent so far ends with a CR: a LF that follows is the
        # second half of a CR LF, one line break already shown.
        self._after_cr = False

    def feed(self, text: str) -> None:
        self._pending += text

    @property
    def tail_length(self) -> int:
        return 0

    def needs_parse(self) -> bool:
        return False

    def update(self, *, final: bool = False) -> StreamUpdate | None:
        """The escaped text fed since the last update; None when there is none.
        Nothing is ever held back, so `final` changes nothing."""
        text, self._pending = self._pending, ""
        if not text:
            return None
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        return StreamUpdate(render_plain(text), "") if text else None
