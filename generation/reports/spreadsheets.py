"""CSV that spreadsheets open safely."""

from __future__ import annotations

from typing import Any

# Spreadsheet formulas start with these; a cell that does is prefixed with '.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Excel reads a CSV as UTF-8 (Japanese included) only after this mark.
UTF8_BOM = "\ufeff"


def spreadsheet_safe(value: Any) -> Any:
    """A cell value that a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
