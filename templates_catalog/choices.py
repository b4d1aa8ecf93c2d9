"""The `value|label` line format that choice fields are edited in."""

from __future__ import annotations

from django.utils.translation import gettext as _


class ChoiceParseError(ValueError):
    pass


def parse_choices(source: str) -> list[tuple[str, str]]:
    """Parse one choice per line, `value|label` (a bare line is its own label)."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, raw in enumerate(source.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        value, _sep, label = line.partition("|")
        value, label = value.strip(), label.strip() or value.strip()
        if not value:
            raise ChoiceParseError(_("Line %(line)d has no value before “|”.") % {"line": number})
        if value in seen:
            raise ChoiceParseError(_("The value “%(value)s” appears twice.") % {"value": value})
        seen.add(value)
        pairs.append((value, label))
    return pairs


def format_choices(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"{value}|{label}" for value, label in pairs)
