"""The one small interface every text provider implements."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from django.conf import settings


@dataclass(frozen=True, slots=True)
class TextRequest:
    system: str
    prompt: str
    language: str
    template_title: str = ""
    # (label, value as shown) of each input, for providers that want them.
    inputs: list[tuple[str, str]] = field(default_factory=list)
    # The template's model tier ("standard" or "advanced"): providers map it to a model.
    tier: str = "standard"
    # An earlier answer that stopped at the length limit, to be continued.
    continue_from: str = ""
    # The most output tokens this answer may use (what it reserved of the
    # person's quota); 0: STUDIO_MAX_OUTPUT_TOKENS.
    max_output_tokens: int = 0
    # The template's sample answer with the person's values: what the offline
    # demo model answers with (real models never see it).
    sample_answer: str = ""

    @property
    def output_token_limit(self) -> int:
        """The cap to send the model (0: the model's own limit)."""
        configured = settings.STUDIO_MAX_OUTPUT_TOKENS
        if self.max_output_tokens and configured:
            return min(self.max_output_tokens, configured)
        return self.max_output_tokens or configured


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class TextResult:
    """The last item of a stream: why it stopped and what it used.

    `finish_reason` is normalised across providers: "stop", "length",
    "content_filter" (any safety, recitation or policy stop), or another
    lowercase word the provider gave.
    """

    finish_reason: str
    input_tokens: int
    output_tokens: int


class ProviderError(Exception):
    """A failure the person should be told about, in words they can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TextProvider(ABC):
    name: str
    model: str
    label: str  # what the UI calls this model
    # Whether it answers with the template's sample answer (the offline demo
    # model): only then is the answer rendered into the request.
    uses_sample_answers: bool = False

    def model_for(self, tier: str) -> str:
        """The model that serves templates of `tier`."""
        return self.model

    @abstractmethod
    def stream(self, request: TextRequest) -> AsyncIterator[TextDelta | TextResult]:
        """Yield text deltas as they are generated, then one TextResult."""


_TOKEN = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9]{1,2}")


def split_tokens(text: str) -> list[str]:
    """Roughly what a model tokenizer makes of text: a word, or two other characters.

    Joining the pieces gives back the text exactly.
    """
    return _TOKEN.findall(text)


def chat_messages(request: TextRequest) -> list[dict[str, str]]:
    """The request as chat messages: system, the prompt, and (when continuing a
    cut-off answer) that answer followed by the request to go on."""
    from django.utils import translation
    from django.utils.translation import gettext

    messages = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.append({"role": "user", "content": request.prompt})
    if request.continue_from:
        with translation.override(request.language):
            follow_up = gettext(
                "Continue exactly where your previous answer stopped. "
                "Do not repeat anything you already wrote."
            )
        messages.append({"role": "assistant", "content": request.continue_from})
        messages.append({"role": "user", "content": follow_up})
    return messages


def estimate_tokens(text: str) -> int:
    return len(split_tokens(text))
