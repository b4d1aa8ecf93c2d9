"""Split catalogue files' `tags` (one list with words in both languages) into
`tags_ja` and `tags_en`, each complete in its language, with the table in
scripts/catalog_tag_translations.tsv (tag, its Japanese tag, its English tag).

The shipped catalogue was converted with it once; it stays for files exported
before tags were per language. Lines are rewritten in place, so comments and
layout stay as they were; each file is read back to check the result.

    .venv/bin/python scripts/split_catalog_tags.py fixtures/catalog/*.yaml
    .venv/bin/python scripts/split_catalog_tags.py --dry-run old-export.yaml

A tag missing from the table is reported (with its file) and nothing is
written: add it to the table, then run again.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

TABLE = Path(__file__).with_name("catalog_tag_translations.tsv")
TAGS_LINE = re.compile(r"^(?P<indent>\s*)tags: (?P<value>\[.*\])\s*$")
_PLAIN = re.compile(r"[^\s\"'#,\[\]{}&*!|>%@`:?-][^,\[\]{}#:]*")


def read_table(path: Path = TABLE) -> dict[str, tuple[str, str]]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        tag, japanese, english = line.split("\t")
        table[tag] = (japanese, english)
    return table


def flow_list(tags: list[str]) -> str:
    """Tags as a one-line YAML list, quoting only what must be quoted."""

    def scalar(tag: str) -> str:
        plain = _PLAIN.fullmatch(tag) and yaml.safe_load(f"[{tag}]") == [tag]
        return tag if plain else json.dumps(tag, ensure_ascii=False)

    return "[" + ", ".join(scalar(tag) for tag in tags) + "]"


def in_language(tags: list[str], table: dict[str, tuple[str, str]], index: int) -> list[str]:
    """The tags in one language (0: Japanese, 1: English), each once, in order."""
    seen, result = set(), []
    for tag in tags:
        word = table[tag][index]
        if word.casefold() not in seen:
            seen.add(word.casefold())
            result.append(word)
    return result


def split_file(path: Path, table: dict[str, tuple[str, str]]) -> tuple[str, list[str]]:
    """The file's new text, and the tags the table lacks."""
    lines = path.read_text(encoding="utf-8").split("\n")
    missing: list[str] = []
    for number, line in enumerate(lines):
        match = TAGS_LINE.match(line)
        if match is None:
            continue
        tags = [str(tag) for tag in yaml.safe_load(match["value"]) or []]
        missing += [tag for tag in tags if tag not in table]
        if any(tag not in table for tag in tags):
            continue
        indent = match["indent"]
        lines[number] = (
            f"{indent}tags_ja: {flow_list(in_language(tags, table, 0))}\n"
            f"{indent}tags_en: {flow_list(in_language(tags, table, 1))}"
        )
    return "\n".join(lines), missing


def check(text: str, name: str) -> None:
    """Every template has tags in both languages or in neither, and no `tags`."""
    for document in yaml.safe_load_all(text):
        for template in (document or {}).get("templates") or []:
            if "tags" in template:
                raise SystemExit(f"{name}: {template.get('slug')} still has `tags`")
            if bool(template.get("tags_ja")) != bool(template.get("tags_en")):
                raise SystemExit(f"{name}: {template.get('slug')} has tags in one language only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="Check; write nothing.")
    args = parser.parse_args()
    table = read_table()
    results, missing = {}, {}
    for path in args.files:
        text, lacking = split_file(path, table)
        if lacking:
            missing[path] = sorted(set(lacking))
        results[path] = text
    if missing:
        for path, tags in missing.items():
            print(f"{path}: not in {TABLE.name}: {', '.join(tags)}", file=sys.stderr)
        raise SystemExit(1)
    for path, text in results.items():
        check(text, str(path))
        if not args.dry_run:
            path.write_text(text, encoding="utf-8")
    print(f"{'Checked' if args.dry_run else 'Split the tags of'} {len(results)} file(s).")


if __name__ == "__main__":
    main()
