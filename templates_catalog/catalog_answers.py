"""What a template's sample answer must respect, for the catalogue check
(templates_catalog.catalog_check):

- a plain-text template (emails, letters, messages) has no Markdown in its
  sample answer, and its prompt does not ask for Markdown;
- the answer has the headings that the prompt's output format states;
- the parts whose length the prompt limits are within their limits, and a
  count the answer states beside a part ("（28字）", "(27 chars)") is true.

The functions take texts rendered with the sample inputs (or, for what a
prompt asks, its source) and say what is wrong in a few words each.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Markdown in an answer ---------------------------------------------------------

_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+\S")


def markdown_in_text(text: str) -> list[str]:
    """The kinds of Markdown markup in `text`, each with the first line that has it."""
    found: dict[str, tuple[int, str]] = {}
    kinds = (
        ("bold (**)", lambda line: bool(_BOLD.search(line)) or "**" in line),
        ("a heading (#)", lambda line: bool(_HEADING.match(line))),
        ("a table", lambda line: bool(_TABLE_ROW.match(line) or _TABLE_RULE.match(line))),
        ("a bullet list (- )", lambda line: bool(_BULLET.match(line))),
    )
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, has in kinds:
            if kind not in found and has(line):
                found[kind] = (number, line.strip())
    return [
        f"{kind} on line {number}: “{_shorten(line)}”"
        for kind, (number, line) in sorted(found.items(), key=lambda item: item[1][0])
    ]


_MARKDOWN_WORD = re.compile(r"markdown|マークダウン", re.IGNORECASE)
_TABLE_WORD = re.compile(
    r"表形式|表で|表に(?:し|まと)|の表(?![示現記明書紙彰])|[（(]表[：:）)]|設計表|スケジュール表|一覧表"
    r"|\btables?\b",
    re.IGNORECASE,
)
# A line that names Markdown or a table only to rule it out.
_NEGATION = re.compile(
    r"使わ|使用しない|用いない|不要|禁止|なし|避け|ではなく"
    r"|\bno\b|\bnot\b|\bnever\b|\bwithout\b|\bavoid|don't|do not",
    re.IGNORECASE,
)


def markdown_requests(prompt: str) -> list[str]:
    """The lines of a prompt that ask for Markdown: ones that name it or ask for a
    table (and do not rule it out), a bold label the model would copy, a table
    to fill in."""
    requests = []
    for number, line in enumerate(prompt.splitlines(), start=1):
        shown = _shorten(line.strip())
        if _MARKDOWN_WORD.search(line) and not _NEGATION.search(line):
            requests.append(f"asks for Markdown on line {number}: “{shown}”")
        elif _TABLE_WORD.search(line) and not _NEGATION.search(line):
            requests.append(f"asks for a table on line {number}: “{shown}”")
        elif _BOLD.search(line):
            requests.append(f"shows bold (**) to copy on line {number}: “{shown}”")
        elif _TABLE_ROW.match(line):
            requests.append(f"shows a table to fill in on line {number}: “{shown}”")
    return requests


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Headings ------------------------------------------------------------------------

_OUTPUT_SECTION = re.compile(
    r"^(#{1,6})\s*(?:出力形式|出力の形式|出力フォーマット|Output format|Format of the answer)"
)
_ANY_HEADING = re.compile(r"^(#{1,6})\s+(.+)$")
_BRACKET_HEADING = re.compile(r"^【([^】]+)】$")
_MARKER = re.compile(r"^(?:#{1,6}|[-*+・■□●◆◇▼▶►]|\d+[.．)）]|[０-９]+[．）]|[①-⑳])\s*")
_PARENTHESES = re.compile(r"[（(][^（）()]*[）)]")


def _key(text: str) -> str:
    """A heading or label as it is compared: without Markdown, list markers,
    brackets and notes in parentheses, case and spacing."""
    text = text.replace("**", "").replace("__", "").strip()
    while (stripped := _MARKER.sub("", text, count=1)) != text:
        text = stripped.strip()
    text = _PARENTHESES.sub("", _PARENTHESES.sub("", text))
    text = text.replace("【", "").replace("】", "").replace("［", "").replace("］", "")
    return " ".join(text.split()).strip(" ：:。.、,").casefold()


# A heading written as a pattern for several ("### ペルソナN：…", "### 案1〜3",
# "### ［案の名前］", "### Q. (question)"): what each one says is not known.
_PATTERN = re.compile(
    r"［[^］]*］|\[[^\]]*\]|〇〇|○○|(?<![A-Za-z])N(?![A-Za-z])|\d\s*(?:〜|~|–|-|to)\s*\d"
    r"|[「\"“][（(]|（例|\(e\.g\.|^Q\.|質問文"
)


def stated_headings(prompt: str) -> list[str]:
    """The headings a prompt's output-format section lays out: its sub-headings
    (`### 見出し`, deeper than the section's own) and lines that are a
    【見出し】 alone; a heading written as a pattern is left out, and of
    「見出し：説明」 only the part before the colon counts."""
    headings: list[str] = []
    section_level = 0
    for line in prompt.splitlines():
        line = line.strip()
        if match := _OUTPUT_SECTION.match(line):
            section_level = len(match[1])
            continue
        if not section_level:
            continue
        heading = _ANY_HEADING.match(line)
        if heading and len(heading[1]) <= section_level:
            section_level = 0
        elif heading:
            headings.append(heading[2])
        elif bracket := _BRACKET_HEADING.match(line):
            headings.append(bracket[1])
    named = [_before_colon(heading) for heading in headings]
    return [heading for heading in named if _key(heading) and not _PATTERN.search(heading)]


def _before_colon(heading: str) -> str:
    """「見出し：説明」 without its description: up to the first colon outside
    parentheses (「収支計画表（単位：万円）」 is one name)."""
    depth = 0
    for index, character in enumerate(heading):
        if character in "（(":
            depth += 1
        elif character in "）)":
            depth = max(0, depth - 1)
        elif depth == 0 and (character == "：" or heading[index : index + 2] == ": "):
            return heading[:index].strip()
    return heading.strip()


def missing_headings(prompt: str, answer: str) -> list[str]:
    """The headings stated in `prompt` that no line of `answer` has."""
    lines = [_key(line) for line in answer.splitlines()]
    return [
        heading
        for heading in stated_headings(prompt)
        if not any(_key(heading) in line for line in lines)
    ]


# Lengths -------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """At most `count` characters for the part called `label`; `half_width`
    counts a full-width character as two (ad platforms' 半角 counting)."""

    label: str
    count: int
    half_width: bool = False

    def length(self, text: str) -> int:
        if not self.half_width:
            return len(text)
        return sum(2 if unicodedata.east_asian_width(c) in "FW" else 1 for c in text)

    def __str__(self) -> str:
        unit = "half-width characters" if self.half_width else "characters"
        return f"{self.label} ({self.count} {unit})"


# A hard limit only: 「以内」, "max", "up to"; one said to be a rough guide
# (目安, 程度, about) is left out.
_JA_NOTE_LIMIT = re.compile(
    r"([^\s、。：:（）()「」*#]{1,20})\s*[（(]([^（）()]*?)(全角|半角)?(\d+)(?:文字|字)以内([^（）()]*)[）)]"
)
_JA_RULE_LIMIT = re.compile(
    r"(?:^|(?<=[\s、。：:「」*#-]))([^\s、。：:（）()「」*#-]{1,20}?)は(全角|半角)?(\d+)"
    r"(?:文字|字)(?:[（(][^（）()]*[）)])?以内(?!を目安|を推奨|程度)"
)
_EN_LIMIT = re.compile(
    r"(?:^|(?<=[\s,;:(-]))([A-Za-z][A-Za-z /-]{0,40}?)\s*(?::|\(|,)?\s*"
    r"(?:(?:up to|at most|no more than|max(?:imum)?(?: of)?)\s+(\d+)\s+characters?"
    r"|(\d+)\s+characters?\s+(?:max(?:imum)?|or fewer|or less|at most))",
    re.IGNORECASE,
)
_ROUGH = re.compile(r"目安|程度|約|about|around|roughly|aim for", re.IGNORECASE)


# 「3案」「3つ」「各」: how many, not what.
_COUNT_WORD = re.compile(r"各?\d*(?:案|つ|本|個|件|種類?)?|各案")
_NAMED_BEFORE = re.compile(r"([^\s、。：:（）()「」*#]{1,20})\**\s*[：:]\s*$")
# Words around a part's name in a sentence: 「と説明」, "suggest a coupon name of".
_LEADING_WORDS = re.compile(
    r"^(?:と|各|each|the|and|with|a|an|its|keep|every|suggest|write|two|three|four)\s*",
    re.IGNORECASE,
)
_TRAILING_WORDS = re.compile(r"\s+(?:of|each|are|is|stay|stays|should be)$", re.IGNORECASE)


def stated_limits(prompt: str) -> list[Limit]:
    """The hard length limits a prompt gives a named part: 「見出し（全角15字以内）」,
    「タイトル案：3つ（各40文字以内）」, 「タイトルは20文字以内」, "Headlines: 30
    characters max", "callouts of up to 25 characters"."""
    limits: dict[str, Limit] = {}
    for line in prompt.splitlines():
        for match in _JA_NOTE_LIMIT.finditer(line):
            label, inside, width, count = match[1], match[2] + match[5], match[3], match[4]
            if _COUNT_WORD.fullmatch(label):
                # 「件名案：3案（各30字以内）」: the part is named before the colon.
                named = _NAMED_BEFORE.search(line[: match.start(1)])
                label = named[1] if named else ""
            if not _ROUGH.search(inside):
                _add(limits, label, int(count), half_width=width == "半角")
        for match in _JA_RULE_LIMIT.finditer(line):
            _add(limits, match[1], int(match[3]), half_width=match[2] == "半角")
        for match in _EN_LIMIT.finditer(line):
            before = line[max(0, match.start() - 12) : match.end()]
            if not _ROUGH.search(before):
                _add(limits, match[1], int(match[2] or match[3]), half_width=False)
    return list(limits.values())


def _add(limits: dict[str, Limit], label: str, count: int, *, half_width: bool) -> None:
    label = label.strip(" -*#")
    while (shorter := _TRAILING_WORDS.sub("", _LEADING_WORDS.sub("", label))) != label:
        label = shorter.strip()
    if len(key := _key(label)) >= 2:
        limits.setdefault(key, Limit(label, count, half_width))


def _names(label: str, name: str) -> bool:
    """Whether a heading or label `name` in an answer names the part `label`:
    the same words (a trailing 案 or plural s aside), or a longer Japanese name
    ending with it (プロジェクトタイトル for タイトル)."""
    label, name = _key(label), _key(name)
    if not label or not name:
        return False
    trimmed = [re.sub(r"(?:案|s)$", "", word) for word in (label, name)]
    if label == name or trimmed[0] == trimmed[1]:
        return True
    return not label.isascii() and name.endswith(label)


# A count at the end of a line, before any 【angle】 or [angle] (the copy's appeal) after it.
_END_COUNT = re.compile(
    r"\s*[（(]\s*(半角換算|全角換算|全角|半角)?\s*(?:約|about\s+)?(\d+)\s*"
    r"(?:文字|字|chars?|characters)\s*[）)]$"
)
_ANGLES = re.compile(r"(?:\s*(?:【[^】]*】|\[[^\]]*\]))+$")
_TRAILING_NOTES = re.compile(
    r"(?:\s*(?:【[^】]*】|\[[^\]]*\]|[（(][^（）()]*\d+[^（）()]*[）)]))+\s*$"
)
# 「タイトル：…」「件名（案1）：…」: a short name (its parentheses closed) and a colon.
_LABEL = re.compile(r"^((?:[^：:「」、。,（(]|[（(][^）)：:]*[）)]){1,20}?)\s*[：:]\s*(.*)$")
_OPTION = re.compile(
    r"^(?:[A-Za-z0-9]{1,2}案|(?:案|パターン|option|pattern|version|variant)\s*\w{0,3})\s*[：:]\s*",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+・]|\d+[.．)）]|[①-⑳])\s*")


