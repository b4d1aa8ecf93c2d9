"""Text hygiene: one rule for the text that enters the studio, applied once at
each boundary.

Python strings can hold what no UTF-8 byte stream can: lone surrogates
(U+D800–U+DFFF, which a JSON escape such as "\\ud800" decodes to). PostgreSQL,
Redis and the SSE framing all encode to UTF-8 and fail on them; PostgreSQL text
also refuses NUL. Control characters are invisible and never meant. So:

- a model's answer, delta by delta: lone surrogates become U+FFFD (a pair split
  across two deltas is joined first); NUL and other control characters* go;
- a person's form inputs: surrogates cannot arrive (bytes that are not UTF-8
  decode to U+FFFD); NUL is refused with the field's message; other control
  characters* are removed;
- JSON request bodies: a lone surrogate or a NUL anywhere (keys too) is refused
  with 400; other control characters are left to the form, as above;
- the request line and headers (path, query, header values): NUL and other
  control characters* are refused with 400;
- catalogue files (import) and staff-written prompts: surrogates, NUL and other
  control characters* are refused, naming the place.

*C0 controls other than TAB, LF and CR, and DEL.

The stored output, the deltas and the SSE stream are all built from the cleaned
text, so they agree byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls except TAB, LF, CR; and DEL. NUL among them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def has_unsafe_characters(text: str) -> bool:
    """NUL, another control character (not TAB, LF, CR) or a lone surrogate."""
    return _UNSAFE.search(text) is not None


_CONTROL_BUT_NUL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_controls_but_nul(text: str) -> str:
    """`text` without control characters other than TAB, LF, CR and NUL: for a
    person's input, where NUL is refused with a message instead."""
    return _CONTROL_BUT_NUL.sub("", text)


def clean_model_text(text: str) -> str:
    """A model's text made safe to store and send: lone surrogates become U+FFFD,
    control characters go."""
    if not text.isascii():
        text = _SURROGATE.sub(REPLACEMENT, text)
    return _CONTROL.sub("", text)


class ModelTextCleaner:
    """Cleans a model's answer delta by delta.

    A character outside the Basic Multilingual Plane may reach us as two JSON
    escapes ("\\ud83d", "\\ude00") split across two chunks; each decodes to a
    lone surrogate. A trailing high surrogate is therefore held back until the
    next delta shows whether its low half follows.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        if text.isascii():
            return _CONTROL.sub("", text)
        if "\ud800" <= text[-1] <= "\udbff":
            text, self._held = text[:-1], text[-1]
        # Almost every delta has no surrogate at all: one scan, then only controls.
        if _SURROGATE.search(text):
            text = _SURROGATE.sub(REPLACEMENT, _join_surrogate_pairs(text))
        return _CONTROL.sub("", text)

    def flush(self) -> str:
        """Whatever was held back, once the answer has ended."""
        held, self._held = self._held, ""
        return clean_model_text(held)


_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _join_surrogate_pairs(text: str) -> str:
    return _PAIR.sub(
        lambda match: match.group().encode("utf-16-le", "surrogatepass").decode("utf-16-le"),
        text,
    )


def text_problem(text: str, *, controls: bool = True) -> str | None:
    """What breaks the rule in `text`: "nul", "surrogate", "control" (only when
    `controls`), or None."""
    if "\x00" in text:
        return "nul"
    if has_lone_surrogate(text):
        return "surrogate"
    if controls and _CONTROL.search(text):
        return "control"
    return None


def find_unsafe_text(value: Any, *, controls: bool = True) -> tuple[str, str] | None:
    """The first string in a parsed JSON or YAML value (keys included) that breaks
    the rule, as (where, what): where like `templates[2].prompt_ja`, what as
    text_problem says. None if every string is clean."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if problem := text_problem(item, controls=controls):
                return where, problem
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                place = f"{where}.{key}" if where else str(key)
                stack.append((place, child))
                stack.append((place, key))
        elif isinstance(item, list):
            stack.extend((f"{where}[{n}]", child) for n, child in reversed(list(enumerate(item))))
    return None
