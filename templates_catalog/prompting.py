"""Render staff-written prompt bodies in a sandbox.

Prompt bodies are Jinja templates rendered by an immutable sandbox with no
globals, no loader and no extensions: the only names that exist are the
template's own fields, bound to validated values. Attribute walking
(`x.__class__`), `{% include %}`, `{% import %}`, unknown tags (`{% load %}`,
`{% debug %}`) and unknown names (`settings`, `request`) are refused when a
template is saved and again when it is rendered. Python's `str.format` is never
used, so `{0.__class__}` is plain text.

Only the pieces a prompt needs exist (text, names, `if`, `for`, comparisons,
arithmetic and a few text filters); `{% set %}`, literals of lists and the rest
are refused. What a render may cost is bounded too (templates_catalog.prompt_budget).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from django.utils.translation import gettext as _
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from templates_catalog.prompt_budget import (
    BINOPS,
    MAX_PROMPT_CHARS,
    PromptBudgetError,
    PromptRenderError,
    budgeted_concat,
    budgeted_join,
    budgeted_loop,
    budgeted_output,
    budgeted_replace,
    current_budget,
    end_budget,
    guarded_binop,
    start_budget,
)

__all__ = [
    "MAX_PROMPT_CHARS",
    "PromptBudgetError",
    "PromptRenderError",
    "PromptSyntaxError",
    "compared_texts",
    "parse_prompt",
    "referenced_names",
    "render_prompt",
    "unknown_names",
]

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
# Filters the compiled body calls on its own: every loop and every `~` is budgeted.
_LOOP_FILTER = "_budgeted_loop"
_CONCAT_FILTER = "_budgeted_concat"
# The pieces of Jinja a prompt body may use; anything else is refused when it is saved.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.For,
    nodes.Filter,
    nodes.Test,
    nodes.Keyword,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.CondExpr,
    nodes.Getattr,
    nodes.Concat,
    nodes.BinExpr,
    nodes.Neg,
    nodes.Pos,
)


class PromptSyntaxError(ValueError):
    """The prompt body cannot be used as a template."""


class _PromptEnvironment(ImmutableSandboxedEnvironment):
    # Every arithmetic operator goes through call_binop, which refuses results
    # that would be too large before computing them (and keeps the compiler
    # from folding such constants while it compiles).
    intercepted_binops = frozenset(BINOPS)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Field values are plain strings, numbers, booleans and lists; a prompt
        # has no business reaching any attribute of them. Only a for loop's
        # counters (`loop.index`) are readable.
        return isinstance(obj, LoopContext) and attr in _LOOP_ATTRIBUTES

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return guarded_binop(operator, left, right)


def _make_environment() -> _PromptEnvironment:
    env = _PromptEnvironment(
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        finalize=budgeted_output,
    )
    env.globals.clear()
    env.tests = {
        name: env.tests[name] for name in ("defined", "undefined", "none", "number", "string")
    }
    env.filters = {name: env.filters[name] for name in _ALLOWED_FILTERS}
    env.filters.update(replace=budgeted_replace, join=budgeted_join)
    env.filters[_LOOP_FILTER] = budgeted_loop
    env.filters[_CONCAT_FILTER] = budgeted_concat
    return env


_env = _make_environment()


def _is_loop_counter(node: nodes.Getattr) -> bool:
    return (
        isinstance(node.node, nodes.Name)
        and node.node.name == "loop"
        and node.attr in _LOOP_ATTRIBUTES
    )


# The shipped catalogue alone has over 3,600 bodies (prompts, system prompts
# and sample answers in two languages); staff's own come on top.
@functools.lru_cache(maxsize=16384)
def parse_prompt(source: str) -> nodes.Template:
    """Parse a prompt body, refusing anything beyond names, ifs, loops and text filters.
    Cached: the tree is shared, so nothing may change it."""
    try:
        ast = _env.parse(source)
    except TemplateSyntaxError as exc:
        raise PromptSyntaxError(
            _("Line %(line)s: %(message)s") % {"line": exc.lineno, "message": exc.message}
        ) from exc
    for node in ast.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
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
        if node.name not in _ALLOWED_FILTERS:
            raise PromptSyntaxError(
                _("Line %(line)s: the filter “%(name)s” is not available.")
                % {"line": node.lineno, "name": node.name}
            )
    _refuse_constant_blowups(ast)
    return ast


class _NotConstant(Exception):
    pass


def _constant_value(node: nodes.Node) -> Any:
    """The value of an expression made of literals only, through the same guards
    as a render; _NotConstant if it depends on a field."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.BinExpr):
        return guarded_binop(node.operator, _constant_value(node.left), _constant_value(node.right))
    if isinstance(node, nodes.Concat):
        return budgeted_concat([_constant_value(item) for item in node.nodes])
    raise _NotConstant