def _item(line: str) -> str:
    """A listed part of an answer without its marker, option label and the
    notes after it (its count, its angle in 【】)."""
    text = _LIST_ITEM.sub("", line.strip(), count=1).replace("**", "")
    text = _OPTION.sub("", text)
    return _TRAILING_NOTES.sub("", text).strip()


def _is_heading(line: str) -> bool:
    line = line.strip()
    return bool(
        _ANY_HEADING.match(line)
        or _BRACKET_HEADING.match(line)
        or (line.startswith("**") and line.endswith("**") and line.count("**") == 2)
    )


def _parts(answer: str, limit: Limit) -> list[str]:
    """The parts of `answer` called `limit.label`: the items under a heading of
    that name (or its text, when it has no list), the values of lines labelled
    with it (「タイトル：…」) and the cells of a table column headed with it."""
    lines = answer.splitlines()
    parts: list[str] = []
    columns: list[int] = []
    for index, line in enumerate(lines):
        if _TABLE_ROW.match(line):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if _TABLE_RULE.match(line):
                continue
            if index == 0 or not _TABLE_ROW.match(lines[index - 1]):
                columns = [n for n, cell in enumerate(cells) if _names(limit.label, cell)]
            else:
                parts += [_item(cells[n]) for n in columns if n < len(cells)]
            continue
        if _is_heading(line):
            if _names(limit.label, line):
                parts += _block(lines[index + 1 :])
            continue
        labelled = _LABEL.match(_LIST_ITEM.sub("", line.strip(), count=1).replace("**", ""))
        if labelled and _names(limit.label, labelled[1]) and labelled[2].strip():
            parts.append(_TRAILING_NOTES.sub("", labelled[2]).strip())
    return [part for part in parts if part]


