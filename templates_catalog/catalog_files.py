"""Reading catalogue files: UTF-8 YAML or JSON, by extension, refused whole
and by name when they cannot be read or hold text that cannot be stored. What
the documents say is checked by their import (templates_catalog.catalog_io)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from studio.text import find_unsafe_text

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


class CatalogError(ValueError):
    """A catalogue file that cannot be imported; the message says where and why."""


def catalog_format(name: str) -> str:
    """The format ("yaml" or "json") that a file name's extension says."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise CatalogError(f"{name}: use a .yaml, .yml or .json file")
    return FORMATS[suffix]


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _NoAliasLoader(yaml.SafeLoader):
    """Refuses YAML aliases: a few lines of them can expand into billions of nodes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)


_UNSAFE_TEXT = {
    "nul": "contains a NUL character (\\0)",
    "surrogate": "contains text that is not valid Unicode (an unpaired surrogate)",
    "control": "contains a control character (only tab and line breaks are allowed)",
}


def parse_catalog(
    content: bytes, *, name: str, allow_aliases: bool = True
) -> list[tuple[str, Any]]:
    """The documents of a catalogue file (UTF-8 YAML or JSON, by extension), each
    with the name to report errors under. Pass `allow_aliases=False` for files
    from elsewhere (uploads)."""
    fmt = catalog_format(name)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{name}: not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise CatalogError(f"{name}: nested too deeply") from exc
        documents = data if isinstance(data, list) else [data]
    else:
        # libyaml's loader reads the shipped catalogue five times faster; uploads
        # take the Python one, which can refuse aliases as it composes.
        loader = _FAST_LOADER if allow_aliases else _NoAliasLoader
        try:
            documents = [doc for doc in yaml.load_all(text, Loader=loader) if doc is not None]
        except yaml.YAMLError as exc:
            raise CatalogError(f"{name}: not valid YAML: {exc}") from exc
        except RecursionError as exc:
            raise CatalogError(f"{name}: nested too deeply") from exc
    if not documents:
        raise CatalogError(f"{name}: no category in the file")
    if len(documents) == 1:
        named = [(name, documents[0])]
    else:
        named = [(f"{name} (document {n})", doc) for n, doc in enumerate(documents, start=1)]
    for source, document in named:
        if unsafe := find_unsafe_text(document):
            # The text rule (studio.text): what cannot be stored is refused, by name.
            where, problem = unsafe
            raise CatalogError(f"{source}: {where or 'the document'} {_UNSAFE_TEXT[problem]}")
    return named