def _refuse_constant_blowups(ast: nodes.Template) -> None:
    """Refuse, when the body is saved, an expression that is too large whatever
    the inputs (`{{ "x" * 10**9 }}`)."""
    for node in ast.find_all((nodes.BinExpr, nodes.Concat)):
        try:
            _constant_value(node)
        except PromptBudgetError as exc:
            raise PromptSyntaxError(
                _("Line %(line)s: %(message)s") % {"line": node.lineno, "message": exc}
            ) from exc
        except (_NotConstant, TypeError, ValueError, ArithmeticError):
            continue


class _Budgeted(NodeTransformer):
    """Route every loop and every `~` of a checked body through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


@functools.lru_cache(maxsize=16384)
def can_outgrow_its_inputs(source: str) -> bool:
    """Whether a body has anything that makes its cost grow faster than its
    inputs (a loop, arithmetic, `~`, `replace`, `join`). One without is as long as
    its text plus its values, and needs no trial with the longest inputs."""
    ast = parse_prompt(source)
    growing = (nodes.For, nodes.Concat, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div)
    growing += (nodes.FloorDiv, nodes.Mod, nodes.Pow)
    if any(True for _node in ast.find_all(growing)):
        return True
    return any(node.name in {"replace", "join"} for node in ast.find_all(nodes.Filter))


def referenced_names(source: str) -> set[str]:
    """The field names a prompt body uses (loop variables excluded)."""
    return set(_referenced_names(source))


@functools.lru_cache(maxsize=16384)
def _referenced_names(source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(parse_prompt(source)))


def unknown_names(source: str, field_names: Iterable[str]) -> list[str]:
    return sorted(referenced_names(source) - set(field_names))


def compared_texts(source: str) -> list[tuple[str, str, str]]:
    """Each comparison of a name with a text in a prompt body, as (name,
    operator, text): `tone == "丁寧"` is ("tone", "==", "丁寧") and `"1:1" in
    shape` is ("shape", "in", "1:1"); `!=` and `not in` count as `==` and `in`."""
    found = []
    for node in parse_prompt(source).find_all(nodes.Compare):
        left = node.expr
        for operand in node.ops:
            right = operand.expr
            if operand.op in ("eq", "ne"):
                for name, text in ((left, right), (right, left)):
                    if isinstance(name, nodes.Name) and _is_text(text):
                        found.append((name.name, "==", text.value))
            elif operand.op in ("in", "notin") and isinstance(right, nodes.Name) and _is_text(left):
                found.append((right.name, "in", left.value))
            left = right
    return found


def _is_text(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str)


@functools.lru_cache(maxsize=2048)
def _compiled(source: str) -> jinja2.Template:
    """A checked and compiled prompt body; compiling costs more than rendering,
    and the same few hundred bodies are rendered again and again."""
    # A copy: the parsed tree is cached and shared, and this one is rewritten.
    ast = _Budgeted().visit(copy.deepcopy(parse_prompt(source)))
    ast.set_environment(_env)
    code = _env.compile(ast)
    return _env.template_class.from_code(_env, code, _env.make_globals(None))


def render_prompt(source: str, values: Mapping[str, Any]) -> str:
    """Render a prompt body with exactly these field values and nothing else,
    within the budget of templates_catalog.prompt_budget."""
    template = _compiled(source)
    chunks: list[str] = []
    size = 0
    token = start_budget()
    try:
        budget = current_budget()
        for chunk in template.generate(dict(values)):
            size += len(chunk)
            if size > MAX_PROMPT_CHARS:
                raise PromptRenderError(_("The rendered prompt is too long."))
            budget.check_time()
            chunks.append(chunk)
    except PromptRenderError:
        raise
    except UndefinedError as exc:
        raise PromptRenderError(_("The prompt refers to a field that does not exist.")) from exc
    except SecurityError as exc:
        raise PromptRenderError(_("The prompt tried something that is not allowed.")) from exc
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        raise PromptRenderError(_("The prompt could not be rendered: %s") % exc) from exc
    finally:
        end_budget(token)
    text = "".join(chunks)
    return text.strip()