def _block(lines: list[str]) -> list[str]:
    """The parts under a heading: each listed item, or the text when it has no list."""
    block = []
    for line in lines:
        if _is_heading(line):
            break
        if line.strip():
            block.append(line)
    if any(_TABLE_ROW.match(item) for item in block):
        return []  # a table: its columns are read by their headers
    if listed := [item for item in block if _LIST_ITEM.match(item)]:
        return [_item(item) for item in listed]
    return ["".join(_TRAILING_NOTES.sub("", item).strip() for item in block)] if block else []


def limit_problems(prompt: str, answer: str) -> list[str]:
    """The parts of `answer` longer than the limit `prompt` gives them."""
    problems = []
    for limit in stated_limits(prompt):
        for part in _parts(answer, limit):
            if (length := limit.length(part)) > limit.count:
                problems.append(f"“{_shorten(part)}” is {length}, over the limit for {limit}")
    return problems


def wrong_counts(answer: str) -> list[str]:
    """Counts an answer states at the end of a listed or labelled part
    (「…（28字）」, "… (27 chars)", 「（半角換算30文字）」) that are not the part's
    length. Counts of a block below a heading, and rough ones (約, about), are left out."""
    problems = []
    for line in answer.splitlines():
        if _TABLE_ROW.match(line) or _is_heading(line):
            continue
        body = _ANGLES.sub("", line.rstrip())
        note = _END_COUNT.search(body)
        if note is None or _ROUGH.search(note[0]):
            continue
        whole = _OPTION.sub("", _LIST_ITEM.sub("", body[: note.start()].strip(), count=1))
        whole = whole.replace("**", "").strip()
        # 「タイトル：…（15文字）」 counts the value; "First visit: … (50 characters)"
        # may count the label too. Either is right.
        labelled = _LABEL.match(whole)
        texts = [whole, labelled[2].strip()] if labelled else [whole]
        if not texts[-1] or whole.startswith(("※", "*")):
            continue
        counting = Limit("", 0, half_width=note[1] == "半角換算")
        lengths = [counting.length(text) for text in texts]
        if int(note[2]) not in lengths:
            problems.append(
                f"“{_shorten(texts[-1])}” says {note[2]} characters but has {lengths[-1]}"
            )
    return problems
