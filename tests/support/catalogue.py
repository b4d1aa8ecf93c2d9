"""The shipped catalogue files as read from YAML, read once per test process
(with libyaml: the Python parser takes seconds for them)."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

CATALOG = Path(__file__).resolve().parents[2] / "fixtures" / "catalog"


@functools.cache
def shipped_templates() -> tuple[dict, ...]:
    """Every template in the shipped files, in file order. Shared: do not change them."""
    return tuple(
        template
        for path in sorted(CATALOG.glob("*.yaml"))
        for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for template in document.get("templates") or []
    )
