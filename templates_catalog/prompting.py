"""Render staff-written prompt bodies in a sandbox.

Prompt bodies are Jinja templates rendered by an immutable sandbox with no
globals, no loader and no extensions: the only names that exist are the
template's own fields, bound to validated values. Attribute walking
(`x.__class__`), `{% include %}`, `{% import %}`, unknown tags (`{% load %}`,
`{% debug %}`) and unknown names (`settings`, `request`) are refused when a
template is saved and again when it is rendered. Python's `str.format` is never
used, so `{0.__class__}` is plain text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from django.utils.translation import gettext as _
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Filters that only shape text; everything else Jinja ships is left out.
_ALLOWED_FILTERS = (
    "capitalize",
    "default",
    "first",
    "join",
    "last",
    "length",
    "lower",
    "replace",
    "title",
    "trim",
    "truncate",
    "upper",
    "wordcount",
)
# Names Jinja gives a meaning of its own; no field may be called this.
_RESERVED_NAMES = frozenset({"self", "super", "caller", "varargs", "kwargs"})
_LOOP_ATTRIBUTES = frozenset({"index", "index0", "first", "last", "length", "revindex"})
# Rendering is capped so that a runaway loop in a template cannot eat memory.
MAX_PROMPT_CHARS = 100_000


class PromptSyntaxError(ValueError):
    """The prompt body cannot be used as a template."""


class PromptRenderError(ValueError):
    """The prompt body could not be rendered with these values."""


class _PromptEnvironment(ImmutableSandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Field values are plain strings, numbers, booleans and lists; a prompt
        # has no business reaching any attribute of them. Only a for loop's
        # counters (`loop.index`) are readable.
        return isinstance(obj, LoopContext) and attr in _LOOP_ATTRIBUTES


def _make_environment() -> _PromptEnvironment:
    env = _PromptEnvironment(
        autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True
    )
    env.globals.clear()
    env.tests = {
        name: env.tests[name] for name in ("defined", "undefined", "none", "number", "string")
    }
    env.filters = {name: env.filters[name] for name in _ALLOWED_FILTERS}
    return env


_env = _make_environment()
_FORBIDDEN_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Extends,
    nodes.Block,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Getitem,
    nodes.Call,
)


def _is_loop_counter(node: nodes.Getattr) -> bool:
    return (
        isinstance(node.node, nodes.Name)
        and node.node.name == "loop"
        and node.attr in _LOOP_ATTRIBUTES
    )


def parse_prompt(source: str) -> nodes.Template:
    """Parse a prompt body, refusing anything beyond names, ifs, loops and text filters."""
    try:
        ast = _env.parse(source)
    except TemplateSyntaxError as exc:
        raise PromptSyntaxError(
            _("Line %(line)s: %(message)s") % {"line": exc.lineno, "message": exc.message}
        ) from exc
    for node in ast.find_all(_FORBIDDEN_NODES):
        raise PromptSyntaxError(
            _("Line %(line)s: only field names, if and for are allowed here.")
            % {"line": node.lineno}
        )
    for node in ast.find_all(nodes.Name):
        if node.name in _RESERVED_NAMES:
            raise PromptSyntaxError(
                _("Line %(line)s: “%(name)s” is not a field.")
                % {"line": node.lineno, "name": node.name}
            )
    for node in ast.find_all(nodes.Getattr):
        if not _is_loop_counter(node):
            raise PromptSyntaxError(
                _("Line %(line)s: only field names, if and for are allowed here.")
                % {"line": node.lineno}
            )
    for node in ast.find_all(nodes.Filter):
        if node.name not in _env.filters:
            raise PromptSyntaxError(
                _("Line %(line)s: the filter “%(name)s” is not available.")
                % {"line": node.lineno, "name": node.name}
            )
    return ast


def referenced_names(source: str) -> set[str]:
    """The field names a prompt body uses (loop variables excluded)."""
    return set(meta.find_undeclared_variables(parse_prompt(source)))


def unknown_names(source: str, field_names: Iterable[str]) -> list[str]:
    return sorted(referenced_names(source) - set(field_names))


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> jinja2.Template:
    """A checked and compiled prompt body; compiling costs more than rendering,
    and the same few hundred bodies are rendered again and again."""
    parse_prompt(source)
    return _env.from_string(source)


def render_prompt(source: str, values: Mapping[str, Any]) -> str:
    """Render a prompt body with exactly these field values and nothing else."""
    template = _compiled(source)
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(dict(values)):
            size += len(chunk)
            if size > MAX_PROMPT_CHARS:
                raise PromptRenderError(_("The rendered prompt is too long."))
            chunks.append(chunk)
    except UndefinedError as exc:
        raise PromptRenderError(_("The prompt refers to a field that does not exist.")) from exc
    except SecurityError as exc:
        raise PromptRenderError(_("The prompt tried something that is not allowed.")) from exc
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, PromptRenderError):
            raise
        raise PromptRenderError(_("The prompt could not be rendered: %s") % exc) from exc
    text = "".join(chunks)
    return text.strip()
