"""What rendering one prompt body may cost: bounded memory and CPU, not only a
bounded output.

Staff write prompt bodies, and catalogue files are imported, so a slip or a
hostile file must not be able to make a web process allocate gigabytes or spin
for minutes. Three things bound a render:

- every operation that can multiply a size (`*`, `**`, `+`, `%`, `~`, the
  `replace` and `join` filters) is checked *before* it runs: no text or list
  may grow past MAX_PROMPT_CHARS, no number past MAX_NUMBER_BITS;
- every `{% for %}` step counts against MAX_LOOP_STEPS for the whole render;
- the whole render has a deadline of MAX_RENDER_SECONDS, checked at every loop
  step and every piece of output.

A render that breaks a bound stops at once with PromptBudgetError.
"""

from __future__ import annotations

import contextvars
import operator
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

MAX_PROMPT_CHARS = 100_000
# Prices, counts, years: nothing a prompt needs comes near 2**256.
MAX_NUMBER_BITS = 256
MAX_LOOP_STEPS = 100_000
MAX_RENDER_SECONDS = 0.5


class PromptRenderError(ValueError):
    """The prompt body could not be rendered with these values."""


class PromptBudgetError(PromptRenderError):
    """Rendering the prompt body would cost more than a prompt may."""


def _too_large() -> PromptBudgetError:
    return PromptBudgetError(
        _("The prompt would make a text longer than %(limit)s characters.")
        % {"limit": f"{MAX_PROMPT_CHARS:,}"}
    )


def _too_big_number() -> PromptBudgetError:
    return PromptBudgetError(_("The prompt would make a number too large to use."))


def size_of(value: Any, limit: int = MAX_PROMPT_CHARS) -> int:
    """How many characters `value` prints as, roughly, without printing it; stops
    counting once past `limit` (a list that holds itself many times over is
    never walked in full)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        total = len(value)
        for item in value:
            if total > limit:
                break
            total += size_of(item, limit - total)
        return total
    if isinstance(value, int) and not isinstance(value, bool):
        # Printing a huge int is quadratic; its digits are about bits × 0.3.
        return value.bit_length() * 3 // 10 + 1
    return 8


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse a binary operation whose result would be too large, before it runs."""
    if op == "*":
        if _is_sequence(left) and isinstance(right, int):
            left, right = right, left
        if isinstance(left, int) and _is_sequence(right):
            too_large = max(left, 0) * max(size_of(right), 1) > MAX_PROMPT_CHARS
        else:
            too_large = _int_bits(left) + _int_bits(right) > MAX_NUMBER_BITS
        if too_large:
            raise _too_large() if _is_sequence(right) else _too_big_number()
    elif op == "**":
        if (
            _int_bits(left) > 1
            and isinstance(right, int)
            and right * _int_bits(left) > (MAX_NUMBER_BITS)
        ):
            raise _too_big_number()
    elif op == "+":
        both = _is_sequence(left) and _is_sequence(right)
        if both and size_of(left) + size_of(right) > MAX_PROMPT_CHARS:
            raise _too_large()
    elif op == "%" and isinstance(left, str):
        # printf-style formatting can pad to any width ("%999999999d").
        raise PromptBudgetError(
            _("Text formatting with the percent operator is not available in prompts.")
        )


BINOPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}


def guarded_binop(op: str, left: Any, right: Any) -> Any:
    check_binop(op, left, right)
    return BINOPS[op](left, right)


@dataclass
class RenderBudget:
    """What one render has left."""

    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)
    steps: int = MAX_LOOP_STEPS

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise PromptBudgetError(_("The prompt repeats itself too many times."))
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise PromptBudgetError(_("The prompt takes too long to render."))


_budget: contextvars.ContextVar[RenderBudget] = contextvars.ContextVar("prompt_render_budget")


def start_budget() -> contextvars.Token:
    return _budget.set(RenderBudget())


def end_budget(token: contextvars.Token) -> None:
    _budget.reset(token)


def current_budget() -> RenderBudget:
    try:
        return _budget.get()
    except LookupError:
        # Rendered outside render_prompt (a test compiling a body): a fresh budget.
        budget = RenderBudget()
        _budget.set(budget)
        return budget


def budgeted_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """A `{% for %}`'s iterable, every step counted against the render's budget."""
    budget = current_budget()
    for item in iterable:
        budget.step()
        yield item


def budgeted_concat(values: list[Any]) -> str:
    """`a ~ b ~ c`, refusing to build a text past the limit."""
    total = 0
    parts = []
    for value in values:
        total += size_of(value, MAX_PROMPT_CHARS - total)
        if total > MAX_PROMPT_CHARS:
            raise _too_large()
        parts.append(str(value))
    return "".join(parts)


def budgeted_replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    occurrences = len(text) + 1 if not old else text.count(old)
    if count is not None:
        occurrences = min(occurrences, max(count, 0))
    if len(text) + occurrences * (len(new) - len(old)) > MAX_PROMPT_CHARS:
        raise _too_large()
    return text.replace(old, new, -1 if count is None else count)


def budgeted_join(value: Iterable[Any], d: Any = "") -> str:
    separator = str(d)
    budget = current_budget()
    parts: list[str] = []
    total = 0
    for item in value:
        budget.step()
        total += size_of(item, MAX_PROMPT_CHARS - total) + len(separator)
        if total > MAX_PROMPT_CHARS:
            raise _too_large()
        parts.append(str(item))
    return separator.join(parts)


def budgeted_output(value: Any) -> Any:
    """What `{{ … }}` prints, refused before a huge value is turned into text."""
    if size_of(value) > MAX_PROMPT_CHARS:
        raise _too_large()
    return value
