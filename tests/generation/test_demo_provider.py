from __future__ import annotations

import time

from generation.providers.base import TextDelta, TextRequest, TextResult, split_tokens
from generation.providers.demo import DemoTextProvider, compose_demo_answer

REQUEST = TextRequest(
    system="",
    prompt="Write a thank-you email to Ms Sato.",
    language="en",
    template_title="Thank-you email",
    inputs=[("Recipient", "Ms Sato"), ("Note", "")],
)


def test_the_answer_is_deterministic_and_built_from_the_inputs():
    answer = compose_demo_answer(REQUEST)
    assert answer == compose_demo_answer(REQUEST)
    assert "## Thank-you email" in answer
    assert "**Recipient**: Ms Sato" in answer
    assert "offline demo model" in answer


def test_japanese_requests_get_a_japanese_answer():
    request = TextRequest(
        system="",
        prompt="お礼",
        language="ja",
        template_title="お礼メール",
        inputs=[("宛先", "佐藤様")],
    )
    answer = compose_demo_answer(request)
    assert "オフラインのデモモデル" in answer
    assert "**宛先**: 佐藤様" in answer


def test_tokens_join_back_to_the_text():
    text = "Hello, 世界! これはテストです。\n\n- a b\tc"
    assert "".join(split_tokens(text)) == text


async def test_it_streams_token_by_token_at_the_configured_pace():
    provider = DemoTextProvider(tokens_per_second=400)
    started = time.monotonic()
    items = [item async for item in provider.stream(REQUEST)]
    elapsed = time.monotonic() - started
    deltas = [i for i in items if isinstance(i, TextDelta)]
    assert isinstance(items[-1], TextResult)
    assert items[-1].output_tokens == len(deltas) > 50
    assert "".join(d.text for d in deltas) == compose_demo_answer(REQUEST)
    assert elapsed >= len(deltas) / 400 * 0.8
