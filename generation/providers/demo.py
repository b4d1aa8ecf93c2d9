"""The offline demo model: no key, no network, deterministic.

It answers with the template's sample answer, filled in with the person's own
values (fixtures/catalog/README.md), or, for a template without one, a
structured outline of the inputs; and streams it token by token at
STUDIO_DEMO_TOKENS_PER_SECOND so that the page behaves as it does with a real
model.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from generation.providers.base import (
    TextDelta,
    TextProvider,
    TextRequest,
    TextResult,
    estimate_tokens,
    split_tokens,
)

_VALUE_LIMIT = 120

_PHRASES = {
    "ja": {
        "heading": "## {title}",
        "notice": (
            "> これはオフラインのデモモデルによる見本です。入力内容から文章を組み立てており、"
            "実際のAIモデルは使っていません。"
        ),
        "inputs": "### 入力内容の整理",
        "draft": "### たたき台",
        "tips": "### 仕上げのポイント",
        "closing": "以上をたたき台に、目的と読み手に合わせて言葉を調整してください。",
        "empty": "（未入力）",
        "ideas": [
            "「{value}」を冒頭で示し、読み手が最初の3秒で要点をつかめるようにします。",
            "「{value}」がもたらす具体的な変化を、数字や事例で一つ添えます。",
            "「{value}」について、よくある不安を先回りして解消する一文を入れます。",
            "「{value}」を軸に、次の行動（問い合わせ・申し込み）へ自然につなげます。",
            "「{value}」の背景を一言で補い、なぜ今なのかを伝えます。",
        ],
        "tip_list": [
            "一文を短く、結論から書くと伝わりやすくなります。",
            "専門用語は読み手に合わせて言い換えましょう。",
            "数字・固有名詞・期限は必ず事実を確認してください。",
            "最後に、読み手に取ってほしい行動を一つだけ示します。",
            "声に出して読み、リズムの悪い箇所を直しましょう。",
        ],
    },
    "en": {
        "heading": "## {title}",
        "notice": (
            "> This is a sample from the offline demo model. It assembles text from your "
            "inputs; no real AI model is used."
        ),
        "inputs": "### Your inputs at a glance",
        "draft": "### Draft",
        "tips": "### Finishing touches",
        "closing": "Use this as a starting point and tune the wording to your goal and reader.",
        "empty": "(not given)",
        "ideas": [
            "Open with “{value}” so the reader gets the point in the first three seconds.",
            "Show one concrete change that “{value}” brings, with a number or an example.",
            "Answer the usual worry about “{value}” before the reader raises it.",
            "Build on “{value}” and lead naturally to the next step: reply, sign up, or call.",
            "Add one line of context on “{value}”: why it matters now.",
        ],
        "tip_list": [
            "Short sentences that lead with the conclusion read best.",
            "Swap jargon for the words your reader uses.",
            "Double-check every number, name and deadline.",
            "End with exactly one thing you want the reader to do.",
            "Read it aloud and smooth out any clumsy rhythm.",
        ],
    },
}


def _shorten(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _VALUE_LIMIT else value[: _VALUE_LIMIT - 1] + "…"


_SAMPLE_NOTICE = {
    "ja": "（オフラインのデモモデルによる見本の回答です。実際のAIモデルは使っていません。）",
    "en": "(A sample answer from the offline demo model; no real AI model is used.)",
}


def compose_demo_answer(request: TextRequest) -> str:
    """The full demo answer for a request; the same request always gives the same text.

    A template's sample answer (with the person's own values in it) when it has
    one, after a line saying what it is; otherwise an outline built from the
    inputs."""
    language = "en" if request.language.startswith("en") else "ja"
    if request.sample_answer.strip():
        return f"{_SAMPLE_NOTICE[language]}\n\n{request.sample_answer.strip()}"
    phrases = _PHRASES[language]
    seed = hashlib.sha256(f"{request.system}\n{request.prompt}".encode()).digest()
    rng = random.Random(seed)
    given = [(label, _shorten(value)) for label, value in request.inputs if value.strip()]
    lines = [
        phrases["heading"].format(title=request.template_title or "Demo"),
        "",
        phrases["notice"],
        "",
    ]
    lines += [phrases["inputs"], ""]
    lines += [f"- **{label}**: {value or phrases['empty']}" for label, value in request.inputs] or [
        f"- {phrases['empty']}"
    ]
    lines += ["", phrases["draft"], ""]
    ideas = rng.sample(phrases["ideas"], k=3)
    values = [value for _label, value in given] or [request.template_title]
    for number, idea in enumerate(ideas, start=1):
        lines.append(f"{number}. {idea.format(value=values[(number - 1) % len(values)])}")
    lines += ["", phrases["tips"], ""]
    lines += [f"- {tip}" for tip in rng.sample(phrases["tip_list"], k=2)]
    lines += ["", phrases["closing"]]
    return "\n".join(lines)


class DemoTextProvider(TextProvider):
    name = "demo"
    model = "studio-demo-1"
    uses_sample_answers = True
    label = _("Offline demo model")

    def __init__(self, tokens_per_second: float | None = None) -> None:
        self._rate = tokens_per_second

    @property
    def tokens_per_second(self) -> float:
        return self._rate if self._rate is not None else settings.STUDIO_DEMO_TOKENS_PER_SECOND

    async def stream(self, request: TextRequest) -> AsyncIterator[TextDelta | TextResult]:
        delay = 1 / self.tokens_per_second if self.tokens_per_second > 0 else 0
        tokens = split_tokens(compose_demo_answer(request))
        finish_reason = "stop"
        if request.output_token_limit and len(tokens) > request.output_token_limit:
            tokens, finish_reason = tokens[: request.output_token_limit], "length"
        for token in tokens:
            await asyncio.sleep(delay)
            yield TextDelta(token)
        yield TextResult(
            finish_reason=finish_reason,
            input_tokens=estimate_tokens(request.system + request.prompt),
            output_tokens=len(tokens),
        )
